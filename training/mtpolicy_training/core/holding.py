"""The holding structure every reach actor can be built on: a learned gain matrix times the observation's errors.

    y = M_theta(s) z(s),    z(s) = [e, sum_i J_i^T e_i, (d(s)), (q* - q)]

with ``e`` the stacked goal errors (segment ``goal_error``), ``J_i^T e_i`` the
segment ``joint_error`` summed over the end effectors, ``d`` the damped-least-squares
step of ``dls-gain`` only, and ``q* - q`` (``goal_config_error``) for planned
observations only. Every entry of z vanishes when every end effector is at its
goal (planned: and q = q*), so y = 0 there whatever M_theta is: an actor whose
command (or mean) is y, or tanh(y), or y saturated, commands exactly zero at the
goal.

``actor`` options, one vocabulary across the families:

- ``mlp``: the papers' plain MLP head.
- ``error-gain``: this structure on the observation's errors. Its constant start
  ``M = [0 | k I | 0]`` is Jacobian-transpose control ``k sum_i J_i^T e_i``.
- ``dls-gain``: z also holds the DLS step of the observed configuration,
  ``d = J^T (J J^T + lambda^2 I)^-1 e`` per unit of each joint's velocity limit
  (``DlsStep``: the robot's kinematics and the solve inside the policy graph);
  its constant start ``M = [0 | 0 | k I | 0]`` is the DLS law with gain k
  (``mtpolicy.dls``), a start that already holds. The learned M(s) shapes how
  fast and along which joints each error is closed.

Only reach observations have goal errors: elsewhere both gain actors are refused. A multi-task policy over a robot's
morphology variants (PPO + specialization, A2C) routes each row's DLS step to its own variant's kinematics (a
``DlsStep`` of several robots); each exported head holds its variant's alone.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch
from torch import nn

from mtpolicy.dls import DlsConfig
from mtpolicy.kinematics import Kinematics
from mtpolicy.observation import ObservationLayout
from mtpolicy_training.core.torch_kinematics import TorchKinematics

Actor = Literal["mlp", "error-gain", "dls-gain"]
ACTORS = ("mlp", "error-gain", "dls-gain")
"""The actor structures: the papers' MLP, or the error-gain forms (exactly zero command at the goal)."""



def holding_problems(actor: str, gain_init: float | None) -> list[str]:
    """The invalid holding options of a method config, by field name: an unknown ``actor``, or a ``gain_init``
    for the MLP actor (a gain means nothing there)."""
    return (["actor"] if actor not in ACTORS else []) + (["gain_init"] if gain_init is not None and actor == "mlp"
                                                         else [])


INIT_WEIGHT_SCALE = 0.01
"""``ErrorGain.initialize``: the gain outputs' weights are scaled by this, so M(s) starts near its constant."""


CG_SWEEPS = 2
"""``DlsStep``: conjugate-gradient iterations per row of J (exact after one sweep in exact arithmetic; float32
needs a second)."""


