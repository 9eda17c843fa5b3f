"""Start and stop of a node process: the entry points of the node executables.

* A node dies with the process that started it (``mtpolicy launch``,
  ``ros2 launch``, a test): ``PR_SET_PDEATHSIG`` (Linux) has the kernel send
  it SIGTERM when that parent exits for any reason, SIGKILL included. A
  launcher that died before that call (its node's Python still starting)
  shows afterwards as the node's output closed (the read end of its pipe,
  or the master of its pseudo-terminal): the node then exits 0 at once.
* SIGINT, SIGTERM and SIGHUP ask for a stop from the entry point's first
  statement on. While the node starts (imports of rclpy, mujoco and
  onnxruntime take a second or more under load, then the ROS context and the
  node are made; nothing has been published) the process exits 0 at once
  (``os._exit``: an exception raised there would surface inside an extension
  module's import as an ImportError). Once ``run_node`` (below) spins the
  node, the handler sets a flag it polls: the node then runs its ``on_stop``
  while the ROS context is still up (the controller publishes one zero
  command) and the process exits 0, without a traceback.
* ``mtpolicy launch`` starts them with the stop signals blocked; they arrive
  once the handlers are in place, so one sent during Python's own start-up
  (before this module runs) stops the node like any other, instead of
  ending it with -15 or a ``KeyboardInterrupt`` traceback.
* A stop is bounded: once the spin loop ends, the kernel ends the process
  (SIGALRM, exit -14) if ``on_stop`` and the middleware's teardown take more
  than ``STOP_GRACE`` s. rclpy's ``destroy_node`` (into the middleware) was
  seen to spin forever at full CPU holding the GIL, so that no Python thread
  could act, in a sim whose launcher had been SIGKILLed. The controller's zero
  command goes out before the teardown.
  Armed only where nothing else uses SIGALRM (a node process; not a test
  runner's timeout).
* Stop signals may come in bursts (the kernel sends the parent-death signal
  once per thread of the parent as they exit): the handler only flips a
  flag (a lock taken in a handler deadlocks when the next signal interrupts
  it), and once the node has stopped they are ignored, so none can kill the
  interpreter while it finalizes.
* Once ``run_node`` has returned (the zero command sent, the node and the
  ROS context shut down) the process runs its ``atexit`` functions, flushes
  its streams (Python's and C's: rcutils logs through stdio) and ends with
  ``os._exit``, without the rest of the interpreter's finalization: the
  middleware's threads may outlive ``rclpy.shutdown``,
  and the extension modules' objects (rclpy, onnxruntime, mujoco) are freed
  there in no fixed order; a controller was seen to end with SIGSEGV after
  its clean stop. An exception out of the node still ends the process the
  ordinary way, with its traceback. ``faulthandler`` writes the Python stack
  of every thread to stderr should a node crash anyway.

The executables import this light module first and the node module (rclpy,
mujoco, onnxruntime) only after both are in place; ``run_node``, which spins a
node, imports rclpy when it is called.
"""

from __future__ import annotations

import atexit
import ctypes
import faulthandler
import gc
import importlib
import os
import select
import signal
import sys
from typing import TYPE_CHECKING, Any, Callable, NoReturn

if TYPE_CHECKING:
    from rclpy.node import Node

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXECUTABLES = ("mtpolicy_controller", "mtpolicy_sim", "mtpolicy_goals")
"""The executables whose entry points are here (setup.py): they unblock ``STOP_SIGNALS`` once their handlers are
in place, so a launcher may start them with those signals blocked (held) through Python's own start-up."""
PARENT_DEATH_SIGNAL = signal.SIGTERM
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_stop_signal: int | None = None
_starting = False
"""In a node executable (``_run``) until ``run_node`` spins the node: a stop signal ends the process at once."""


def stop_requested() -> bool:
    """Whether a stop signal has arrived."""
    return _stop_signal is not None


