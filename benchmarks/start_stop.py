"""Start/stop cycles of sim + controller under both launchers: does every node stop, cleanly, every time?

    python benchmarks/start_stop.py --cycles 20                 # idle machine
    python benchmarks/start_stop.py --cycles 20 --hog           # plus a busy-loop process per core
    python benchmarks/start_stop.py --start-race --cycles 10    # the signal while the nodes start (issue 49)

Each cycle starts ``sim_controller.launch.xml model:=planar8_picor`` with
``ros2 launch`` (from a colcon build of ros2_ws, made once in a temporary
folder) or ``mtpolicy launch`` (the pip-only runner), publishes a goal set
until the controller sends policy commands, then sends the launcher one
signal (INT, TERM, HUP or KILL) and watches, over DDS and /proc
(``stop_and_watch`` of tests/launchers.py):

* survivors: nodes still running 2 s after the signal;
* tracebacks / unclean exits: "Traceback" in the launcher's output (its
  nodes' output included), plus the nodes that outlive their launcher (KILL;
  ros2 launch on TERM and HUP, which exits without stopping them) and exit
  with anything but 0: their output goes with the launcher, but this process
  adopts them as child subreaper and sees their exit codes;
* zero last: the last command on the wire after the signal is all zeros;
* stop s: seconds from the signal until the last node is gone;
* exit: the launcher's exit codes (negative: ended by that signal).

With ``--start-race``, the signal (TERM, HUP or KILL) comes instead
``--delays`` ms (default 0, 50, 100, 200, 300) after the launcher reported
starting its second node, while the nodes' Python starts and before they
ask for their launcher's death signal (``signal_at_start`` of tests/launchers.py);
survivors, unclean exits and stop s as above (no DDS: no goal, no command).
Results: docs/ros2.md, "The start race, measured".

Every process runs with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a
private ROS_DOMAIN_ID. Bounded: bring-up 60 s and stop 10 s per cycle;
nodes left over are SIGKILLed (and counted as survivors).
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the launchers and domain ids of the tests

MODEL = "planar8_picor"
READY_TIMEOUT = 60.0
STOP_DEADLINE = 2.0
STOP_TIMEOUT = 10.0
SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM, "HUP": signal.SIGHUP, "KILL": signal.SIGKILL}
RACE_SIGNALS = ["TERM", "HUP", "KILL"]
"""The signals of the start race: SIGINT is the one every launcher forwards to its nodes itself."""
RACE_DELAYS_MS = [0, 50, 100, 200, 300]
_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


@dataclass
class Row:
    """Outcomes of the cycles of one launcher and signal."""

    cycles: int = 0
    failed_bringups: int = 0
    survivors: int = 0
    tracebacks: int = 0
    zero_last: int = 0
    stop_s: list[float] = field(default_factory=list)
    exits: collections.Counter = field(default_factory=collections.Counter)
    node_exits: collections.Counter = field(default_factory=collections.Counter)
    """--start-race: exit codes of the nodes that outlived their launcher (adopted here)."""


def adopt_orphans() -> None:
    """Become the child subreaper: nodes whose launcher dies are re-parented here, so their exit codes are seen."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def one_cycle(launcher: str, cmd: list[str], env: dict[str, str], sig: int, monitor, goals: np.ndarray,  # noqa: ANN001
              row: Row) -> None:
    from mtpolicy_tools.launch_runner import ManagedProcess
    from launchers import node_pids, stop_and_watch, wait_until_moving

    proc = ManagedProcess(launcher, cmd, env=env, echo=None)
    pids: dict[str, int] = {}
    try:
        moving = wait_until_moving(proc, monitor, goals, READY_TIMEOUT)
        pids = node_pids(launcher, proc.output())
        if not moving or len(pids) != 2:
            row.failed_bringups += 1
            print(f"bring-up failed (exit {proc.returncode}):\n{proc.output()[-2000:]}", file=sys.stderr)
            return
        out = stop_and_watch(proc, pids, sig, monitor, STOP_DEADLINE, STOP_TIMEOUT)
        row.cycles += 1
        row.survivors += len(out.survivors)
        row.zero_last += out.zero_last
        row.stop_s.append(out.stop_s)
        row.exits[out.exit_code] += 1
        row.tracebacks += ("Traceback" in proc.output()) + sum(code != 0 for code in out.node_exits.values())
    finally:
        end_cycle(proc, pids)


