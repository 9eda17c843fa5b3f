"""Plumbing shared by the nodes, the launch runner, the demo, the benchmark and the tests.

* ``ros_env``: the environment every ROS process of ours runs in (loopback
  discovery, a private domain id);
* QoS profiles of each topic family;
* ``Param``/``ParamSet``: declared parameters with a validation
  callback that rejects bad values with a reason, at start and at run time,
  and refuses parameters a node does not declare (a misspelled YAML key);
* ``run_node``: init, spin, clean shutdown on a stop signal, exit code; a
  malformed params file is refused in one line;
* ``LatencyStats``: a rolling window of durations with percentiles;
* ``ReasonLog``, ``ThrottledLog``: warnings that do not flood the log.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
import random
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PointStamped
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidParameterValueException
from rclpy.executors import ExternalShutdownException
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

DEFAULT_COMMAND_TOPIC = "/velocity_controller/commands"
JOINT_STATES_TOPIC = "/joint_states"


def goal_topic(end_effector: str) -> str:
    return f"/goals/{end_effector}"


def goal_message(frame_id: str, stamp: Time, point: Sequence[float]) -> PointStamped:
    """A reach goal: ``point`` (x, y, z) in ``frame_id`` (the robot's base frame)."""
    msg = PointStamped()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.point.x, msg.point.y, msg.point.z = (float(v) for v in point)
    return msg


# Commands and joint states: only the newest sample matters. Publishers are
# reliable (what ros2_control, RViz and `ros2 topic echo` expect); the
# controller subscribes best-effort to joint states, which matches either kind
# of publisher (a real joint_state_broadcaster is reliable, many drivers are not).
COMMAND_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
STATE_PUB_QOS = COMMAND_QOS
STATE_SUB_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT,
                           durability=DurabilityPolicy.VOLATILE)
# Goals are events a user sends (`ros2 topic pub` defaults: reliable, volatile).
GOAL_QOS = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
MARKER_QOS = COMMAND_QOS
DIAGNOSTICS_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.VOLATILE)

_domain_counter = itertools.count()


ISOLATED_DOMAINS = (215, 232)
"""ROS domain ids of self-contained runs (demo, benchmarks): apart from the tests' 1..100, and within what DDS's
port mapping allows on Linux (0..101 and 215..232)."""


def unique_domain_id() -> int:
    """A ROS domain id in 1..100 that differs between calls of one process and between processes."""
    return (os.getpid() * 7 + next(_domain_counter) * 13) % 100 + 1


def ros_env(base: Mapping[str, str] | None = None, domain_id: int | None = None,
            isolate: bool = False) -> dict[str, str]:
    """``base`` (default os.environ) as our ROS processes need it.

    Discovery is loopback-only unless ``base`` says otherwise
    (``ROS_AUTOMATIC_DISCOVERY_RANGE``). A given ``domain_id`` is forced; with
    ``isolate``, a ``ROS_DOMAIN_ID`` in ``base`` is kept and one of
    ``ISOLATED_DOMAINS`` drawn when there is none, so self-contained runs (demo,
    benchmark) never meet the tests' processes (``unique_domain_id``: 1..100) on
    the machine.
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    elif isolate and not env.get("ROS_DOMAIN_ID"):
        env["ROS_DOMAIN_ID"] = str(random.randint(*ISOLATED_DOMAINS))
    env.setdefault("MUJOCO_GL", "egl")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    return env


Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Param:
    """A declared parameter: name, default (whose type is enforced), one-line doc, check of its values, unit.

    The one declaration of a parameter: the node declares it from this (its descriptor carries ``summary`` and
    ``rule``), and the controller's docs (the table of docs/real_robot.md, the comments of the params YAMLs) are
    generated from it (``mtpolicy.nodes.param_docs``)."""

    name: str
    default: Any
    description: str
    check: Check | None = None
    read_only: bool = False
    unit: str = ""
    """Unit of the value (s, Hz, rad, m); empty for none."""

    @property
    def rule(self) -> str:
        """The range a Range check allows (``>= 0``), for the docs; empty for other checks."""
        return str(self.check) if isinstance(self.check, Range) else ""

    @property
    def summary(self) -> str:
        """The unit, then the doc: what ``ros2 param describe`` and the params YAMLs' comments say."""
        return f"{self.unit}: {self.description}" if self.unit else self.description


@dataclass(frozen=True)
class Range:
    """A check that a number lies within [``low``, ``high``] (``low`` excluded if ``open_low``); its text, e.g.
    ``> 0`` or ``>= 0, <= 1000``, is the range the docs show."""

    low: float
    high: float = math.inf
    open_low: bool = False

    def __call__(self, v: float) -> str | None:
        if v < self.low or (self.open_low and v == self.low):
            return f"must be {'>' if self.open_low else '>='} {self.low:g}"
        return f"must be <= {self.high:g}" if v > self.high else None

    def __str__(self) -> str:
        bound = f"{'>' if self.open_low else '>='} {self.low:g}"
        return bound if math.isinf(self.high) else f"{bound}, <= {self.high:g}"


