"""The policy controller's safety supervisor, without ROS: checks that return typed holds, and the command allowed.

A ``Hold`` is a reason to command zeros: its kind, its severity (the level of
the controller's /diagnostics status) and a one-line detail. Each control tick
the controller hands its current inputs (``Inputs``: the joint states' times,
the newest state fault, the goals' arrival times, the e-stop, the time) to
``Supervisor.hold``, which runs ``TICK_CHECKS`` in order, the ERROR ones
first, and returns the first hold (so the most severe one). Without a hold,
``Supervisor.command`` filters the policy's output: a non-finite output is a
hold itself; otherwise every joint velocity is clamped to its limit, a joint
at a position limit may only move inwards, and a command whose move would put
the robot into a new self-collision slides along the contacts or is scaled
down (``safety.CollisionGuard``).
Joint states are checked as they arrive (``mtpolicy.state_intake``): a state
fault holds for ``state_timeout``.

Whatever it decides, the command sent changes no faster than the robot's
acceleration limits (``CommandRamp``): a hold's zeros are reached by a ramp at
a_max, and so are the e-stop's and a non-finite output's -- the fastest stop a
driver that refuses velocity steps accepts (a step would be refused, e.g. by
Franka's discontinuity reflex, which also stops the robot, but in an error
state that needs a recovery); the hardware e-stop stays the robot's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Callable, Literal, Protocol, Sequence

import numpy as np

from mtpolicy import safety


class Severity(IntEnum):
    """How bad a condition is, as the level of a diagnostic_msgs/DiagnosticStatus (OK 0, WARN 1, ERROR 2)."""

    OK = 0
    WARN = 1
    ERROR = 2

    @property
    def log_level(self) -> Literal["info", "warning", "error"]:
        """The logger severity of this level (``mtpolicy.nodes.reporting.log``)."""
        return ("info", "warning", "error")[self]


class HoldKind(Enum):
    """Why the command is zeros. A joint-state fault's value names the fault ("implausible joint states (...)")."""

    DUPLICATED_NAMES = "duplicated joint names"
    STAMP_AHEAD = "stamp ahead of this node's clock"
    OUTSIDE_LIMITS = "position outside the joint limits"
    SEVERAL_PUBLISHERS = "several publishers"
    POSITION_JUMP = "position jump"
    STATES_STALE = "joint states stale"
    STATES_MISSING = "no joint state yet"
    DISABLED = "disabled by ~/enable"
    GOAL_MISSING = "no goal yet"
    GOAL_EXPIRED = "goal expired"
    PLANNING = "planning the first goal set"
    NON_FINITE = "policy output is not finite"


STATE_FAULTS = frozenset({HoldKind.DUPLICATED_NAMES, HoldKind.STAMP_AHEAD, HoldKind.OUTSIDE_LIMITS,
                          HoldKind.SEVERAL_PUBLISHERS, HoldKind.POSITION_JUMP})
"""The kinds of hold a JointState found implausible on arrival starts (mtpolicy.state_intake)."""


@dataclass(frozen=True)
class Hold:
    """A reason to command zeros: what (``kind``), how bad (``severity``), and why in one line (``detail``).

    Its text (``str``) is the detail, named after its kind for a joint-state fault (whose detail says what the
    state did, e.g. which joint jumped)."""

    kind: HoldKind
    severity: Severity
    detail: str

    def __str__(self) -> str:
        if self.kind in STATE_FAULTS:
            return f"implausible joint states ({self.kind.value}): {self.detail}"
        return self.detail


WAITING_FOR_PLAN = Hold(HoldKind.PLANNING, Severity.WARN, "planning the goal configuration of the first goal set")
"""The hold of a planner-conditioned policy before its first plan is ready."""
NON_FINITE = Hold(HoldKind.NON_FINITE, Severity.ERROR, "policy output is not finite")
"""The hold of a tick whose policy output had a NaN or an infinity."""


class StateTimes(Protocol):
    """When each joint's newest state arrived and was taken, as the checks read it (``mtpolicy.state_intake``
    keeps it: the intake builds on the holds defined here, so this side names only what it reads)."""

    taken: np.ndarray
    """Per joint: monotonic time its newest state was taken (-inf: none yet)."""
    arrival: np.ndarray
    """Per joint: monotonic time its newest state arrived (-inf: none yet)."""

    def stale(self, now: float, timeout: float) -> Literal["missing", "arrival", "stamp"] | None:
        """Why the states are stale at ``now`` (None: fresh)."""