def end_cycle(proc, pids: dict[str, int]) -> None:  # noqa: ANN001 - a launch_runner.ManagedProcess
    """Stop the launcher if it still runs and kill any node of the cycle left behind (reaping an adopted one)."""
    from launchers import running

    if proc.returncode is None:
        proc.stop(grace=2.0)
    for pid in pids.values():
        if running(pid):
            os.kill(pid, signal.SIGKILL)
            while running(pid):
                time.sleep(0.01)


def race_cycle(launcher: str, cmd: list[str], env: dict[str, str], sig: int, delay: float, row: Row) -> None:
    """One start-race cycle: ``sig`` to the launcher ``delay`` s after it reported its second node."""
    from mtpolicy_tools.launch_runner import ManagedProcess
    from launchers import signal_at_start, survivors

    proc = ManagedProcess(launcher, cmd, env=env, echo=None)
    pids: dict[str, int] = {}
    try:
        pids = signal_at_start(proc, launcher, 2, sig, delay, READY_TIMEOUT)
        if len(pids) != 2:
            row.failed_bringups += 1
            print(f"bring-up failed (exit {proc.returncode}):\n{proc.output()[-2000:]}", file=sys.stderr)
            return
        start, exits = time.monotonic(), dict[int, int]()
        left = survivors(pids, STOP_DEADLINE, exits)
        if survivors(pids, STOP_TIMEOUT - STOP_DEADLINE, exits):
            print(f"nodes left after {STOP_TIMEOUT} s:\n{proc.output()[-2000:]}", file=sys.stderr)
        row.cycles += 1
        row.survivors += len(left)
        row.stop_s.append(time.monotonic() - start)
        try:
            row.exits[proc.wait(STOP_TIMEOUT)] += 1
        except subprocess.TimeoutExpired:
            row.exits[None] += 1
        row.tracebacks += "Traceback" in proc.output()
        row.node_exits.update(exits.values())
    finally:
        end_cycle(proc, pids)


