"""``realtime_priority``: the sim and the controller put every thread of their process under SCHED_FIFO, or say in
one warning why they could not and keep their scheduler."""

import json
import os
import subprocess
import sys
import textwrap

from mtpolicy.nodes.process import take_realtime_priority


class Logger:
    def __init__(self):
        self.lines = []

    def info(self, text):
        self.lines.append(("info", text))

    def warning(self, text):
        self.lines.append(("warning", text))


def test_every_thread_takes_the_priority_or_one_warning_says_why_not():
    """In a process of its own (a test runner under SCHED_FIFO would starve the machine's other work): a thread
    started before the call and one started after it end at the priority, the main thread too; where the right is
    missing, all keep the default scheduler and the warning says how to grant it."""
    script = textwrap.dedent("""
        import json, os, threading
        from mtpolicy.nodes.process import take_realtime_priority
        class Logger:
            lines = []
            info = lambda self, text: self.lines.append(("info", text))
            warning = lambda self, text: self.lines.append(("warning", text))
        hold = threading.Event()
        before = threading.Thread(target=hold.wait); before.start()
        log = Logger()
        took = take_realtime_priority(7, log)
        after = threading.Thread(target=hold.wait); after.start()
        policies = {tid: [os.sched_getscheduler(int(tid)), os.sched_getparam(int(tid)).sched_priority]
                    for tid in os.listdir("/proc/self/task")}
        hold.set()
        print(json.dumps({"took": took, "log": log.lines, "policies": policies}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    policies = list(result["policies"].values())
    assert len(policies) == 3
    if result["took"]:
        assert policies == [[os.SCHED_FIFO, 7]] * 3
        assert result["log"] == [["info", "scheduling: SCHED_FIFO 7, every thread"]]
    else:
        assert all(policy == os.SCHED_OTHER for policy, _ in policies)
        [(level, text)] = result["log"]
        assert level == "warning" and text.startswith("realtime_priority 7: SCHED_FIFO refused (")
        assert "rtprio" in text and "set realtime_priority 0" in text


def test_a_refused_call_keeps_the_scheduler_and_zero_asks_for_nothing(monkeypatch):
    def refuse(*_):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    log = Logger()
    assert take_realtime_priority(0, log) is False and log.lines == []
    assert take_realtime_priority(50, log) is False
    assert log.lines == [("warning", "realtime_priority 50: SCHED_FIFO refused (Operation not permitted); running "
                          "under the default scheduler. Grant real-time priorities (an rtprio limit, e.g. '@realtime - "
                          "rtprio 99' in /etc/security/limits.conf) or set realtime_priority 0")]
