"""Start and stop of a node process: the entry points of the node executables.

* A node dies with the process that started it (``mtpolicy launch``,
  ``ros2 launch``, a test): ``PR_SET_PDEATHSIG`` (Linux) has the kernel send
  it SIGTERM when that parent exits for any reason, SIGKILL included.
* SIGINT, SIGTERM and SIGHUP ask for a stop from the process's first Python
  statement on (during imports too): they set a flag that ``run_node``
  (``mtpolicy.nodes.common``) polls. The node then runs its ``on_stop``
  while the ROS context is still up (the controller publishes one zero
  command) and the process exits 0, without a traceback.
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
import signal
import sys
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PARENT_DEATH_SIGNAL = signal.SIGTERM
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_stop_signal: int | None = None


def stop_requested() -> bool:
    """Whether a stop signal has arrived."""
    return _stop_signal is not None


def _request_stop(signum: int, frame: object) -> None:
    global _stop_signal
    _stop_signal = signum


def handle_stop_signals() -> dict[int, Any]:
    """Make SIGINT, SIGTERM and SIGHUP requests to stop; returns the handlers they had."""
    return {sig: signal.signal(sig, _request_stop) for sig in STOP_SIGNALS}


def restore_signal_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def die_with_parent() -> None:
    """Have the kernel send this process SIGTERM when its parent exits (Linux only; elsewhere nothing).

    The request survives ``exec`` (the ros-* wheels re-exec Python at start-up).
    A parent that dies before this call (the first milliseconds of the
    process) goes unnoticed.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _run(module: str) -> int:
    die_with_parent()
    handle_stop_signals()
    try:
        return importlib.import_module(f"mtpolicy.nodes.{module}").main()
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
