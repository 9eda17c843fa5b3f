"""Declared parameters of the nodes: ``Param`` (name, default, doc, check, unit), ``ParamSet`` (declares them,
validates every change with a reason, refuses a parameter the node does not declare), and the one-line refusal of a
malformed params file.

The overrides a node is given (``-p``, a params file) are read through rclpy's public parameter API: a node made with
``PARAMETER_OPTIONS`` has each of them declared at construction, so ``ParamSet`` lists them (``list_parameters``),
refuses the names it does not know and declares its own again with their descriptors and checks (the override
still applies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from mtpolicy.nodes.reporting import log_fault

PARAMETER_OPTIONS: dict[str, Any] = {"automatically_declare_parameters_from_overrides": True}
"""Node options of a node whose parameters a ``ParamSet`` declares: ``super().__init__(name, **PARAMETER_OPTIONS)``."""
RCLPY_PARAMETERS = ("use_sim_time", "start_type_description_service")
"""The parameters rclpy declares on every node itself (besides ``qos_overrides.*``)."""


class StartupError(RuntimeError):
    """A node cannot start (bad parameters, a model that does not fit): the message says why."""


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
    items: type | None = None
    """Element type of a list parameter whose default is empty (float: finite numbers; default str)."""

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
    """A check that a number lies within [``low``, ``high``] (``low`` excluded if ``open_low``), or is exactly 0 if
    ``or_zero`` (0 meaning "off" or "the default"); its text, e.g. ``> 0`` or ``0 or >= 1, <= 1000``, is the range
    the docs show. NaN lies in no range."""

    low: float
    high: float = math.inf
    open_low: bool = False
    or_zero: bool = False

    def __call__(self, v: float) -> str | None:
        if self.or_zero and v == 0:
            return None
        if not (v >= self.low and v <= self.high) or (self.open_low and v == self.low):
            return f"must be {self}"
        return None

    def __str__(self) -> str:
        bound = f"{'>' if self.open_low else '>='} {self.low:g}"
        bound = bound if math.isinf(self.high) else f"{bound}, <= {self.high:g}"
        return f"0 or {bound}" if self.or_zero else bound


PRIORITIES = Range(1, 99, or_zero=True)
"""SCHED_FIFO priorities, or 0: the default scheduler."""

REALTIME_PRIORITY = Param(
    "realtime_priority", 0, "SCHED_FIFO priority of this node's threads, as a robot computer runs its control loop: "
    "a busy computer then delays its ticks by far less (docs/real_robot.md); it needs the right to real-time "
    "priorities (root, CAP_SYS_NICE or an rtprio limit), else a warning and the default scheduler; 0: the default "
    "scheduler", PRIORITIES, read_only=True)
"""The one declaration of the sim's and the controller's ``realtime_priority`` (``process.take_realtime_priority``)."""


def _coerce(value: Any, default: Any, items: type | None = None) -> tuple[Any, str | None]:
    """``value`` converted to the type of ``default`` (ints pass as floats; a float must be finite), or a reason; a
    list's elements to ``items`` (default: the type of the default's first element, else str)."""
    if isinstance(default, bool):
        return value, None if isinstance(value, bool) else f"expects a bool, got {value!r}"
    if isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            return value, f"must be finite, got {value!r}"
        return (float(value), None) if ok else (value, f"expects a number, got {value!r}")
    if isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return value, None if ok else f"expects an integer, got {value!r}"
    if isinstance(default, str):
        return value, None if isinstance(value, str) else f"expects a string, got {value!r}"
    if isinstance(default, list):
        if not isinstance(value, (list, tuple)):
            return value, f"expects a list, got {value!r}"
        kind = items or (type(default[0]) if default else str)
        coerced = [_coerce(v, kind()) for v in value]
        reasons = [reason for _, reason in coerced if reason]
        return ([v for v, _ in coerced], None) if not reasons else (list(value), f"list element {reasons[0]}")
    return value, None


def _checked(check: Check, value: Any) -> str | None:
    """``check(value)``; a check that raises refuses the value with the error as its reason."""
    try:
        return check(value)
    except Exception as e:  # noqa: BLE001 - a parameter callback must never raise into the node
        return f"cannot be checked ({type(e).__name__}: {e})"


class ParamSet:
    """Declares ``params`` on ``node`` (made with ``PARAMETER_OPTIONS``) and validates every change (start-up
    overrides included).

    Values are read as attributes: ``node.params.rate_hz``, kept up to date
    after each accepted change; ``on_change`` then gets the changed names. A rejected
    override at start raises StartupError naming the parameter, the rule and the
    value, in one line; at run time the set-parameters service answers the same.
    """

    def __init__(self, node: Node, params: Sequence[Param], on_change: Callable[[set[str]], None] | None = None):
        self._params = {p.name: p for p in params}
        self._node, self._on_change = node, on_change
        self._values: dict[str, Any] = {}
        self._rejection = ""  # the reason of the last rejected change
        overridden = set(node.list_parameters([], 0).names) - set(RCLPY_PARAMETERS)  # PARAMETER_OPTIONS: declared
        unknown = sorted(n for n in overridden if n not in self._params and not n.startswith("qos_overrides."))
        if unknown:
            raise StartupError(f"unknown parameter(s) {unknown} given to node {node.get_name()!r} (misspelled?); "
                               f"its parameters are {sorted(self._params)}")
        for name in overridden & set(self._params):  # declared again below, with its descriptor and its check
            node.undeclare_parameter(name)
        node.add_on_set_parameters_callback(self._validate)
        for p in params:
            desc = ParameterDescriptor(description=p.summary, additional_constraints=p.rule,
                                       read_only=p.read_only, dynamic_typing=True)
            try:
                value = node.declare_parameter(p.name, p.default, desc).value
            except InvalidParameterValueException:
                raise StartupError(self._rejection) from None
            self._values[p.name] = _coerce(value, p.default, p.items)[0]
        node.add_post_set_parameters_callback(self._update)

    def _validate(self, changes: list[Parameter]) -> SetParametersResult:
        """Accept ``changes`` unless one has the wrong type or fails its check; the reason names it, in one line."""
        for change in changes:
            p = self._params.get(change.name)
            if p is None:
                continue
            value, reason = _coerce(change.value, p.default, p.items)
            if reason is None and p.check is not None and (reason := _checked(p.check, value)) is not None:
                reason += f" {p.unit}, got {value!r}" if p.unit else f", got {value!r}"
            if reason is not None:
                self._rejection = f"parameter {p.name!r}: {reason}"
                return SetParametersResult(successful=False, reason=self._rejection)
        return SetParametersResult(successful=True)

    def _update(self, changed: list[Parameter]) -> None:
        """Take the accepted values; then ``on_change``, whose error goes to the node's ``on_fault`` (or is
        logged): the set-parameters service still answers."""
        for change in changed:
            if change.name in self._params:
                p = self._params[change.name]
                self._values[change.name] = _coerce(change.value, p.default, p.items)[0]
        if self._on_change is not None:
            try:
                self._on_change({c.name for c in changed})
            except Exception as error:  # noqa: BLE001 - survived, as an error in any other callback
                (getattr(self._node, "on_fault", None) or log_fault(self._node))(error)

    def __getattr__(self, name: str) -> Any:
        """The current value (cached: read in every control tick)."""
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None


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