def _stop(signum: int, frame: object) -> None:
    global _stop_signal
    if _starting:
        os._exit(0)
    _stop_signal = signum


def handle_stop_signals() -> dict[int, Any]:
    """Make SIGINT, SIGTERM and SIGHUP stop the node (see the module docstring); returns the handlers they had."""
    return {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}


def _spinning() -> None:
    """The node is made and about to spin: from now on a stop signal asks for a clean stop."""
    global _starting
    _starting = False


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
        if sys.__stdout__ is None:  # no stdout
            return False
        poller.register(sys.__stdout__.fileno(), 0)  # POLLERR (no reader) and POLLHUP are always reported
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no stdout
        return False


def take_realtime_priority(priority: int, logger: Any) -> bool:
    """Put every thread of this process under SCHED_FIFO at ``priority`` (0: leave the scheduler as it is; threads
    started later inherit it) and log the outcome; whether it did. Without the right the process keeps its
    scheduler, with one warning that says how to grant it."""
    if priority == 0:
        return False
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:  # no procfs: the calling thread alone
        threads = [0]
    try:
        for tid in threads:
            try:
                os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
            except ProcessLookupError:  # the thread has ended
                pass
    except (OSError, AttributeError) as e:  # EPERM without the right; a platform without the call
        logger.warning(f"realtime_priority {priority}: SCHED_FIFO refused ({getattr(e, 'strerror', None) or e}); "
                       "running under the default scheduler. Grant real-time priorities (an rtprio limit, e.g. "
                       "'@realtime - rtprio 99' in /etc/security/limits.conf) or set realtime_priority 0")
        return False
    logger.info(f"scheduling: SCHED_FIFO {priority}, every thread")
    return True


def _run(module: str) -> int:
    global _starting
    _starting = True
    faulthandler.enable()
    handle_stop_signals()  # before the parent-death request: its SIGTERM stops the node like any other
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # one held by the launcher arrives now
    if not die_with_parent():
        return 0
    try:
        code = importlib.import_module(f"mtpolicy.nodes.{module}").main()  # run_node
    finally:
        for sig in STOP_SIGNALS:  # stopped: the process exits now, whatever else arrives
            signal.signal(sig, signal.SIG_IGN)
    exit_without_finalizing(code)


def exit_without_finalizing(code: int) -> NoReturn:
    """End the process with ``code`` once the exit functions have run (``atexit``, e.g. the robot_description's
    scratch folder removed) and its output is flushed (Python's streams, then every C stdio stream), skipping the
    rest of the interpreter's finalization (module docstring)."""
    atexit._run_exitfuncs()  # what finalization runs first, while every module is still whole
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe: the reader is gone, nothing to keep
            pass
    ctypes.CDLL(None).fflush(None)
    os._exit(code)


def controller() -> int:
    """``mtpolicy_controller``"""
    return _run("controller")


def sim() -> int:
    """``mtpolicy_sim``"""
    return _run("sim")


def goals() -> int:
    """``mtpolicy_goals``"""
    return _run("goals")


STOP_POLL = 0.1
"""Seconds between checks for a stop request while spinning (Python runs signal handlers between waits)."""
STOP_GRACE = 1.5
"""Seconds a node may take to stop once its spin loop has ended (``on_stop``, then the node's and the context's
teardown) before the kernel ends it with SIGALRM."""


def bound_the_stop() -> bool:
    """Have the kernel end this process with SIGALRM ``STOP_GRACE`` s from now unless it has exited (or
    ``unbound_the_stop`` is called); only where SIGALRM has its default action (no timer of someone else's is
    replaced). Whether it was armed."""
    if signal.getsignal(signal.SIGALRM) != signal.SIG_DFL:
        return False
    if not signal.getitimer(signal.ITIMER_REAL)[0]:
        signal.setitimer(signal.ITIMER_REAL, STOP_GRACE)
    return True


