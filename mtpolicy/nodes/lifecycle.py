"""Start and stop of a node process: the entry points of the node executables.

* A node dies with the process that started it (``mtpolicy launch``,
  ``ros2 launch``, a test): ``PR_SET_PDEATHSIG`` (Linux) has the kernel send
  it SIGTERM when that parent exits for any reason, SIGKILL included. A
  launcher that died before that call (its node's Python still starting)
  shows afterwards as the node's output closed (the read end of its pipe,
  or the master of its pseudo-terminal): the node then exits 0 at once.
* SIGINT, SIGTERM and SIGHUP ask for a stop from the entry point's first
  statement on. While the node starts (imports of rclpy, mujoco and
  onnxruntime take a second or more under load; no ROS context yet) the
  process exits 0 at once (``os._exit``: an exception raised there would
  surface inside an extension module's import as an ImportError). Once
  ``run_node`` (``mtpolicy.nodes.common``) installs its handlers, they set a
  flag it polls: the node then runs its ``on_stop`` while the ROS context is
  still up (the controller publishes one zero command) and the process exits
  0, without a traceback.
* ``mtpolicy launch`` starts them with the stop signals blocked; they arrive
  once the handlers are in place, so one sent during Python's own start-up
  (before this module runs) stops the node like any other, instead of
  ending it with -15 or a ``KeyboardInterrupt`` traceback.
* Stop signals may come in bursts (the kernel sends the parent-death signal
  once per thread of the parent as they exit): the handler only flips a
  flag (a lock taken in a handler deadlocks when the next signal interrupts
  it), and once the node has stopped they are ignored, so none can kill the
  interpreter while it finalizes.

The executables import this light module first and the node module (rclpy,
mujoco, onnxruntime) only after both are in place.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import select
import signal
import sys
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXECUTABLES = ("mtpolicy_controller", "mtpolicy_sim", "mtpolicy_goals")
"""The executables whose entry points are here (setup.py): they unblock ``STOP_SIGNALS`` once their handlers are
in place, so a launcher may start them with those signals blocked (held) through Python's own start-up."""
PARENT_DEATH_SIGNAL = signal.SIGTERM
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_stop_signal: int | None = None
_starting = True
"""Until ``handle_stop_signals`` (``run_node``): a stop signal ends the process at once."""


def stop_requested() -> bool:
    """Whether a stop signal has arrived."""
    return _stop_signal is not None


def _request_stop(signum: int, frame: object) -> None:
    global _stop_signal
    _stop_signal = signum


def _stop_starting(signum: int, frame: object) -> None:
    if _starting:
        os._exit(0)
    _request_stop(signum, frame)


def handle_stop_signals() -> dict[int, Any]:
    """Make SIGINT, SIGTERM and SIGHUP requests to stop (the start is over); returns the handlers they had."""
    global _starting
    _starting = False
    return {sig: signal.signal(sig, _request_stop) for sig in STOP_SIGNALS}


def restore_signal_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def die_with_parent() -> bool:
    """Have the kernel send this process SIGTERM when its parent exits (Linux only; elsewhere nothing); whether
    the parent is still there.

    The request survives ``exec`` (the ros-* wheels re-exec Python at
    start-up), but it only covers a parent that exits after it: one that died
    before (in the first few hundred milliseconds of this process, while its
    Python starts) is seen afterwards by ``launcher_gone``.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    return not launcher_gone()


def launcher_gone() -> bool:
    """Whether the process that reads this process's output has exited: stdout is a pipe whose read end is
    closed, or a pseudo-terminal whose master is (``ros2 launch`` with ``emulate_tty``).

    Not ``getppid() == 1``: a node that init or a container's init starts
    directly has PID 1 as its parent all along, and an orphan adopted by a
    child subreaper has another. A terminal, a file or ``/dev/null``: False.
    """
    try:
        poller = select.poll()
        poller.register(sys.__stdout__.fileno(), 0)  # POLLERR (no reader) and POLLHUP are always reported
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no stdout
        return False


def _run(module: str) -> int:
    for sig in STOP_SIGNALS:  # before the parent-death request: its SIGTERM stops the node like any other
        signal.signal(sig, _stop_starting)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # one held by the launcher arrives now
    if not die_with_parent():
        return 0
    try:
        return importlib.import_module(f"mtpolicy.nodes.{module}").main()  # run_node: handle_stop_signals
    finally:
        for sig in STOP_SIGNALS:  # stopped: the process exits now, whatever else arrives
            signal.signal(sig, signal.SIG_IGN)


def controller() -> int:
    """``mtpolicy_controller``"""
    return _run("controller")


def sim() -> int:
    """``mtpolicy_sim``"""
    return _run("sim")


def goals() -> int:
    """``mtpolicy_goals``"""
    return _run("goals")
