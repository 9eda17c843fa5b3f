"""Damped-least-squares reach controller: the classical baseline to the policies.

For stacked end-effector Jacobians J (3 n_ee x n_joints) and stacked goal
errors e, the joint velocity is

    dq = J^T (J J^T + lambda^2 I)^-1 (k e)

scaled down uniformly (direction kept) so no joint exceeds its velocity limit
(or, with ``saturation = "clip"``, each joint clipped to its limit), and with
joints that sit at a position limit and would move further out removed from J
before solving. It reads the same observation as a policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mtpolicy.kinematics import Kinematics
from mtpolicy.observation import ObservationLayout


@dataclass(frozen=True)
class DlsConfig:
    gain: float = 8.0
    """Proportional gain k on the task-space error (1/s)."""
    damping: float = 0.04
    """Damping lambda (m): trades accuracy near singularities for bounded speed."""
    limit_margin: float = 0.02
    """Joints within this many rad of a limit, moving outwards, are frozen."""
    saturation: Literal["uniform", "clip"] = "uniform"
    """Over a velocity limit: scale the whole command down (direction kept) or clip each joint."""


class DampedLeastSquares:
    """Observation -> joint velocity (rad/s) by damped least squares."""

    def __init__(self, kin: Kinematics, layout: ObservationLayout, config: DlsConfig = DlsConfig()):
        self.kin, self.layout, self.config = kin, layout, config
        self.spec = kin.spec

    def velocity(self, obs: np.ndarray) -> np.ndarray:
        q = obs[self.layout.slice("joint_pos")].astype(np.float64)
        err = obs[self.layout.slice("goal_error")].astype(np.float64)
        jac = self.kin.jacobians(q).reshape(-1, self.spec.n_joints)
        lim = self.spec.joint_limits
        dq = np.zeros(self.spec.n_joints)
        free = np.ones(self.spec.n_joints, dtype=bool)
        for _ in range(2):  # solve, freeze joints pushing into a limit, solve again
            j = jac[:, free]
            x = j.T @ np.linalg.solve(j @ j.T + self.config.damping ** 2 * np.eye(len(err)), self.config.gain * err)
            dq[:] = 0.0
            dq[free] = x
            blocked = ((q >= lim[:, 1] - self.config.limit_margin) & (dq > 0)) | \
                      ((q <= lim[:, 0] + self.config.limit_margin) & (dq < 0))
            if not blocked.any():
                break
            free &= ~blocked
        dq[~free] = 0.0
        limits = self.spec.velocity_limits
        if self.config.saturation == "clip":
            return np.clip(dq, -limits, limits)
        ratio = np.max(np.abs(dq) / limits)
        return dq / ratio if ratio > 1.0 else dq

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """(B, obs) -> (B, n_joints) joint velocities in rad/s."""
        return np.stack([self.velocity(o) for o in np.atleast_2d(obs)])