positive = Range(0.0, open_low=True)
non_negative = Range(0.0)


def numbers(v: list) -> str | None:
    ok = all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
    return None if ok else "must be a list of finite numbers"


def _coerce(value: Any, default: Any) -> tuple[Any, str | None]:
    """``value`` converted to the type of ``default`` (ints pass as floats), or a reason."""
    if isinstance(default, bool):
        return value, None if isinstance(value, bool) else f"expects a bool, got {value!r}"
    if isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return (float(value), None) if ok else (value, f"expects a number, got {value!r}")
    if isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return value, None if ok else f"expects an integer, got {value!r}"
    if isinstance(default, str):
        return value, None if isinstance(value, str) else f"expects a string, got {value!r}"
    if isinstance(default, list):
        value = list(value) if isinstance(value, (list, tuple)) else value
        if not isinstance(value, list):
            return value, f"expects a list, got {value!r}"
        if default and isinstance(default[0], float):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                return value, f"expects a list of numbers, got {value!r}"
            return [float(v) for v in value], None
        return value, None
    return value, None


class ParamSet:
    """Declares ``params`` on ``node`` and validates every change (start-up overrides included).

    Values are read as attributes: ``node.params.rate_hz``, kept up to date
    after each accepted change; ``on_change`` then gets the changed names. A rejected
    override at start raises StartupError naming the parameter, the rule and the
    value, in one line; at run time the set-parameters service answers the same.
    """

    def __init__(self, node: Node, params: Sequence[Param], on_change: Callable[[set[str]], None] | None = None):
        self._params = {p.name: p for p in params}
        self._on_change = on_change
        self._values: dict[str, Any] = {}
        self._rejection = ""  # the reason of the last rejected change
        unknown = unknown_overrides(node, self._params)
        if unknown:
            raise StartupError(f"unknown parameter(s) {unknown} given to node {node.get_name()!r} (misspelled?); "
                               f"its parameters are {sorted(self._params)}")
        node.add_on_set_parameters_callback(self._validate)
        for p in params:
            desc = ParameterDescriptor(description=p.summary, additional_constraints=p.rule,
                                       read_only=p.read_only, dynamic_typing=True)
            try:
                value = node.declare_parameter(p.name, p.default, desc).value
            except InvalidParameterValueException:
                raise StartupError(self._rejection) from None
            self._values[p.name] = _coerce(value, p.default)[0]
        node.add_post_set_parameters_callback(self._update)

    def _validate(self, changes: list[Parameter]) -> SetParametersResult:
        """Accept ``changes`` unless one has the wrong type or fails its check; the reason names it, in one line."""
        for change in changes:
            p = self._params.get(change.name)
            if p is None:
                continue
            value, reason = _coerce(change.value, p.default)
            if reason is None and p.check is not None and (reason := p.check(value)) is not None:
                reason += f" {p.unit}, got {value!r}" if p.unit else f", got {value!r}"
            if reason is not None:
                self._rejection = f"parameter {p.name!r}: {reason}"
                return SetParametersResult(successful=False, reason=self._rejection)
        return SetParametersResult(successful=True)

    def _update(self, changed: list[Parameter]) -> None:
        for change in changed:
            if change.name in self._params:
                self._values[change.name] = _coerce(change.value, self._params[change.name].default)[0]
        if self._on_change is not None:
            self._on_change({c.name for c in changed})

    def __getattr__(self, name: str) -> Any:
        """The current value (cached: read in every control tick)."""
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None


def unknown_overrides(node: Node, declared: Mapping[str, Param]) -> list[str]:
    """Names given to ``node`` (``-p``, a params file) that it neither declares nor gets from rclpy."""
    overrides = node._parameter_overrides  # rclpy keeps the overrides of this node here, and has no public getter
    return sorted(n for n in overrides if n not in declared and not node.has_parameter(n)
                  and not n.startswith("qos_overrides."))


def check_params_files(args: Sequence[str]) -> None:
    """StartupError (one line) if a ``--params-file`` in ``args`` is missing, not YAML, or not a mapping of node
    names to ``ros__parameters``; rcl would otherwise fail in ``rclpy.init`` with a traceback."""
    import yaml

    files = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--params-file"]
    for path in files:
        try:
            with open(path) as f:
                content = yaml.safe_load(f)
        except OSError as e:
            raise StartupError(f"params file {path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise StartupError(f"params file {path}: not valid YAML{where}: "
                               f"{getattr(e, 'problem', None) or e}") from None
        if not isinstance(content, dict) or not all(isinstance(v, dict) for v in content.values()):
            raise StartupError(f"params file {path}: expected a mapping of node names to "
                               "{ros__parameters: {name: value}}")