def race(ns: argparse.Namespace, envs: dict[str, dict[str, str]]) -> dict[tuple[str, str, int], Row]:
    """The start-race matrix: launcher x signal x delay, ``ns.cycles`` cycles each."""
    import launchers

    rows: dict[tuple[str, str, int], Row] = {}
    for launcher in ns.launchers:
        cmd = launchers.command(launcher, "sim_controller", {"model": MODEL})
        for name in ns.signals:
            for delay in ns.delays:
                row = rows[launcher, name, delay] = Row()
                for _ in range(ns.cycles):
                    race_cycle(launcher, cmd, envs[launcher], SIGNALS[name], delay / 1000, row)
                print(f"{launcher} {name} {delay} ms: {row.cycles} cycles, {row.survivors} survivors, "
                      f"{row.tracebacks} tracebacks", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=20, help="start/stop cycles per launcher and signal")
    parser.add_argument("--launchers", nargs="+", choices=["ros2", "mtpolicy"], default=["ros2", "mtpolicy"])
    parser.add_argument("--signals", nargs="+", choices=list(SIGNALS),
                        help=f"default: {' '.join(SIGNALS)}; with --start-race {' '.join(RACE_SIGNALS)}")
    parser.add_argument("--hog", action="store_true", help="run a busy-loop process per core meanwhile")
    parser.add_argument("--start-race", action="store_true",
                        help=f"signal the launcher as its nodes start (signals {' '.join(RACE_SIGNALS)} by default)")
    parser.add_argument("--delays", nargs="+", type=int, default=RACE_DELAYS_MS,
                        help="--start-race: ms from the launcher's report of its second node to the signal")
    ns = parser.parse_args(argv)
    ns.signals = ns.signals or (RACE_SIGNALS if ns.start_race else list(SIGNALS))
    if "HUP" in ns.signals and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        parser.error("SIGHUP is ignored here (nohup?), and the launchers would inherit that: run without nohup "
                     "(e.g. under setsid), or without --signals HUP")

    import launchers
    from mtpolicy_tools.environment import ros_env
    from helpers import unique_domain_id

    if "ros2" in ns.launchers and (missing := launchers.missing()):
        parser.error(missing)
    adopt_orphans()
    tmp = Path(tempfile.mkdtemp(prefix="mtpolicy-start-stop-"))
    env = ros_env(domain_id=unique_domain_id())
    env["ROS_LOG_DIR"] = str(tmp / "ros_log")
    envs = {"mtpolicy": env}
    if "ros2" in ns.launchers:
        envs["ros2"] = launchers.install_env(launchers.colcon_build(tmp), env)

    hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(os.cpu_count() or 1)] \
        if ns.hog else []
    started, load_before = time.monotonic(), os.getloadavg()[0]
    try:
        rows = race(ns, envs) if ns.start_race else stop_cycles(ns, envs, env)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()

    busy = f"a busy-loop process on each of {os.cpu_count()} cores" if ns.hog else "no busy loops"
    print(f"\n{MODEL}, sim + controller; {busy}; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after; {time.monotonic() - started:.0f} s")
    if ns.start_race:
        print("| launcher | signal | delay ms | cycles | survivors after 2 s | tracebacks | stop s (median / max) "
              "| launcher exit codes | exit codes of nodes that outlived it |")
        print("|---|---|---|---|---|---|---|---|---|")
    else:
        print("| launcher | signal | cycles | survivors after 2 s | tracebacks / unclean exits | zero command last "
              "| stop s (median / max) | launcher exit codes |")
        print("|---|---|---|---|---|---|---|---|")
    for (launcher, name, *delay), row in rows.items():
        stop = f"{np.median(row.stop_s):.2f} / {max(row.stop_s):.2f}" if row.stop_s else "-"
        failed = f" ({row.failed_bringups} failed bring-ups)" if row.failed_bringups else ""
        cells = [f"{launcher} launch", name, *map(str, delay), f"{row.cycles}{failed}", str(row.survivors),
                 str(row.tracebacks), *([] if ns.start_race else [f"{row.zero_last}/{row.cycles}"]), stop,
                 counts(row.exits), *([counts(row.node_exits) or "-"] if ns.start_race else [])]
        print(f"| {' | '.join(cells)} |")
    clean = all(r.cycles == ns.cycles and r.survivors == r.tracebacks == 0
                and (ns.start_race or r.zero_last == r.cycles) for r in rows.values())
    return 0 if clean else 1


def counts(counter: collections.Counter) -> str:
    return ", ".join(f"{code} x{n}" for code, n in sorted(counter.items(), key=str))


def stop_cycles(ns: argparse.Namespace, envs: dict[str, dict[str, str]], env: dict[str, str]) \
        -> dict[tuple[str, str], Row]:
    """The start/stop cycles of a running stack: launcher x signal, ``ns.cycles`` cycles each."""
    import rclpy

    import launchers
    from mtpolicy.kinematics import Kinematics
    from mtpolicy_tools.monitor import ReachMonitor
    from mtpolicy.robots import load_robot

    spec = load_robot("planar8")
    goals = Kinematics(spec).ee_positions(np.full(spec.n_joints, 0.15))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    monitor = ReachMonitor(spec, name="start_stop_bench", context=context)
    rows: dict[tuple[str, str], Row] = {}
    try:
        for launcher in ns.launchers:
            cmd = launchers.command(launcher, "sim_controller", {"model": MODEL})
            for name in ns.signals:
                row = rows[launcher, name] = Row()
                for _ in range(ns.cycles):
                    one_cycle(launcher, cmd, envs[launcher], SIGNALS[name], monitor, goals, row)
                print(f"{launcher} {name}: {row.cycles} cycles, {row.survivors} survivors, {row.tracebacks} "
                      f"tracebacks/unclean, zero last {row.zero_last}", flush=True)
    finally:
        monitor.destroy_node()
        rclpy.shutdown(context=context)
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