class Settings(Protocol):
    """The controller parameters the checks read, at their current values (the node passes its ParamSet)."""

    state_timeout: float
    stamp_tolerance: float
    goal_timeout: float
    limit_margin: float


@dataclass
class Inputs:
    """The controller's current inputs as the checks read them; the node updates them as messages arrive."""

    times: StateTimes
    """When each joint's newest state arrived and was taken (by its stamp)."""
    goal_stamps: np.ndarray
    """Monotonic arrival time of each end effector's newest valid goal (-inf: none yet)."""
    enabled: bool = True
    """The e-stop service ``~/enable``: False => zeros."""
    state_fault: Hold | None = None
    """The newest joint-state fault, and (below) the monotonic time it was found."""
    state_fault_time: float = -math.inf
    now: float = 0.0
    """Monotonic time of the tick."""


@dataclass(frozen=True)
class SupervisedRobot:
    """The supervised robot as the holds name it: its joints and end effectors, and the topics their inputs come on."""

    joint_names: Sequence[str]
    end_effectors: Sequence[str]
    goal_topics: Sequence[str]
    state_topic: str


Check = Callable[[Inputs, Settings, SupervisedRobot], "Hold | None"]
"""A check of the inputs at a tick: the hold it finds, or None."""


def recent_state_fault(inputs: Inputs, settings: Settings, robot: SupervisedRobot) -> Hold | None:
    """A joint-state fault found within the last ``state_timeout`` s (ERROR)."""
    if inputs.now - inputs.state_fault_time <= settings.state_timeout:
        return inputs.state_fault
    return None


def fresh_states(inputs: Inputs, settings: Settings, robot: SupervisedRobot) -> Hold | None:
    """Every joint has a state, one that arrived and (by its stamp) was taken within ``state_timeout`` s: ERROR
    if not (WARN while a joint has had none yet)."""
    timeout = settings.state_timeout
    stale = inputs.times.stale(inputs.now, timeout)
    if stale is None:
        return None
    if stale == "missing":
        missing = [j for j, t in zip(robot.joint_names, inputs.times.taken) if not math.isfinite(t)]
        return Hold(HoldKind.STATES_MISSING, Severity.WARN, f"no joint state yet for {missing} on {robot.state_topic}")
    if stale == "arrival":
        old = [j for j, t in zip(robot.joint_names, inputs.times.arrival) if safety.is_stale(t, inputs.now, timeout)]
        which = "" if len(old) == len(robot.joint_names) else f" of {old}"  # the others still come: name the missing
        return Hold(HoldKind.STATES_STALE, Severity.ERROR,
                    f"joint states stale (none{which} for state_timeout = {timeout} s)")
    return Hold(HoldKind.STATES_STALE, Severity.ERROR, f"joint states stale (stamped more than state_timeout = "
                                                       f"{timeout} s ago, beyond stamp_tolerance = "
                                                       f"{settings.stamp_tolerance} s)")


def enabled(inputs: Inputs, settings: Settings, robot: SupervisedRobot) -> Hold | None:
    """The e-stop is off (WARN while ``~/enable`` is false)."""
    return None if inputs.enabled else Hold(HoldKind.DISABLED, Severity.WARN, "disabled by ~/enable")


def goals_present(inputs: Inputs, settings: Settings, robot: SupervisedRobot) -> Hold | None:
    """Every end effector has a goal, none older than ``goal_timeout`` s (0: goals never expire); WARN if not."""
    stamps, timeout, now = inputs.goal_stamps, settings.goal_timeout, inputs.now
    oldest = float(stamps.min())
    if math.isfinite(oldest) and (timeout <= 0 or not safety.is_stale(oldest, now, timeout)):
        return None
    for ee, topic, stamp in zip(robot.end_effectors, robot.goal_topics, stamps):
        if not math.isfinite(stamp):
            return Hold(HoldKind.GOAL_MISSING, Severity.WARN, f"no goal yet for {ee!r} on {topic}")
        if timeout > 0 and safety.is_stale(stamp, now, timeout):
            return Hold(HoldKind.GOAL_EXPIRED, Severity.WARN, f"goal for {ee!r} expired (goal_timeout {timeout} s)")
    return None


TICK_CHECKS: tuple[Check, ...] = (recent_state_fault, fresh_states, enabled, goals_present)
"""The checks of every tick, in order: the ones that can hold with an ERROR first."""


