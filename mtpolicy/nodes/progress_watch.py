"""Whether the end effectors make progress towards their goals while the policy runs."""

from __future__ import annotations

import time

import numpy as np

from mtpolicy.kinematics import Kinematics
from mtpolicy.nodes.params import ParamSet
from mtpolicy.nodes.reporting import ThrottledLog
from mtpolicy.state_intake import JointStateIntake
from mtpolicy.workspace import ProgressMonitor


class ProgressWatch:
    """Watches the end effectors approach their goals (``check``, every 2nd housekeeping round: off the tick).

    An end effector farther than the reach ``tolerance`` from its goal whose error has not shrunk for
    ``progress_timeout`` while the policy runs is ``stalled``, warned (throttled per end effector); while the robot
    is held, or with progress_timeout 0, nothing is (``ProgressMonitor``). ``restart(i, now)`` when goal i changes.
    The errors are those at the newest measured joint angles (the policy observes predicted ones).
    """

    def __init__(self, kin: Kinematics, states: JointStateIntake, params: ParamSet, warn: ThrottledLog,
                 tolerance: float):
        self._kin, self._states, self._params, self._warn = kin, states, params, warn
        self._names = kin.spec.end_effectors
        self._monitor = ProgressMonitor(len(self._names), tolerance)
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
            self.stalled = []
            return
        errors = self.errors(goals)
        self._monitor.update(errors, now)
        self.stalled = self._monitor.stalled(errors, now, self._params.progress_timeout)
        for i in self.stalled:
            self._warn(f"stalled_{i}", f"no progress towards the goal of {self._names[i]!r} for "
                                       f"{self._params.progress_timeout} s: error {errors[i]:.3f} m (out of reach, "
                                       "or not reachable together with the other goals?)")