class DlsStep(nn.Module):
    """d = J^T (J J^T + lambda^2 I)^-1 e / v_max (s): the DLS step of ``mtpolicy.dls`` per unit of each joint's
    velocity limit, from the observed q (J: ``TorchKinematics``) and e, the solve by conjugate gradients (matrix
    products only, so it exports). Zero where e is zero. The DLS controller's joint-limit freezing is left to M(s).

    ``kin`` may be several robots of one observation layout (a robot's morphology variants, in task order): row b
    then takes the step of robot ``task[b]``, the kinematics of the robot it observes."""

    inverse_limits: torch.Tensor
    """(n_robots, n_joints) 1 / v_max of each robot (s/rad; a buffer)."""

    def __init__(self, kin: Kinematics | Sequence[Kinematics], layout: ObservationLayout,
                 damping: float = DlsConfig.damping):
        super().__init__()
        self.kins = [kin] if isinstance(kin, Kinematics) else list(kin)
        self.damping = damping
        self.kinematics = nn.ModuleList(TorchKinematics(k) for k in self.kins)
        self.joint_pos, self.goal_error = layout.slice("joint_pos"), layout.slice("goal_error")
        self.rows = self.goal_error.stop - self.goal_error.start
        self.register_buffer("inverse_limits", torch.as_tensor(np.stack([1.0 / k.spec.velocity_limits
                                                                         for k in self.kins]), dtype=torch.float32),
                             persistent=False)

    def forward(self, obs: torch.Tensor, task: torch.Tensor | int | None = None) -> torch.Tensor:
        """(B, n_joints) for raw observations (B, obs) of robot ``task``: one for every row (an int; None: the only
        robot) or each row's (B,)."""
        if isinstance(task, torch.Tensor) and len(self.kins) > 1:
            d = obs.new_empty(obs.shape[0], self.inverse_limits.shape[1])
            for robot in range(len(self.kins)):
                rows = task == robot
                d[rows] = self.step(obs[rows], robot)
            return d
        return self.step(obs, self.robot(task))

    def robot(self, task: torch.Tensor | int | None) -> int:
        """The robot of a batch whose rows are all of task ``task`` (a single robot serves every task)."""
        if len(self.kins) == 1:
            return 0
        if isinstance(task, int):
            return task
        raise ValueError(f"DlsStep of {len(self.kins)} robots needs the task of each observation")

    def step(self, obs: torch.Tensor, robot: int) -> torch.Tensor:
        """``forward`` with every row of robot ``robot``."""
        jac = self.kinematics[robot](obs[:, self.joint_pos])[1].flatten(1, 2)  # (B, rows, n_joints)
        e = obs[:, self.goal_error].unsqueeze(-1)
        a = torch.matmul(jac, jac.transpose(1, 2)) + self.damping ** 2 * torch.eye(self.rows)
        x, r = torch.zeros_like(e), e
        p, rr = r, (r * r).sum(dim=1, keepdim=True)
        for _ in range(CG_SWEEPS * self.rows):
            ap = torch.matmul(a, p)
            alpha = rr / ((p * ap).sum(dim=1, keepdim=True) + 1e-30)
            x, r = x + alpha * p, r - alpha * ap
            rr_next = (r * r).sum(dim=1, keepdim=True)
            p, rr = r + rr_next / (rr + 1e-30) * p, rr_next
        return torch.matmul(jac.transpose(1, 2), x).squeeze(-1) * self.inverse_limits[robot]

    def numpy_forward(self, obs: np.ndarray, task: np.ndarray | None = None) -> np.ndarray:
        """``forward`` on numpy arrays (``task``: each row's, or None), solved exactly."""
        if task is None or len(self.kins) == 1:
            robots = np.full(len(obs), self.robot(None))
        else:
            robots = np.broadcast_to(task, (len(obs),))
        out = np.empty((len(obs), self.inverse_limits.shape[1]), dtype=np.float32)
        eye = self.damping ** 2 * np.eye(self.rows)
        for i, (o, robot) in enumerate(zip(obs, robots)):
            jac = self.kins[robot].jacobians(o[self.joint_pos].astype(np.float64)).reshape(self.rows, -1)
            out[i] = jac.T @ np.linalg.solve(jac @ jac.T + eye, o[self.goal_error].astype(np.float64))
        return out * self.inverse_limits.numpy()[robots]