Severity = Literal["debug", "info", "warning", "error", "fatal"]


def log(logger: RcutilsLogger, severity: Severity, text: str) -> None:
    """Log ``text`` at ``severity`` from a call site of that severity alone.

    rclpy keys its logging state by call site (function, file, line) and raises
    ``ValueError`` when one site logs at two severities; each severity therefore
    has its own line here, and no site of this package chooses a severity at run
    time (tests/unit/test_log_sites.py checks every site).
    """
    if severity == "fatal":
        logger.fatal(text)
    elif severity == "error":
        logger.error(text)
    elif severity == "warning":
        logger.warning(text)
    elif severity == "info":
        logger.info(text)
    else:
        logger.debug(text)


class ThrottledLog:
    """Logs a message of each kind (a key) at once, then at most every ``period`` s, counting the ones held back."""

    def __init__(self, node: Node, period: float = 2.0):
        self._node, self._period = node, period
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def __call__(self, key: str, text: str, level: Severity = "warning") -> None:
        now = time.monotonic()
        if now - self._last.get(key, -math.inf) < self._period:
            self._held[key] = self._held.get(key, 0) + 1
            return
        held = self._held.pop(key, 0)
        suffix = f" ({held} more like it in the last {now - self._last[key]:.1f} s)" if held else ""
        log(self._node.get_logger(), level, text + suffix)
        self._last[key] = now


class LatencyStats:
    """Rolling window of durations (s), reported in ms percentiles."""

    def __init__(self, window: int = 2000):
        self.samples: deque[float] = deque(maxlen=window)
        self.count = 0

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)
        self.count += 1

    def percentiles_ms(self, *q: float) -> list[float]:
        if not self.samples:
            return [float("nan")] * len(q)
        return [float(v) * 1e3 for v in np.percentile(np.fromiter(self.samples, float), q)]


class ReasonLog:
    """Warns at once when the reason changes, then at most every ``period`` s while it persists."""

    def __init__(self, node: Node, period: float = 2.0):
        self._node, self._period = node, period
        self._reason: str | None = None
        self._last = -math.inf

    def __call__(self, reason: str | None, text: str = "{}") -> bool:
        """Log ``text`` formatted with ``reason`` (None: the condition ended); True if it changed."""
        now = time.monotonic()
        changed = reason != self._reason
        self._reason = reason
        if reason is not None and (changed or now - self._last >= self._period):
            self._node.get_logger().warning(text.format(reason))
            self._last = now
        return changed


class StartupError(RuntimeError):
    """A node cannot start (bad parameters, a model that does not fit): the message says why."""


STOP_POLL = 0.1
"""Seconds between checks for a stop request while spinning (Python runs signal handlers between waits)."""


def run_node(factory: Callable[[], Node], args: list[str] | None = None, gc_period: float | None = None) -> int:
    """Create the node, spin it until a stop signal (or its ``done`` future), shut down cleanly.

    SIGINT, SIGTERM and SIGHUP (``mtpolicy.nodes.lifecycle``) end the spin
    loop; the node's ``on_stop()``, if it has one, then runs while the ROS
    context is still up, and only then are the node and the context shut
    down, so no take can race a shutdown. With ``gc_period`` (s), automatic
    garbage collection is off and a timer collects every ``gc_period`` s
    instead (on steady time, so also under ``use_sim_time`` without a
    ``/clock``), so a collection never lands inside a latency-critical callback.
    Returns the process exit code: 0 on a stop (a RuntimeError from a take
    after the context was shut down from outside included) or when ``done``
    completes with 0; 1 if the node refused to start (the reason is logged
    as a fatal message, without a traceback).
    """
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from mtpolicy.nodes.lifecycle import handle_stop_signals, restore_signal_handlers, stop_requested
    from mtpolicy.policy import ModelMismatch
    from mtpolicy.robots import RobotSpecError

    args = sys.argv if args is None else args
    previous_handlers = handle_stop_signals()
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
                node.create_timer(gc_period, gc.collect, clock=Clock(clock_type=ClockType.STEADY_TIME))
            executor = SingleThreadedExecutor(context=node.context)
            executor.add_node(node)
            done = getattr(node, "done", None)
            try:
                while not stop_requested() and not (done is not None and done.done()):
                    executor.spin_once(timeout_sec=STOP_POLL)
                on_stop = getattr(node, "on_stop", None)
                if on_stop is not None:
                    on_stop()
                return int(done.result() or 0) if done is not None and done.done() else 0
            except RuntimeError:
                if node.context.ok():  # a take failing with the context up is a real error
                    raise
            finally:
                executor.shutdown()
                node.destroy_node()
    except ExternalShutdownException:
        pass
    finally:
        restore_signal_handlers(previous_handlers)
    return 0
