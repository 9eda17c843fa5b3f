"""A time-optimal student's target refined in the exported graph, as the time-optimal program places it.

``RefinedTargetActor`` wraps a DAgger student of the ``time_optimal`` teacher (``dagger.ErrorGainActor``), whose
command before saturation is the teacher's target in disguise, y = (q_T - q) / (dt v); ``ship/refine.py`` exports
it. Every operation is one any ONNX exporter takes (the end effectors' kinematics from
``core/torch_kinematics.py``, the small linear systems by an unrolled Cholesky factorization).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import nn

from mtpolicy.joint_travel import JointTravel
from mtpolicy.observation import ObservationLayout
from mtpolicy_training.algos.dagger import ErrorGainActor, saturate_tensor


@dataclass(frozen=True)
class TargetRefinement:
    """How ``RefinedTargetActor`` refines a time-optimal student's target in the graph."""

    steps: int = 3
    """Damped Gauss-Newton steps per box."""
    damping: float = 0.05
    """Damping (m) of the steps' least squares."""
    depth: float = 0.5
    """The target puts every end effector on the sphere of this fraction of the tolerance around its goal."""
    periods: int = 6
    """Boxes of 1 .. ``periods`` control periods around q are tried, then the joint limits alone."""
    saturation: Literal["uniform", "clip"] = "clip"
    """Over a velocity limit, the refined command: scaled down uniformly (every joint on the straight line, all
    arriving together) or clipped per joint."""
    servo_lag: tuple[float, ...] = (0.0,)
    """s the robot's servos lag a command by, one value for every joint or one per joint (the run's joint order): a
    joint moving at u travels servo_lag u after its command drops to zero (0: servos that follow a command within
    the period). ``step`` heads for its target over dt + servo_lag, ``deadbeat`` subtracts servo_lag u0 from the
    distance to go."""
    command: Literal["step", "servo", "deadbeat"] = "step"
    """How the refined command heads for its target: there in the least number of periods (``step``: a = sat((q_T -
    q) / ((dt + servo_lag) v))), as the DAgger servo teacher, synchronised (``servo``: every joint on the straight
    line to q_T, at the speed from which it still stops there braking at its acceleration limit,
    ``Teacher.servo_speed`` with gain ``servo_gain``), or per joint at the speed from which it stops there from the
    command it was sent the period before (``deadbeat``, from the observation's ``previous_command``).
    With ``servo`` and ``deadbeat``, once every end effector is within tolerance, to the goals themselves."""
    servo_gain: float = 12.0
    """k (1/s) of the ``servo`` command."""
    arrival_lag: tuple[float, ...] = (0.0,)
    """s, one value for every joint or one per joint: with ``deadbeat``, while some end effector is outside
    tolerance, a joint without an acceleration limit gets u = d / (dt - arrival_lag), so that a servo lagging the
    command by that much arrives at its target by the period's end (it travels u dt - arrival_lag (u - u0)), where
    u = d / dt stops there one lag later; what it carries past the target, arrival_lag u, the next command takes
    back. 0: stop at the target."""

    def __post_init__(self):
        # a bare number too, as the records of earlier exports hold it
        for name in ("servo_lag", "arrival_lag"):
            object.__setattr__(self, name, tuple(np.atleast_1d(getattr(self, name)).tolist()))
        bad = [k for k, ok in {"steps": self.steps > 0, "damping": self.damping > 0, "depth": 0 <= self.depth < 1,
                               "periods": self.periods > 0,
                               "servo_lag": len(self.servo_lag) > 0 and min(self.servo_lag) >= 0,
                               "arrival_lag": len(self.arrival_lag) > 0 and min(self.arrival_lag) >= 0,
                               "command": self.command in ("step", "servo", "deadbeat"),
                               "servo_gain": self.servo_gain > 0}.items() if not ok]
        if bad:
            raise ValueError("invalid refinement value(s): " + ", ".join(bad))


class TargetChoice(NamedTuple):
    """What ``RefinedTargetActor.choose`` decides for a batch of B observations."""

    target: torch.Tensor
    """(B, n_joints) the configuration the command heads for (q itself where nothing is chosen)."""
    chosen: torch.Tensor
    """(B,) whether a box lands (or, heading for the goals, every end effector is within tolerance)."""
    landed: torch.Tensor
    """(periods + 1, B) whether the box of 1 .. ``periods`` periods, then the joint limits' box, lands."""
    within: torch.Tensor
    """(B,) whether every end effector is within tolerance."""
    y: torch.Tensor
    """(B, n_joints) the student's command before saturation."""


