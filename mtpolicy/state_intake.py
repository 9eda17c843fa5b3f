"""Joint states into the controller, checked on arrival, without ROS: the newest joint angles and their times.

A state is judged by when it was taken, not only by when it arrived: its
header stamp, read on the controller's clock with ``stamp_tolerance`` of clock
offset forgiven (``mtpolicy.safety.stamp_age``), gives the monotonic time it
was taken at, ``arrival - age``. A zero stamp (none set), or a controller clock
that cannot be read against (a ``use_sim_time`` clock missing or paused),
counts as taken on arrival.

The checks of ``JointStateIntake.admit``, in order: names and positions of
equal length, no joint named twice, finite positions (the others kept), a stamp
not ahead of the clock, not stamped before the previous state of its joints
(while that one is fresh), positions within the limits, one publisher per
joint, no move impossible at the velocity limits in the time between the two
states' stamps. A failed check either ignores the state with a warning, or is
a state fault: a ``mtpolicy.supervisor.Hold`` (ERROR) that holds zeros for
``state_timeout``.

The names are matched, never the indices: a JointState may name joints the
robot model lacks (ignored) and lack joints the model serves (which must come
in another JointState, or their states go stale: zeros). Either is said once
per distinct set of names (``Admission.notes``), naming the joints -- a
driver's name that differs from the URDF's shows in the first message.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from typing import Literal, NamedTuple, Protocol, Sequence

import numpy as np

from mtpolicy import safety
from mtpolicy.supervisor import Hold, HoldKind, Severity


class StateTimes:
    """Per joint, of its newest state: monotonic arrival time, monotonic time taken, stamp age on arrival, stamp."""

    def __init__(self, n_joints: int):
        self.arrival = np.full(n_joints, -math.inf)
        self.taken = np.full(n_joints, -math.inf)
        self.lag = np.zeros(n_joints)
        """The stamp's age on arrival (s; 0 without a stamp)."""
        self.stamp = np.full(n_joints, math.nan)
        self.newest_stamp = -math.inf
        """The newest stamp recorded: a state stamped no earlier is in order (no need to look per joint)."""

    def record(self, dst: np.ndarray, arrival: float, taken: float, lag: float, stamp: float) -> None:
        """Joints ``dst`` have a new state."""
        self.arrival[dst], self.taken[dst], self.lag[dst], self.stamp[dst] = arrival, taken, lag, stamp
        if stamp > self.newest_stamp:
            self.newest_stamp = stamp

    def out_of_order(self, dst: np.ndarray, stamp: float, now: float, timeout: float) -> bool:
        """Whether a state of joints ``dst`` stamped ``stamp`` is older than a joint's previous one, itself taken
        within ``timeout`` s (an older previous state: the publisher restarted, or its clock was reset)."""
        if stamp >= self.newest_stamp:
            return False
        return bool(np.any((stamp < self.stamp[dst]) & (now - self.taken[dst] <= timeout)))

    def close_intervals(self, dst: np.ndarray, stamp: float, taken: float,
                        timeout: float) -> tuple[np.ndarray, np.ndarray]:
        """Seconds from each joint's previous state to a new one (``mtpolicy.safety.sample_intervals``), and which
        of them lie within [0, ``timeout``]: the pairs a position jump is judged on."""
        interval = safety.sample_intervals(stamp, self.stamp[dst], taken, self.taken[dst])
        return interval, (interval >= 0) & (interval <= timeout)

    def stale(self, now: float, timeout: float) -> Literal["missing", "arrival", "stamp"] | None:
        """Why the states are stale at ``now``: a joint has none, none arrived for ``timeout`` s, or one was taken
        (by its stamp) more than ``timeout`` s ago; None if they are fresh."""
        if not safety.is_stale(float(self.taken.min()), now, timeout):
            return None
        if not np.isfinite(self.taken).all():
            return "missing"
        return "arrival" if safety.is_stale(float(self.arrival.min()), now, timeout) else "stamp"

    def age(self, now: float) -> float:
        """Age (s) of the oldest joint's state by its stamp (by its arrival without one)."""
        return float(np.max(now - self.arrival + self.lag))


class StateFlow:
    """How the taken joint states arrive, over the last ``window`` s: their rate and their stamps' age on arrival."""

    def __init__(self, window: float = 1.0):
        self.window = window
        self._arrivals: deque[tuple[float, float]] = deque()  # (monotonic arrival, stamp age on arrival)

    def add(self, arrival: float, lag: float) -> None:
        self._arrivals.append((arrival, lag))
        while self._arrivals[0][0] < arrival - self.window:
            self._arrivals.popleft()

    def rate(self, now: float) -> float:
        """States per second over the window ending at ``now``."""
        return sum(1 for t, _ in self._arrivals if t >= now - self.window) / self.window

    def latency(self, now: float) -> float:
        """The median stamp age on arrival (s) over the window ending at ``now`` (0 without states): a stream that
        comes late, not one late sample."""
        lags = [lag for t, lag in self._arrivals if t >= now - self.window]
        return float(np.median(lags)) if lags else 0.0


