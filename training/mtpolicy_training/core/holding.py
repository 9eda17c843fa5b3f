"""The holding structure every reach actor can be built on: a learned gain matrix times the observation's errors.

    y = M_theta(s) z(s),    z(s) = [e, sum_i J_i^T e_i, (q* - q)]

with ``e`` the stacked goal errors (segment ``goal_error``), ``J_i^T e_i`` the
segment ``joint_error`` summed over the end effectors, and ``q* - q``
(``goal_config_error``) for planned observations only. Every entry of z
vanishes when every end effector is at its goal (planned: and q = q*), so
y = 0 there whatever M_theta is: an actor whose command (or mean) is y, or
tanh(y), or y saturated, commands exactly zero at the goal. The DLS law
``J^T (J J^T + lambda^2 I)^-1 k e`` is one such policy (a matrix of q times
e); Jacobian-transpose control ``k sum_i J_i^T e_i`` is the constant
``M = [0 | k I | 0]`` (``ErrorGain.initialize``).

``actor`` options, one vocabulary across the families: ``mlp`` (the papers'
plain MLP head) or ``error-gain`` (this structure). Only reach observations
have goal errors: elsewhere ``error-gain`` is refused.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from mtpolicy.observation import ObservationLayout

Actor = Literal["mlp", "error-gain"]
ACTORS = ("mlp", "error-gain")
"""The actor structures: the papers' MLP, or the error-gain form (exactly zero command at the goal)."""

INIT_WEIGHT_SCALE = 0.01
"""``ErrorGain.initialize``: the gain outputs' weights are scaled by this, so M(s) starts near its constant."""


class ErrorGain(nn.Module):
    """z(s) of one observation layout, and y = M z for gains M given flat as (B, n_joints * z_size) (row-major)."""

    def __init__(self, layout: ObservationLayout, n_joints: int):
        super().__init__()
        self.n_joints = n_joints
        self.goal_error, self.joint_error = layout.slice("goal_error"), layout.slice("joint_error")
        self.goal_config_error = layout.slice("goal_config_error") if layout.planned else None
        self.n_errors = self.goal_error.stop - self.goal_error.start
        self.z_size = self.n_errors + n_joints * (2 if layout.planned else 1)

    @classmethod
    def of(cls, actor: str, layout: ObservationLayout | None, n_joints: int) -> ErrorGain | None:
        """The structure of ``actor``: None for ``mlp``; for ``error-gain`` the layout's (None: observations without
        goal errors, refused)."""
        if actor not in ACTORS:
            raise ValueError(f"actor {actor!r} is not one of {', '.join(ACTORS)}")
        if actor == "mlp":
            return None
        if layout is None or "goal_error" not in layout.names:
            raise ValueError("actor 'error-gain' needs reach observations (goal errors); this task set has none: "
                             "use --algo.actor mlp")
        return cls(layout, n_joints)

    @property
    def outputs(self) -> int:
        """Entries of M: the network outputs this structure consumes."""
        return self.n_joints * self.z_size

    def errors(self, obs: torch.Tensor) -> torch.Tensor:
        """z(s), (B, z_size)."""
        n = obs.shape[0]
        z = [obs[:, self.goal_error], obs[:, self.joint_error].reshape(n, -1, self.n_joints).sum(dim=1)]
        if self.goal_config_error is not None:
            z.append(obs[:, self.goal_config_error])
        return torch.cat(z, dim=1)

    def forward(self, gain: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """y = M z, (B, n_joints), for ``gain`` (B, outputs) and raw (unnormalized) observations (B, obs)."""
        m = gain.reshape(obs.shape[0], self.n_joints, self.z_size)
        return torch.matmul(m, self.errors(obs).unsqueeze(-1)).squeeze(-1)

    def numpy_forward(self, gain: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """``forward`` on numpy arrays."""
        n = obs.shape[0]
        z = [obs[:, self.goal_error], obs[:, self.joint_error].reshape(n, -1, self.n_joints).sum(axis=1)]
        if self.goal_config_error is not None:
            z.append(obs[:, self.goal_config_error])
        m = gain.reshape(n, self.n_joints, self.z_size)
        return np.matmul(m, np.concatenate(z, axis=1)[:, :, None])[:, :, 0]

    def constant_gain(self, gain: float) -> torch.Tensor:
        """M = [0 | gain I | 0] flat (outputs,): Jacobian-transpose control ``gain sum_i J_i^T e_i``."""
        m = torch.zeros(self.n_joints, self.z_size)
        m[:, self.n_errors:self.n_errors + self.n_joints] = gain * torch.eye(self.n_joints)
        return m.reshape(-1)

    @torch.no_grad()
    def initialize(self, weight: torch.Tensor, bias: torch.Tensor, gain: float) -> None:
        """Start M(s) near ``constant_gain(gain)``: an output layer's first ``outputs`` columns (``weight`` (E, in,
        out), ``bias`` (E, 1, out)) get that bias and their weights scaled by ``INIT_WEIGHT_SCALE``."""
        weight[..., :self.outputs] *= INIT_WEIGHT_SCALE
        bias[..., :self.outputs] = self.constant_gain(gain)
