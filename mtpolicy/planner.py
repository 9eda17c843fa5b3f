"""Goal-configuration planner: multi-start inverse kinematics for a whole goal set.

A goal set far from the robot's configuration may need the arm to fold
through its joint limits to another branch of solutions, which no local
(Jacobian) controller finds. The planner finds a joint configuration q* that
puts every end effector on its goal at once:

* candidates: the start q0 and ``restarts`` configurations drawn uniformly
  within the joint limits from a fixed seed (so the planner is a function of
  q0 and the goals);
* each candidate is refined by damped Newton steps within the limits,
  ``q <- clip(q + J^T (J J^T + lambda^2 I)^-1 e, limits)``, with J and e the
  stacked Jacobians and goal errors of all end effectors;
* of the candidates whose largest error is below ``tolerance``, q* is the one
  reached soonest from q0 by a joint-space move at the velocity limits,
  ``argmin max_j |q*_j - q0_j| / v_j``; if none converged, the one with the
  smallest largest error.

A planner-conditioned policy observes ``q* - q`` (observation segment
``goal_config_error``); its contract carries ``PlannerConfig`` so that any
client runs the same planner (see ``mtpolicy.policy``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from mtpolicy.kinematics import Kinematics


@dataclass(frozen=True)
class PlannerConfig:
    """Settings of the goal-configuration planner (part of a planner-conditioned policy's contract)."""

    restarts: int = 24
    """Random candidate configurations besides the start."""
    iterations: int = 100
    """Damped Newton steps per candidate at most."""
    damping: float = 0.01
    """Damping lambda (m) of the Newton step."""
    tolerance: float = 1e-3
    """A candidate has converged when every end effector is within this distance (m) of its goal."""
    seed: int = 0
    """Seed of the random candidates."""
    margin: float = 0.02
    """Candidates and steps stay this many rad inside the joint limits."""

    def __post_init__(self):
        bad = [k for k, ok in {"restarts": self.restarts >= 0, "iterations": self.iterations > 0,
                               "damping": self.damping > 0, "tolerance": self.tolerance > 0,
                               "margin": self.margin >= 0}.items() if not ok]
        if bad:
            raise ValueError("invalid PlannerConfig value(s): " + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad))

    def to_dict(self) -> dict:
        return asdict(self)


class GoalConfigurationPlanner:
    """(start configuration, goal set) -> goal configuration q* and its largest end-effector error."""

    def __init__(self, kin: Kinematics, config: PlannerConfig = PlannerConfig()):
        self.kin, self.config = kin, config
        lim = kin.spec.joint_limits
        self.low = np.maximum(lim[:, 0] + config.margin, -np.pi)
        self.high = np.minimum(lim[:, 1] - config.margin, np.pi)
        rng = np.random.default_rng(config.seed)
        self.candidates = rng.uniform(self.low, self.high, size=(config.restarts, kin.spec.n_joints))
        self.velocity_limits = kin.spec.velocity_limits

    def refine(self, q: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, float]:
        """Damped Newton steps from q towards the goal set (n_ee, 3); the result and its largest error (m)."""
        c = self.config
        q = np.clip(q, self.low, self.high)
        eye = c.damping ** 2 * np.eye(goals.size)
        for _ in range(c.iterations):
            ee, jac = self.kin.ee_positions_and_jacobians(q)
            err = goals - ee
            worst = float(np.sqrt((err ** 2).sum(axis=1).max()))
            if worst < c.tolerance:
                return q, worst
            j = jac.reshape(-1, len(q))
            q = np.clip(q + j.T @ np.linalg.solve(j @ j.T + eye, err.reshape(-1)), self.low, self.high)
        ee = self.kin.ee_positions(q)
        return q, float(np.linalg.norm(goals - ee, axis=1).max())

    def plan(self, q0: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, float]:
        """q* for goals (n_ee, 3) from start q0 (n_joints,), and its largest end-effector error (m)."""
        q0 = np.asarray(q0, dtype=np.float64)
        goals = np.asarray(goals, dtype=np.float64).reshape(-1, 3)
        best, best_key = None, None
        for start in np.vstack([q0[None], self.candidates]):
            q, worst = self.refine(start, goals)
            converged = worst < self.config.tolerance
            key = (not converged, np.max(np.abs(q - q0) / self.velocity_limits) if converged else worst)
            if best_key is None or key < best_key:
                best, best_key = (q, worst), key
        return best

    def plan_batch(self, q0: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """(B, n_joints) goal configurations for starts (B, n_joints) and goal sets (B, n_ee, 3)."""
        return np.stack([self.plan(q, g)[0] for q, g in zip(q0, goals)])