class RefinedTargetActor(nn.Module):
    """A time-optimal student's target refined in the graph, as the time-optimal program would place it.

    The student's command before saturation y is read as the target it heads for, q_s = q + dt v y (the teacher's
    label is (q_T - q) / (dt v)). For each box B_N = {|q' - q| <= N dt v} within the joint limits, N = 1 ..
    ``periods`` (then the joint limits alone), ``steps`` damped Gauss-Newton steps from q_s clamped into B_N move it
    onto the spheres of radius ``depth * tol`` around the goals, in time-scaled norm (W = diag(v^2)), a joint at a
    face of B_N held there (on a joint with an acceleration limit, B_N is its travel from rest in N periods with
    commands ramped, ``JointTravel``, as the program's box):

        q_T <- clamp_BN(q_T + W J^T (J W J^T + damping^2 I)^-1 r),  r_i = e_i max(0, 1 - depth tol / |e_i|),

    e_i = g_i - p_i(q_T), p_i and J = dp / dq at q_T (``TorchKinematics``). The command goes to the target of the
    least N whose every end effector lands within tolerance, ``a = sat((q_T - q) / ((dt + servo_lag) v))``: it
    arrives in N periods (and ``servo_lag``); or with ``command`` ``servo`` the synchronised braking servo to q_T
    (``servo``), and once every end effector is within tolerance the same servo to the steps' target on the goals
    themselves (radius 0, within the joint limits), so that it ends there. Where no box lands (a local minimum of
    the residual near q), and with ``step`` once every end effector is within tolerance, it is the student's own
    ``sat(y)`` (zero at the goal)."""

    period_step: torch.Tensor
    command_step: torch.Tensor
    servo_lag: torch.Tensor
    arrival_period: torch.Tensor
    weight: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor
    boxes: torch.Tensor
    velocity_limits: torch.Tensor
    acceleration: torch.Tensor
    ramping: torch.Tensor

    def __init__(self, actor: ErrorGainActor, kinematics: nn.Module, layout: ObservationLayout,
                 velocity_limits: np.ndarray, joint_limits: np.ndarray, control_period: float, tolerance: float,
                 refinement: TargetRefinement, acceleration_limits: np.ndarray | None = None):
        super().__init__()
        self.actor, self.kinematics, self.refinement = actor, kinematics, refinement
        self.tolerance, self.radius, self.dt = tolerance, refinement.depth * tolerance, control_period
        self.joint_pos, self.goal_pos = layout.slice("joint_pos"), layout.slice("goal_pos")
        self.goal_error = layout.slice("goal_error")
        if (refinement.command == "deadbeat") != layout.previous_command:
            raise ValueError(f"the {refinement.command} command on a layout with"
                             f"{'' if layout.previous_command else 'out'} previous_command: only deadbeat reads it")
        self.previous_command = layout.slice("previous_command") if layout.previous_command else None
        self.student_input = slice(0, None if self.previous_command is None else self.previous_command.start)
        for name in ("servo_lag", "arrival_lag"):
            if len(getattr(refinement, name)) not in (1, len(velocity_limits)):
                raise ValueError(f"{name} has {len(getattr(refinement, name))} values: give one, or one per joint "
                                 f"({len(velocity_limits)})")
        if max(refinement.arrival_lag) >= control_period:
            raise ValueError(f"arrival_lag {max(refinement.arrival_lag)} s: less than the control period "
                             f"({control_period} s)")
        servo_lag = np.broadcast_to(refinement.servo_lag, velocity_limits.shape).copy()  # writable, for torch
        arrival_lag = np.broadcast_to(refinement.arrival_lag, velocity_limits.shape)
        accelerations = np.full(len(velocity_limits), np.inf) if acceleration_limits is None else acceleration_limits
        travel = JointTravel(velocity_limits, accelerations, control_period)
        boxes = np.stack([travel.distance(n * control_period) for n in range(1, refinement.periods + 1)]
                         + [np.full(len(velocity_limits), np.inf)])
        ramping = np.isfinite(accelerations)
        for name, value in (("period_step", control_period * velocity_limits),
                            ("command_step", (control_period + servo_lag) * velocity_limits),
                            ("servo_lag", servo_lag), ("arrival_period", control_period - arrival_lag),
                            ("weight", velocity_limits ** 2), ("velocity_limits", velocity_limits),
                            ("acceleration", np.where(ramping, accelerations, 1.0)), ("ramping", ramping),
                            ("low", joint_limits[:, 0]), ("high", joint_limits[:, 1]),
                            ("boxes", np.minimum(boxes, np.ptp(joint_limits, axis=1)))):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.bool if name == "ramping" else torch.float32),
                                 persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.command(obs, self.choose(obs))

    def choose(self, obs: torch.Tensor) -> TargetChoice:
        """The target of the least box that lands (class docstring) for a batch of observations."""
        n, k = obs.shape[0], self.boxes.shape[0]
        y = self.actor.unsaturated(obs[:, self.student_input])
        q = obs[:, self.joint_pos]
        goals = obs[:, self.goal_pos].reshape(n, -1, 3)
        within = (obs[:, self.goal_error].reshape(n, -1, 3).norm(dim=2) <= self.tolerance).all(dim=1)
        reach = self.boxes[:, None, :]  # (k, 1, n_joints): every box for every row, in one batch
        low = torch.maximum(q[None] - reach, self.low).reshape(k * n, -1)
        high = torch.minimum(q[None] + reach, self.high).reshape(k * n, -1)
        start = self.clamp(q + self.period_step * y).repeat(k, 1)
        radius = torch.full_like(start[:, 0], self.radius)
        to_goals = self.refinement.command != "step"
        if to_goals:  # and the steps from q onto the goals themselves (radius 0) within the joint limits, same batch
            low, high = torch.cat([low, self.low.expand_as(q)]), torch.cat([high, self.high.expand_as(q)])
            start, radius = torch.cat([start, q]), torch.cat([radius, torch.zeros_like(q[:, 0])])
        targets, landed = self.refine(goals.repeat(k + int(to_goals), 1, 1), start, low, high, radius)
        target, chosen = q, torch.zeros_like(within)  # per row, the target the command heads for
        boxes, landed = targets[:k * n].reshape(k, n, -1), landed[:k * n].reshape(k, n)
        for i in range(k):  # the least number of periods that lands
            take = landed[i] & ~(chosen | within)
            target, chosen = torch.where(take[:, None], boxes[i], target), chosen | take
        if to_goals:  # within tolerance: the same law to the goals themselves
            target, chosen = torch.where(within[:, None], targets[k * n:], target), chosen | within
        return TargetChoice(target, chosen, landed, within, y)

    def command(self, obs: torch.Tensor, choice: TargetChoice) -> torch.Tensor:
        """The normalized command heading for ``choice.target`` as ``refinement.command`` says; the student's
        ``sat(y)`` where nothing is chosen."""
        q = obs[:, self.joint_pos]
        if self.previous_command is not None:
            heading = self.deadbeat(choice.target - q, obs[:, self.previous_command], ~choice.within)
        elif self.refinement.command != "step":
            heading = self.servo(choice.target - q)
        else:
            heading = self.saturate((choice.target - q) / self.command_step)
        return torch.where(choice.chosen[:, None], heading, self.actor.saturate(choice.y))

    def refine(self, goals: torch.Tensor, target: torch.Tensor, low: torch.Tensor, high: torch.Tensor,
               radius: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The steps from ``target`` within [low, high] (rows of configurations, goals (rows, n_ee, 3)) onto the
        spheres of ``radius`` (per row; default ``depth * tol``) around the goals; the result and whether every end
        effector lands within tolerance there."""
        n = target.shape[0]
        radius = torch.full_like(target[:, 0], self.radius) if radius is None else radius
        target = torch.minimum(torch.maximum(target, low), high)
        for _ in range(self.refinement.steps):
            ee, jac = self.kinematics(target)
            error = goals - ee
            shrink = torch.clamp(1.0 - radius[:, None, None] / torch.clamp(error.norm(dim=2, keepdim=True), min=1e-9),
                                 min=0.0)
            jac = jac.reshape(n, -1, jac.shape[-1])
            free = ((target > low + 1e-4) & (target < high - 1e-4)).to(target.dtype) + 1e-3  # a face holds its joint
            weighted = jac * (self.weight * free)[:, None, :]
            system = (torch.matmul(weighted, jac.transpose(1, 2))
                      + self.refinement.damping ** 2 * torch.eye(jac.shape[1]))
            step = torch.matmul(weighted.transpose(1, 2), solve_spd(system, (error * shrink).reshape(n, -1))[..., None])
            target = torch.minimum(torch.maximum(target + step[..., 0], low), high)
        landed = ((goals - self.kinematics(target)[0]).norm(dim=2) <= self.tolerance).all(dim=1)
        return target, landed

    def servo(self, dq: torch.Tensor) -> torch.Tensor:
        """The DAgger servo teacher's synchronised command to ``dq = q_T - q`` (``Teacher.synchronised`` of
        ``Teacher.servo_speed``, gain ``servo_gain``): u = dq / max(max_j d_j / s_j, 1 / k) / v, with
        d = |dq| and s_j = min(v_j, k d_j, or beyond d_j = a_j tau / k the braking branch
        sqrt(2 a_j d_j + a_j^2 (dt^2 / 4 - tau^2)) - a_j dt / 2), tau = 1 / k - dt / 2."""
        k, dt, a = self.refinement.servo_gain, self.dt, self.acceleration
        tau = 1.0 / k - dt / 2
        distance = dq.abs()
        braking = torch.sqrt(torch.clamp(2 * a * distance + a ** 2 * (dt ** 2 / 4 - tau ** 2), min=0.0)) - a * dt / 2
        speed = torch.where(self.ramping & (distance > a * tau / k), braking, k * distance)
        speed = torch.minimum(speed, self.velocity_limits)
        time_to_go = distance / torch.clamp(speed, min=1e-9)
        return dq / torch.clamp(time_to_go.amax(dim=1, keepdim=True), min=1.0 / k) / self.velocity_limits

    def deadbeat(self, dq: torch.Tensor, previous: torch.Tensor, outside: torch.Tensor | None = None) -> torch.Tensor:
        """Per joint, the largest speed from which the joint still stops at ``dq = q_T - q``, from the command
        ``previous`` (rad/s) it was sent the period before: with d = max(|dq| - servo_lag u0 sign(dq), 0) and
        delta = a dt, u then u - delta, u - 2 delta, ... for a period each travel dt ((m + 1) u - delta m (m + 1) / 2),
        m = floor(u / delta), so u = (d / dt + delta m (m + 1) / 2) / (m + 1), m = floor((sqrt(1 + 8 d / (dt
        delta)) - 1) / 2); without an acceleration limit u = d / dt, or on the rows ``outside`` (bool, (B,))
        u = d / (dt - arrival_lag); a = sign(dq) min(u, v) / v."""
        dt, delta = self.dt, self.acceleration * self.dt
        direction = torch.sign(dq)
        distance = torch.clamp(dq.abs() - self.servo_lag * previous * direction, min=0.0)
        m = torch.floor((torch.sqrt(1.0 + 8.0 * distance / (dt * delta)) - 1.0) / 2.0)
        braking = (distance / dt + delta * m * (m + 1.0) / 2.0) / (m + 1.0)
        period = dt if outside is None else torch.where(outside[:, None], self.arrival_period, dt)
        speed = torch.minimum(torch.where(self.ramping, braking, distance / period), self.velocity_limits)
        return direction * speed / self.velocity_limits

    def saturate(self, a: torch.Tensor) -> torch.Tensor:
        """The refined command into [-1, 1], as ``refinement.saturation`` says."""
        return saturate_tensor(a, self.refinement.saturation)

    def clamp(self, q: torch.Tensor) -> torch.Tensor:
        """q within the joint limits."""
        return torch.minimum(torch.maximum(q, self.low), self.high)


def solve_spd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x with a x = b for a batch of small symmetric positive definite a (B, m, m), b (B, m): Cholesky a = L L^T,
    then L z = b and L^T x = z, unrolled over the m (fixed) entries so that any ONNX exporter takes it."""
    m = a.shape[-1]
    low: list[list[Any]] = [[None] * m for _ in range(m)]  # L's entries, each set before it is read
    for i in range(m):
        for j in range(i + 1):
            s = a[:, i, j] - sum((low[i][k] * low[j][k] for k in range(j)), torch.zeros_like(b[:, 0]))
            low[i][j] = torch.sqrt(s) if i == j else s / low[j][j]
    z: list[torch.Tensor] = []
    for i in range(m):
        z.append((b[:, i] - sum((low[i][k] * z[k] for k in range(i)), torch.zeros_like(b[:, 0]))) / low[i][i])
    x: list[Any] = [None] * m
    for i in reversed(range(m)):
        x[i] = (z[i] - sum((low[k][i] * x[k] for k in range(i + 1, m)), torch.zeros_like(b[:, 0]))) / low[i][i]
    return torch.stack(x, dim=1)