def unbound_the_stop(armed: bool) -> None:
    """Disarm ``bound_the_stop``'s timer: the teardown is over, and a process that goes on (a test) keeps running."""
    if armed:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _collect_garbage() -> None:
    """A full garbage collection: the callback of ``run_node``'s ``gc_period`` timer."""
    gc.collect()


def run_node(factory: Callable[[], Node], args: list[str] | None = None, gc_period: float | None = None) -> int:
    """Create the node, spin it until a stop signal (or its ``done`` future), shut down cleanly.

    SIGINT, SIGTERM and SIGHUP (see above) end the spin
    loop; the node's ``on_stop()``, if it has one, then runs while the ROS
    context is still up, and only then are the node and the context shut
    down, so no take can race a shutdown. With ``gc_period`` (s), automatic
    garbage collection is off and a timer collects every ``gc_period`` s
    instead (on steady time, so also under ``use_sim_time`` without a
    ``/clock``), so a collection never lands inside a latency-critical callback.
    An exception in a callback (a tick, a timer, a parameter or service
    callback) does not end the process: the node's ``on_fault(error)`` (the
    controller publishes a zero command and reports the error), or else
    ``log_fault``, takes it and the node spins on. Should anything still end
    the spin loop with an exception, ``on_stop`` runs before it propagates.
    Returns the process exit code: 0 on a stop (a RuntimeError from a take
    after the context was shut down from outside included) or when ``done``
    completes with 0; 1 if the node refused to start (the reason is logged
    as a fatal message, without a traceback).
    """
    import rclpy
    from rclpy.clock import Clock, ClockType
    from rclpy.exceptions import InvalidParameterValueException
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from mtpolicy.nodes.params import StartupError, check_params_files
    from mtpolicy.nodes.reporting import log_fault
    from mtpolicy.policy import ModelMismatch
    from mtpolicy.robots import RobotSpecError

    args = sys.argv if args is None else args
    previous_handlers = handle_stop_signals()
    bounded = False
    try:
        check_params_files(args)
    except StartupError as e:
        rclpy.logging.get_logger("mtpolicy").fatal(f"refusing to start: {e}")
        return 1
    try:
        if stop_requested():  # asked to stop while starting up
            return 0
        with rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO):
            try:
                node = factory()
            except (StartupError, ModelMismatch, RobotSpecError, FileNotFoundError,
                    InvalidParameterValueException) as e:
                rclpy.logging.get_logger("mtpolicy").fatal(f"refusing to start: {e}")
                return 1
            gc.freeze()  # start-up objects (model, messages, modules) are never scanned again: shorter GC pauses
            if gc_period is not None:
                gc.disable()
                node.create_timer(gc_period, _collect_garbage, clock=Clock(clock_type=ClockType.STEADY_TIME))
            executor = SingleThreadedExecutor(context=node.context)
            executor.add_node(node)
            done = getattr(node, "done", None)
            on_stop = getattr(node, "on_stop", None)
            _spinning()
            try:
                while not stop_requested() and not (done is not None and done.done()):
                    try:
                        executor.spin_once(timeout_sec=STOP_POLL)
                    except ExternalShutdownException:
                        raise
                    except Exception as error:  # noqa: BLE001 - a callback's error: the node survives it
                        if not node.context.ok():
                            raise
                        (getattr(node, "on_fault", None) or log_fault(node))(error)
                bounded = bound_the_stop()
                if on_stop is not None:
                    on_stop()
                return int(done.result() or 0) if done is not None and done.done() else 0
            except BaseException as error:
                if not node.context.ok() and isinstance(error, RuntimeError):  # a take after a shutdown from outside
                    return 0
                if on_stop is not None and node.context.ok():  # the zero on the way out, whatever ended the loop
                    on_stop()
                raise
            finally:
                bounded = bound_the_stop()  # also after an exception
                executor.shutdown()
                node.destroy_node()
    except ExternalShutdownException:
        pass
    finally:
        unbound_the_stop(bounded)
        restore_signal_handlers(previous_handlers)
    return 0
