"""Whether the end effectors make progress towards their goals while the policy runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np

from mtpolicy.kinematics import Kinematics
from mtpolicy.nodes.params import ParamSet
from mtpolicy.nodes.reporting import ThrottledLog
from mtpolicy.state_intake import JointStateIntake
from mtpolicy.workspace import CounterWindow, ProgressMonitor

GUARD_ACTIONS = {
    "collision_guarded": "commands slid along or scaled down before a self-collision",
    "limit_guarded": "joints stopped at a position limit",
    "braked": "commands braked before a position limit",
    "clamped": "joint velocities clamped to their limits",
    "acceleration_limited": "commands held to the acceleration limits",
}
"""The safety filters' counters (``Supervisor.counts``, ``CommandRamp.counts``) a stall warning names, and what each
counts."""


def guard_summary(rises: Mapping[str, int]) -> str:
    """What the guards did to the commands, from each counter's rise: "the guards acted: 12 commands slid along or
    scaled down before a self-collision, ..." or "no guard acted on the commands"."""
    acted = [f"{rises[name]} {what}" for name, what in GUARD_ACTIONS.items() if rises.get(name, 0) > 0]
    return "the guards acted: " + ", ".join(acted) if acted else "no guard acted on the commands"


class ProgressWatch:
    """Watches the end effectors approach their goals (``check``, every 2nd housekeeping round: off the tick).

    An end effector farther than the reach ``tolerance`` from its goal whose error has not shrunk for
    ``progress_timeout`` while the policy runs is ``stalled``, warned (throttled per end effector); while the robot
    is held, or with progress_timeout 0, nothing is (``ProgressMonitor``). ``restart(i, now)`` when goal i changes.
    The errors are those at the newest measured joint angles (the policy observes predicted ones). The warning says
    which safety filters changed the commands over the last ``progress_timeout`` (``guard_counts``: their counters'
    totals, ``GUARD_ACTIONS``): a guard that holds the robot back is told apart from a goal out of reach.
    """

    def __init__(self, kin: Kinematics, states: JointStateIntake, params: ParamSet, warn: ThrottledLog,
                 tolerance: float, guard_counts: Callable[[], Mapping[str, int]]):
        self._kin, self._states, self._params, self._warn = kin, states, params, warn
        self._names = kin.spec.end_effectors
        self._monitor = ProgressMonitor(len(self._names), tolerance)
        self._guard_counts, self._guards = guard_counts, CounterWindow()
        self.stalled: list[int] = []
        """The end effectors stalled at the last check."""

    def restart(self, i: int, now: float) -> None:
        self._monitor.restart(i, now)

    def errors(self, goals: np.ndarray) -> np.ndarray:
        """Each end effector's distance (m) to its goal in ``goals`` (n_ee, 3)."""
        return np.linalg.norm(self._kin.ee_positions(self._states.q) - goals, axis=1)

    def check(self, goals: np.ndarray, running: bool) -> None:
        """Judge the progress towards ``goals`` (``running``: the policy commanded the last tick)."""
        now = time.monotonic()
        if not running or self._params.progress_timeout <= 0:
            self._monitor.pause(now)
            self._guards.clear()
            self.stalled = []
            return
        errors = self.errors(goals)
        self._monitor.update(errors, now)
        rises = self._guards.update(now, self._guard_counts(), self._params.progress_timeout)
        self.stalled = self._monitor.stalled(errors, now, self._params.progress_timeout)
        for i in self.stalled:
            self._warn(f"stalled_{i}", f"no progress towards the goal of {self._names[i]!r} for "
                                       f"{self._params.progress_timeout} s: error {errors[i]:.3f} m; over that time "
                                       f"{guard_summary(rises)} (out of reach, not reachable together with the other "
                                       "goals, or held back by a guard?)")