class Supervisor:
    """Decides each tick between zeros (a hold) and the policy's command, filtered to the robot's limits."""

    def __init__(self, robot: SupervisedRobot, settings: Settings, velocity_limits: np.ndarray,
                 joint_limits: np.ndarray, checks: Sequence[Check] = TICK_CHECKS,
                 collision_guard: safety.GuardFn | None = None):
        self.robot, self.settings, self.checks = robot, settings, tuple(checks)
        self.velocity_limits, self.joint_limits = velocity_limits, joint_limits
        self.collision_guard = collision_guard
        """Slides or scales down a command whose move would put the robot into a new self-collision (None: off)."""
        self.counts = dict(clamped=0, limit_guarded=0, non_finite=0, collision_guarded=0)
        """Joint velocities clamped, joints stopped at a limit, non-finite outputs, commands changed before a
        self-collision: totals."""

    def hold(self, inputs: Inputs) -> Hold | None:
        """The first hold the checks find in ``inputs``, or None: the policy may command."""
        for check in self.checks:
            hold = check(inputs, self.settings, self.robot)
            if hold is not None:
                return hold
        return None

    def command(self, q: np.ndarray, output: np.ndarray) -> tuple[np.ndarray, Hold | None]:
        """The joint velocities to command for the policy's ``output`` at joint angles ``q``: zeros and NON_FINITE
        for a NaN or an infinity; else clamped to the velocity limits, joints at (within ``limit_margin`` of) a
        position limit only moving inwards, and changed by the collision guard (if any) until its move puts the
        robot into no new self-collision (its slide leaves the joints at a limit as they are)."""
        velocity, finite = safety.finite_or_zero(output)
        if not finite:
            self.counts["non_finite"] += 1
            return velocity, NON_FINITE
        velocity, counts = safety.limited_command(q, velocity, self.velocity_limits, self.joint_limits,
                                                  self.settings.limit_margin, self.collision_guard)
        for name, n in counts.items():
            self.counts[name] += n
        return velocity, None


class CommandRamp:
    """The velocity command actually sent: each new one within a_max dt of the previous one (dt: the time since it,
    at most ``max_dt``), braked before the position limits (``safety.braking_guard``). Every command goes through
    it: the policy's, a hold's zeros, the e-stop's zeros (see the module docstring)."""

    def __init__(self, acceleration_limits: np.ndarray, joint_limits: np.ndarray, period: float):
        self.acceleration_limits, self.joint_limits = np.asarray(acceleration_limits, np.float64), joint_limits
        self.period = period
        """s between two commands as planned; the first command's dt."""
        self.max_dt = 2 * period
        """The longest dt a step is allowed for: a late command steps no further than one 2 periods late would."""
        self.velocity = np.zeros(len(self.acceleration_limits))
        """The previous command (rad/s); zeros before the first."""
        self.time: float | None = None
        """Monotonic time of the previous command (None: none yet)."""
        self.counts = dict(acceleration_limited=0, braked=0)
        """Commands limited by a joint's acceleration limit, commands braked before a position limit: totals."""

    @property
    def at_rest(self) -> bool:
        """Whether the previous command was zeros."""
        return not self.velocity.any()

    def dt(self, now: float) -> float:
        """Seconds the next command, at ``now``, may step for: since the previous one, capped at ``max_dt``."""
        return self.period if self.time is None else min(max(now - self.time, 0.0), self.max_dt)

    def __call__(self, target: np.ndarray, q: np.ndarray, now: float, margin: float = 0.0) -> tuple[np.ndarray, float]:
        """The command to send at ``now`` for ``target`` (joint velocities, rad/s) at joint angles ``q``, and its
        dt; it becomes the previous command."""
        dt = self.dt(now)
        target, braked = safety.braking_guard(q, target, self.joint_limits, self.acceleration_limits, dt, margin)
        velocity, limited = safety.rate_limit(target, self.velocity, self.acceleration_limits, dt)
        self.counts["braked"] += braked > 0
        self.counts["acceleration_limited"] += limited > 0
        self.velocity, self.time = velocity, now
        return velocity, dt

    def stop_time(self) -> float:
        """Seconds a ramp at a_max takes from the previous command to zeros (0: at rest or unlimited)."""
        with np.errstate(divide="ignore"):
            times = np.abs(self.velocity) / self.acceleration_limits
        return float(times.max(initial=0.0))
