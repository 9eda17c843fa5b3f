"""The controller's goals: each goal message checked before it is trusted, and the goals the policy observes."""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
from geometry_msgs.msg import PointStamped
from std_msgs.msg import Header

from mtpolicy import safety
from mtpolicy.nodes.clock_watch import ClockWatch
from mtpolicy.nodes.params import ParamSet
from mtpolicy.nodes.planning import PlannedGoals
from mtpolicy.nodes.reporting import ThrottledLog
from mtpolicy.nodes.stamps import stamp_seconds
from mtpolicy.robots import RobotSpec
from mtpolicy.supervisor import WAITING_FOR_PLAN, Hold
from mtpolicy.workspace import Workspace


class GoalIntake:
    """Goals in (``on_goal(i, msg)``, the callback of end effector i's goal topic), and the goals the policy observes.

    A goal is rejected, the last valid one kept, when it is in a frame other than the robot's base or not finite
    (``safety.goal_rejection``), outside its end effector's reach region by more than workspace_margin
    (``Workspace``), or stamped more than goal_max_age away from now on this node's clock (stamp_tolerance
    forgiven): counted (``counts``), warned (throttled per kind) and kept as ``rejection``, with its
    ``rejection_time``, for /diagnostics. A valid goal stamps ``stamps[i]`` with its arrival and becomes
    ``positions[i]``; for a planner-conditioned policy it joins a goal set of ``planned`` instead, and
    ``follow_plans`` (each tick) takes ``positions`` and the goal configuration ``config`` from the newest plan.
    ``on_change(i, now)`` whenever goal i changes.
    """

    def __init__(self, spec: RobotSpec, workspace: Workspace, params: ParamSet, clock: ClockWatch,
                 stamps: np.ndarray, planned: PlannedGoals | None, warn: ThrottledLog,
                 on_change: Callable[[int, float], None]):
        self._spec, self._workspace, self._params, self._clock = spec, workspace, params, clock
        self.stamps, self.planned, self._warn, self._on_change = stamps, planned, warn, on_change
        self.positions = np.full((spec.n_tasks, 3), np.nan)
        """(n_ee, 3) the goals the policy observes (NaN: none yet)."""
        self.config: np.ndarray | None = None
        """q* of the plan followed (planner-conditioned policies)."""
        self.counts = dict(rejected_goals=0)
        self.rejection, self.rejection_time = "", -math.inf

    def on_goal(self, i: int, msg: PointStamped) -> None:
        point = (msg.point.x, msg.point.y, msg.point.z)
        now = time.monotonic()
        rejection = self._why_reject(i, point, msg.header)
        if rejection is not None:
            kind, reason = rejection
            self.counts["rejected_goals"] += 1
            self.rejection = f"goal for {self._spec.end_effectors[i]!r} rejected: {reason}"
            self.rejection_time = now
            self._warn(f"goal_{i}_{kind}", f"{self.rejection}; keeping the last valid goal")
            return
        self.stamps[i] = now
        if self.planned is not None:
            self.planned.sets.add(i, np.array(point), now)  # the tick submits the goal set once it closes
            return
        if not np.array_equal(self.positions[i], point):
            self._on_change(i, now)
        self.positions[i] = point

    def _why_reject(self, i: int, point: tuple[float, float, float], header: Header) -> tuple[str, str] | None:
        """(kind, reason) to reject a goal for end effector ``i``, or None; a warning is throttled per kind."""
        if reason := safety.goal_rejection(point, header.frame_id, self._spec.base_body):
            return ("frame" if all(map(math.isfinite, point)) else "non_finite"), reason
        if reason := self._workspace.goal_rejection(i, np.array(point), self._params.workspace_margin):
            return "workspace", reason
        lag, max_age = self._clock.stamp_lag(stamp_seconds(header.stamp)), self._params.goal_max_age
        age = safety.stamp_age(lag, self._params.stamp_tolerance)
        if max_age > 0 and age > max_age:
            return "old", f"stamped {lag:.1f} s ago (goal_max_age = {max_age} s)"
        if max_age > 0 and age < -max_age:
            return "ahead", f"stamped {-lag:.1f} s ahead of this node's clock (goal_max_age = {max_age} s): are the " \
                            "clocks synchronised?"
        return None

    def follow_plans(self, q: np.ndarray, hold: Hold | None, now: float) -> Hold | None:
        """Follow the newest finished plan (observe its goal set and goal configuration; a rejected one is reported,
        not followed), submitting a closed goal set from joint angles ``q``; the hold: ``hold``, or
        WAITING_FOR_PLAN until the first plan is ready."""
        assert self.planned is not None, "only a planner-conditioned policy follows plans"
        plan = self.planned.update(q, hold is None, now)
        if plan is not None and plan.rejected:
            self._warn("plan_rejected", f"planner: goal set rejected ({self.planned.worker.config.rejection}); "
                                        "keeping the previous plan (zeros before the first)")
        elif plan is not None:
            for i in np.flatnonzero(np.any(plan.goals != self.positions, axis=1)):
                self._on_change(int(i), now)
            self.positions, self.config = plan.goals, plan.config
            if plan.worst > self.planned.worker.config.exact_within:
                self._warn("plan_inexact", f"planner: no configuration reaches the goal set exactly (largest error "
                                           f"{plan.worst * 1000:.1f} mm); driving to the closest found")
        return WAITING_FOR_PLAN if hold is None and self.planned.plan is None else hold