class ErrorGain(nn.Module):
    """z(s) of one observation layout, and y = M z for gains M given flat as (B, n_joints * z_size) (row-major)."""

    def __init__(self, layout: ObservationLayout, n_joints: int, dls: DlsStep | None = None):
        super().__init__()
        self.n_joints, self.dls = n_joints, dls
        self.goal_error, self.joint_error = layout.slice("goal_error"), layout.slice("joint_error")
        self.goal_config_error = layout.slice("goal_config_error") if layout.planned else None
        self.n_errors = self.goal_error.stop - self.goal_error.start
        self.z_size = self.n_errors + n_joints * (1 + (dls is not None) + layout.planned)

    @classmethod
    def of(cls, actor: str, layout: ObservationLayout | None, n_joints: int,
           kin: Kinematics | Sequence[Kinematics] | None = None) -> ErrorGain | None:
        """The structure of ``actor``: None for ``mlp``; for the gain actors the layout's (None: observations without
        goal errors, refused); ``dls-gain`` needs the robot's kinematics ``kin`` (or each task's robot's, in task
        order: ``DlsStep``)."""
        if actor not in ACTORS:
            raise ValueError(f"actor {actor!r} is not one of {', '.join(ACTORS)}")
        if actor == "mlp":
            return None
        if layout is None or "goal_error" not in layout.names:
            raise ValueError(f"actor {actor!r} needs reach observations (goal errors); this task set has none: "
                             "use --algo.actor mlp")
        if actor == "error-gain":
            return cls(layout, n_joints, None)
        if kin is None:
            raise ValueError("actor 'dls-gain' needs the robot's kinematics")
        return cls(layout, n_joints, DlsStep(kin, layout))

    @property
    def actor(self) -> str:
        """The ``actor`` option of this structure."""
        return "error-gain" if self.dls is None else "dls-gain"

    @property
    def outputs(self) -> int:
        """Entries of M: the network outputs this structure consumes."""
        return self.n_joints * self.z_size

    def errors(self, obs: torch.Tensor, task: torch.Tensor | int | None = None) -> torch.Tensor:
        """z(s), (B, z_size); ``task``: the rows' task, for a DLS step of several robots (``DlsStep.forward``)."""
        n = obs.shape[0]
        z = [obs[:, self.goal_error], obs[:, self.joint_error].reshape(n, -1, self.n_joints).sum(dim=1)]
        if self.dls is not None:
            z.append(self.dls(obs, task))
        if self.goal_config_error is not None:
            z.append(obs[:, self.goal_config_error])
        return torch.cat(z, dim=1)

    def forward(self, gain: torch.Tensor, obs: torch.Tensor, task: torch.Tensor | int | None = None) -> torch.Tensor:
        """y = M z, (B, n_joints), for ``gain`` (B, outputs) and raw (unnormalized) observations (B, obs) of task
        ``task`` (see ``errors``)."""
        m = gain.reshape(obs.shape[0], self.n_joints, self.z_size)
        return torch.matmul(m, self.errors(obs, task).unsqueeze(-1)).squeeze(-1)

    def numpy_forward(self, gain: np.ndarray, obs: np.ndarray, task: np.ndarray | None = None) -> np.ndarray:
        """``forward`` on numpy arrays."""
        n = obs.shape[0]
        z = [obs[:, self.goal_error], obs[:, self.joint_error].reshape(n, -1, self.n_joints).sum(axis=1)]
        if self.dls is not None:
            z.append(self.dls.numpy_forward(obs, task))
        if self.goal_config_error is not None:
            z.append(obs[:, self.goal_config_error])
        m = gain.reshape(n, self.n_joints, self.z_size)
        return np.matmul(m, np.concatenate(z, axis=1)[:, :, None])[:, :, 0]

    def constant_gain(self, gain: float) -> torch.Tensor:
        """M flat (outputs,): ``gain I`` on the DLS step (``dls-gain``: the DLS law) or else on ``sum_i J_i^T e_i``
        (Jacobian-transpose control), zero elsewhere."""
        m = torch.zeros(self.n_joints, self.z_size)
        start = self.n_errors + (self.n_joints if self.dls is not None else 0)
        m[:, start:start + self.n_joints] = gain * torch.eye(self.n_joints)
        return m.reshape(-1)

    @torch.no_grad()
    def initialize(self, weight: torch.Tensor, bias: torch.Tensor, gain: float) -> None:
        """Start M(s) near ``constant_gain(gain)``: an output layer's first ``outputs`` columns (``weight`` (E, in,
        out), ``bias`` (E, 1, out)) get that bias and their weights scaled by ``INIT_WEIGHT_SCALE``."""
        weight[..., :self.outputs] *= INIT_WEIGHT_SCALE
        bias[..., :self.outputs] = self.constant_gain(gain)