class StateLayout(NamedTuple):
    """What a JointState with a given name list holds of the robot's joints."""

    src: np.ndarray
    """Indices in the message of the robot's joints."""
    dst: np.ndarray
    """Their joint indices."""
    names: list[str]
    limits: np.ndarray
    velocity_limits: np.ndarray
    duplicated: str | None
    """Why the name list must be rejected (a joint named twice), or None."""


class IntakeSettings(Protocol):
    """The controller parameters the joint-state checks read, at their current values."""

    state_timeout: float
    stamp_tolerance: float
    state_limit_margin: float


@dataclass(frozen=True)
class Admission:
    """What became of one JointState."""

    taken: bool
    """Its positions are now the joints' newest."""
    fault: Hold | None = None
    """A state fault it showed (ERROR: zeros for state_timeout), taken or not."""
    ignored: tuple[str, str] | None = None
    """(kind, message) of a warning about what of it was ignored."""
    notes: tuple[tuple[str, str], ...] = ()
    """(kind, message) of warnings about its set of names, the first time it arrives: joints the robot model lacks,
    joints the model serves that it lacks."""


class JointStateIntake:
    """The robot's newest joint angles (``q``) and their times, from the JointStates that pass the checks."""

    NAME_SETS_KEPT = 64
    """Distinct name sets remembered as already reported (then forgotten, and reported again)."""

    def __init__(self, joint_names: Sequence[str], joint_limits: np.ndarray, velocity_limits: np.ndarray,
                 settings: IntakeSettings, state_topic: str, model_joints: Sequence[str] = ()):
        """``joint_names``: the joints served, in order; ``model_joints``: every joint of the robot model (served,
        held or passive: names of a JointState not among them are reported; default: the served ones)."""
        n = len(joint_names)
        self.joint_names, self.joint_limits, self.velocity_limits = list(joint_names), joint_limits, velocity_limits
        self.settings, self.state_topic = settings, state_topic
        self.q = np.zeros(n)
        self.times = StateTimes(n)
        self.counts = dict(rejected_states=0, out_of_order_states=0)
        self.flow = StateFlow()
        self._joint_index = {name: i for i, name in enumerate(joint_names)}
        self._layouts: dict[tuple[str, ...], StateLayout] = {}
        self._source = np.full(n, None, dtype=object)  # publisher (DDS GID) of each joint's newest state
        self._model_joints = set(model_joints) | set(joint_names)
        self._name_sets: set[frozenset[str]] = set()  # name sets reported (``notes``)

    def admit(self, names: Sequence[str], positions: Sequence[float], stamp: float, lag: float, source: object,
              now: float) -> Admission:
        """Check a JointState of joint ``names`` at ``positions`` from publisher ``source`` (None: unknown),
        stamped ``stamp`` (NaN: none), whose stamp was ``lag`` s old on arrival at monotonic time ``now``; take it
        if it passes. The first JointState of a set of names also has the ``notes`` on them."""
        admission = self._admit(names, positions, stamp, lag, source, now)
        notes = self._name_notes(names)
        return replace(admission, notes=notes) if notes else admission

    def _name_notes(self, names: Sequence[str]) -> tuple[tuple[str, str], ...]:
        """The notes on a set of names not reported before (none if it was)."""
        key = frozenset(names)
        if key in self._name_sets:
            return ()
        if len(self._name_sets) >= self.NAME_SETS_KEPT:
            self._name_sets.clear()
        self._name_sets.add(key)
        unknown = sorted(key - self._model_joints)
        missing = [j for j in self.joint_names if j not in key]
        notes = []
        if unknown:
            notes.append(("state_unknown_joints", f"{self.state_topic} names joint(s) the robot model lacks, ignored: "
                                                  f"{unknown}"))
        if missing:
            notes.append(("state_missing_joints", f"{self.state_topic} sends a JointState without joint(s) the model "
                                                  f"needs: {missing} (their states must come in another, or go stale: "
                                                  "zeros)"))
        return tuple(notes)

    def _admit(self, names: Sequence[str], positions: Sequence[float], stamp: float, lag: float, source: object,
               now: float) -> Admission:
        if len(positions) != len(names):
            self.counts["rejected_states"] += 1
            return Admission(False, ignored=("state_lengths", f"JointState with {len(names)} names and "
                                                              f"{len(positions)} positions ignored"))
        layout = self._layout(names)
        if layout.duplicated:
            return self._fault(HoldKind.DUPLICATED_NAMES, layout.duplicated)
        position = np.asarray(positions, dtype=np.float64)[layout.src]
        ignored = None
        if not (finite := np.isfinite(position)).all():
            self.counts["rejected_states"] += int(np.count_nonzero(~finite))
            bad = [self.joint_names[i] for i in layout.dst[~finite]]
            ignored = ("state_non_finite", f"non-finite position of joint(s) {bad} ignored")
            position, layout = position[finite], self._layout_of(layout.src[finite], layout.dst[finite])
        tolerance = self.settings.stamp_tolerance
        if (age := safety.stamp_age(lag, tolerance)) < 0:
            return self._fault(HoldKind.STAMP_AHEAD, f"joint states stamped {-lag:.3f} s ahead of this node's clock "
                                                     f"(stamp_tolerance = {tolerance} s): are the clocks synchronised?",
                               ignored)
        admission = self._check(layout, position, source, now, stamp, now - age, ignored)
        if admission.taken:
            self.q[layout.dst] = position
            self.times.record(layout.dst, now, now - age, lag, stamp)
            self.flow.add(now, age)
        return admission

    def _check(self, layout: StateLayout, position: np.ndarray, source: object, now: float, stamp: float,
               taken: float, ignored: tuple[str, str] | None) -> Admission:
        """The checks against the joints' previous states (order, limits, publisher, jump), ``taken`` the monotonic
        time the new one was taken. A second publisher or a jump is a fault but the state is taken (it may be a
        reset); the state is ignored if out of order, refused if beyond the limits."""
        timeout, dst = self.settings.state_timeout, layout.dst
        if stamp == stamp and self.times.out_of_order(dst, stamp, now, timeout):  # NaN: no stamp
            self.counts["out_of_order_states"] += 1
            return Admission(False, ignored=("out_of_order", "joint states stamped before the previous ones ignored"))
        if reason := safety.outside_limits(layout.names, position, layout.limits, self.settings.state_limit_margin):
            return self._fault(HoldKind.OUTSIDE_LIMITS, reason, ignored)
        sources = self._source[dst]
        if source is not None and (sources != source).any():
            recent = now - self.times.arrival[dst] <= timeout
            others = [j for j, r, s in zip(layout.names, recent, sources) if r and s is not None and s != source]
            self._source[dst] = source
            if others:
                return self._fault(HoldKind.SEVERAL_PUBLISHERS, f"{self.state_topic} has more than one publisher of "
                                   f"joint(s) {others} (within state_timeout = {timeout} s)", ignored, taken=True)
        interval, close = self.times.close_intervals(dst, stamp, taken, timeout)
        if close.all():
            reason = safety.implausible_jump(layout.names, self.q[dst], position, interval, layout.velocity_limits)
        elif close.any():
            reason = safety.implausible_jump([n for n, c in zip(layout.names, close) if c], self.q[dst][close],
                                             position[close], interval[close], layout.velocity_limits[close])
        else:
            reason = None
        if reason:
            return self._fault(HoldKind.POSITION_JUMP, reason, ignored, taken=True)
        return Admission(True, ignored=ignored)

    def _fault(self, kind: HoldKind, detail: str, ignored: tuple[str, str] | None = None,
               taken: bool = False) -> Admission:
        self.counts["rejected_states"] += 1
        return Admission(taken, Hold(kind, Severity.ERROR, detail), ignored)

    def _layout(self, names: Sequence[str]) -> StateLayout:
        """What a JointState naming ``names`` holds of this robot's joints; cached per name list."""
        key = tuple(names)
        layout = self._layouts.get(key)
        if layout is None:
            if len(self._layouts) > 16:  # publishers with ever-changing name lists: stay bounded
                self._layouts.clear()
            src = np.array([k for k, n in enumerate(names) if n in self._joint_index], dtype=np.intp)
            layout = self._layouts[key] = self._layout_of(src, np.array([self._joint_index[names[k]] for k in src],
                                                                        dtype=np.intp), safety.duplicated_names(names))
        return layout

    def _layout_of(self, src: np.ndarray, dst: np.ndarray, duplicated: str | None = None) -> StateLayout:
        """The layout of the robot's joints ``dst`` at indices ``src`` of a message."""
        return StateLayout(src, dst, [self.joint_names[i] for i in dst], self.joint_limits[dst],
                           self.velocity_limits[dst], duplicated)
