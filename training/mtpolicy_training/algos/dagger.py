"""DAgger: a reach policy that imitates a classical teacher on the states it visits itself.

Dataset aggregation (Ross, Gordon and Bagnell, 2011). Iteration i rolls out
the student (the teacher itself in iteration 0, and with probability
``beta_i = teacher_mix ** i`` per episode after it), with Gaussian noise of
std ``action_noise`` on the executed action, labels every visited state s
with the teacher's action a*(s), adds the pairs to the dataset D and fits the
student by regression on all of D:

    min_theta  E_{(s, a*) ~ D} || pi_theta(s) - a*(s) ||^2

Actions are normalized joint velocities a = v / v_max in [-1, 1].

Teachers:

* ``servo``: a joint-space servo to a goal configuration q_g,
  ``a = k (q_g - q) / v_max`` scaled down uniformly into [-1, 1] (a straight
  line in joint space at the velocity limits); on a joint with an acceleration
  limit the gain branch gives way, where its deceleration would exceed a_max, to a branch decelerating at a_max
  (``Teacher.servo_speed``), so that commands ramped at a_max stop at q_g without overshooting. With ``servo_profile``
  ``synchronised`` every joint moves on the straight joint-space line to q_g instead, at the pace of the
  joint with the longest time to go, so that all arrive together (``Teacher.synchronised``). For planned
  observations q_g is the planner's q* (segment ``goal_config_error``); for plain ones it is the
  local solution ``GoalConfigurationPlanner.refine(q, goals)`` of damped Newton
  steps from the current q, a function of the observation, so that identical
  observations never get different labels. With ``servo_target`` ``time_optimal``, q_g is the target q_T of the
  ``time_optimal`` teacher below re-solved from q (within tolerance its q_IK): the time-optimal move, braking
  at the acceleration limits.
* ``dls``: the damped-least-squares controller of ``mtpolicy.dls``.
* ``mink``: mink's differential IK, one QP per step under the joint position
  and velocity limits (the evaluator's anchor, ``reach_evaluation.mink_controller``);
  a state whose QP has no solution gets no label.
* ``time_optimal``: the closed-loop time-optimal controller: from every state,
  the target q_T of ``mtpolicy.planner`` (``time_optimal``: the nearest configuration, in
  time, inside the least number of periods' box that puts the end effectors
  within ``target_depth`` of the tolerance), re-solved from the
  current q (warm-started from the episode's previous target; a new goal set
  gets the full multi-start solve), commanded as the servo above with
  ``k = 1 / dt``: with uniform saturation the straight line to q_T at the
  bottleneck joint's speed, which arrives in the bound's number of periods;
  clipped, every joint at its own full speed until it is within one period of
  its coordinate of q_T, which arrives at the same q_T in the same number of
  periods (every joint's share of the move fits in them). Clipped, an error of
  the student on one joint slows no other joint; scaled uniformly, a joint
  whose command it overestimates becomes the bottleneck of all of them.
  Once every end effector is within tolerance it holds: the servo with gain
  ``teacher_gain`` to the local IK solution of the goal set (damped Newton
  from q), so the command goes smoothly to zero at the goals' centre.

The student (``ErrorGainActor``) is a learned gain matrix times the errors of
the observation, ``y = M_theta(s) z(s)`` (``core/holding.py``, the structure every RL actor's ``actor=error-gain``
shares), saturated as the teacher is
(``saturation``: ``a = y / max(1, max_j |y_j|)`` or ``a = clip(y, -1, 1)``), where
``z = [e, sum_i J_i^T e_i]`` with ``e`` the stacked goal errors (segments
``goal_error`` and the sum of ``joint_error``; ``q* - q`` appended for planned
observations). Every term vanishes at the goal, so the student commands
exactly zero there, and the DLS law ``J^T (J J^T + lambda^2 I)^-1 k e`` is one
such policy, a matrix of q times ``e``. A student of the ``time_optimal``
teacher predicts its target; ``refined_target.RefinedTargetActor`` (exported by
``ship/refine.py``) places that target exactly in the graph.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import torch
from torch import nn

from mtpolicy.dls import DampedLeastSquares, DlsConfig
from mtpolicy.observation import ObservationLayout
from mtpolicy.planner import GoalConfigurationPlanner
from mtpolicy.time_optimal_program import SolverConfig
from mtpolicy_training.core.holding import ErrorGain
from mtpolicy_training.core.networks import EnsembleMLP, Normalizer
from mtpolicy_training.envs.reach import ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import mink_controller
from mtpolicy_training.envs.time_optimal import TimeOptimalController, saturate


@dataclass
class DaggerConfig:
    """Teacher, student network and regression settings."""

    teacher: Literal["servo", "dls", "mink", "time_optimal"] = "dls"
    """The classical controller imitated (see the module docstring)."""
    teacher_gain: float = 12.0
    """Gain k (1/s) of the teacher on its error (task space for dls, joint space for servo and the time-optimal
    teacher's hold)."""
    saturation: Literal["uniform", "clip"] = "clip"
    """Over a velocity limit, teacher and student alike: scale the command down or clip each joint."""
    servo_profile: Literal["per_joint", "synchronised"] = "per_joint"
    """Teacher servo: each joint at its own speed ``Teacher.servo_speed(|dq_j|)``, or every joint on the
    straight joint-space line to q_g, arriving together (``Teacher.synchronised``)."""
    servo_target: Literal["ik", "time_optimal"] = "ik"
    """Teacher servo: q_g as the observation gives it (the plan, or the local IK solution), or the closed-loop
    time-optimal controller's target re-solved from q (``TimeOptimalController.targets``)."""
    hidden: tuple[int, ...] = (256, 256, 256)
    """Hidden layer widths of the student."""
    activation: str = "relu"
    """Hidden activation: relu, tanh or crelu."""
    lr: float = 1e-3
    """Adam learning rate."""
    batch_size: int = 512
    """Minibatch size of the regression."""
    updates_per_iteration: int = 3000
    """Gradient steps on the aggregated dataset after each iteration's rollouts."""
    teacher_mix: float = 0.5
    """beta_i = teacher_mix ** i: the share of episodes the teacher drives in iteration i (with ``line_sets``,
    the lines are iteration 0 and the rollouts start at i = 1)."""
    action_noise: float = 0.1
    """Std of the Gaussian noise on the executed (normalized) action, so the data covers recoveries."""
    solver: SolverConfig = field(default_factory=lambda: SolverConfig(local_starts=8, global_starts=0,
                                                                      refine_starts=3))
    """How the time-optimal teacher solves a new goal set (local goals need no starts over the whole range)."""
    free_line_starts: int = 0
    """The time-optimal teacher, where the straight line to its target adds a self-collision: solve again from
    this many local, global and refined starts and take the fastest target whose line is free
    (``TimeOptimalController``; 0: keep the fastest)."""
    line_sets: int = 0
    """Teacher ``time_optimal``: goal sets whose straight lines to the target seed the dataset before the first
    iteration (``TimeOptimalController.line_demonstrations``: one solve per goal set, ``line_samples`` states)."""
    line_samples: int = 16
    """States drawn on each line of ``line_sets``."""
    free_line_samples: int = 0
    """States drawn on a line of ``line_sets`` whose target the ``free_line_starts`` search took instead of the
    fastest (0: ``line_samples``; more weigh the detour the student must learn)."""
    loss: Literal["action", "relative"] = "action"
    """Regression target: the saturated action, or the teacher's command before saturation y* with the error
    relative to its size, ``||y - y*||^2 / max(1, max_j |y*_j|)^2`` (the student then knows how far it is: no
    shrinking towards the mean direction when far)."""

    @classmethod
    def from_record(cls, record: dict) -> "DaggerConfig":
        """The settings a run recorded (its config.json's ``algo``, JSON: lists for tuples, a dict for the solver)."""
        return cls(**{**record, "solver": SolverConfig(**record["solver"]), "hidden": tuple(record["hidden"])})

    def validate(self) -> list[str]:
        checks = {"teacher_gain": self.teacher_gain > 0, "hidden": len(self.hidden) > 0 and min(self.hidden) > 0,
                  "lr": self.lr > 0, "batch_size": self.batch_size > 0,
                  "updates_per_iteration": self.updates_per_iteration > 0,
                  "teacher_mix": 0 <= self.teacher_mix <= 1, "action_noise": self.action_noise >= 0,
                  "line_sets": self.line_sets == 0 or (self.line_sets > 0 and self.teacher == "time_optimal"),
                  "line_samples": self.line_samples > 0, "free_line_starts": self.free_line_starts >= 0,
                  "free_line_samples": self.free_line_samples >= 0,
                  "servo_target": self.servo_target == "ik" or self.teacher == "servo",
                  "teacher": self.teacher != "mink" or importlib.util.find_spec("mink") is not None}
        return [f"algo.{k}" for k, ok in checks.items() if not ok]


class Teacher:
    """The classical controller DAgger imitates: observations (B, obs) -> normalized actions (B, n_joints)
    (``__call__``), or its command before saturation (``unsaturated``; DLS and mink: the saturated command; NaN
    where mink has no solution)."""

    def __init__(self, config: DaggerConfig, env: ReachVectorEnv):
        self.config, self.layout, self.limits = config, env.layout, env.spec.velocity_limits
        self.accelerations, self.dt = env.spec.acceleration_limits, env.config.control_period
        self.dls = DampedLeastSquares(env.kin, env.layout, DlsConfig(gain=config.teacher_gain,
                                                                     saturation=config.saturation)) \
            if config.teacher == "dls" else None
        self.local_ik = None if env.layout.planned else GoalConfigurationPlanner(
            env.kin, replace(env.config.planner, restarts=0))
        self.time_optimal = TimeOptimalController(env, config.teacher_gain, config.solver, config.free_line_starts) \
            if config.teacher == "time_optimal" or config.teacher == "servo" and config.servo_target == "time_optimal" \
            else None
        self.mink = mink_controller(env.config) if config.teacher == "mink" else None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return saturate(self.unsaturated(obs), self.config.saturation)

    def unsaturated(self, obs: np.ndarray) -> np.ndarray:
        if self.dls is not None:
            return self.dls(obs) / self.limits
        if self.time_optimal is not None and self.config.teacher == "time_optimal":
            return self.time_optimal.unsaturated(obs)
        if self.mink is not None:
            return self.mink(obs)
        q = obs[:, self.layout.slice("joint_pos")].astype(np.float64)
        if self.time_optimal is not None:  # the servo to the time-optimal target
            dq = self.time_optimal.targets(obs)[1] - q
        elif self.local_ik is None:
            dq = obs[:, self.layout.slice("goal_config_error")].astype(np.float64)
        else:
            goals = obs[:, self.layout.slice("goal_pos")].astype(np.float64).reshape(len(q), -1, 3)
            dq = np.stack([self.local_ik.refine(qi, g)[0] for qi, g in zip(q, goals)]) - q
        speed = self.servo_speed(np.abs(dq))
        if self.config.servo_profile == "synchronised":
            return self.synchronised(dq, np.minimum(speed, self.limits))
        return np.sign(dq) * speed / self.limits

    def synchronised(self, dq: np.ndarray, speed: np.ndarray) -> np.ndarray:
        """Normalized ``u = dq / max_j tau_j``: tau_j = |dq_j| / s_j the time to go of joint j at its admissible
        speed s_j = min(v_j, servo_speed_j(|dq_j|)) (``speed``), so every joint moves on the straight
        line to q_g and all arrive together; ``k dq`` where the gain limits (tau_j >= 1 / k), zero at the goal."""
        distance = np.abs(dq)
        tau = np.divide(distance, speed, out=np.zeros_like(distance), where=distance > 0)
        return dq / np.maximum(tau.max(axis=1, keepdims=True), 1.0 / self.config.teacher_gain) / self.limits

    def servo_speed(self, distance: np.ndarray) -> np.ndarray:
        """The servo's speed per joint at ``distance`` d from q_g, whose commands, sent once per period dt, never
        change by more than a dt from one period to the next (k the gain, a the joint's acceleration limit):

            v = k d                                           for d <= a tau / k,  tau = 1 / k - dt / 2
            v = sqrt(2 a d + a^2 (dt^2 / 4 - tau^2)) - a dt / 2   beyond,

        the second the curve v^2 / (2 a) + v dt / 2 = d - a tau^2 / 2 on which each period's command is a dt below
        the last (d falls by v dt), tangent to k d at the junction v = a tau, so that a step from it onto the gain
        branch drops by at most a dt, as does each step on the gain branch (k v dt there). As dt -> 0 it is the
        C1 profile v = sqrt(2 a d - a^2 / k^2) beyond d = a / k^2. ``k d`` on a joint without an acceleration
        limit; assumes k dt <= 1."""
        a, dt, k = self.accelerations, self.dt, self.config.teacher_gain
        tau = 1.0 / k - dt / 2
        with np.errstate(invalid="ignore"):  # inf - inf, and below the junction where the branch is unused
            braking = np.sqrt(2 * a * distance + a ** 2 * (dt ** 2 / 4 - tau ** 2)) - a * dt / 2
        return np.where(np.isfinite(a) & (distance > a * tau / k), braking, k * distance)


class ErrorGainActor(nn.Module):
    """a = sat(y), y = M_theta(s) z(s): a learned gain matrix on the observation's errors (``core.holding``),
    saturated like ``saturate``."""

    def __init__(self, normalizer: Normalizer, layout: ObservationLayout, n_joints: int, hidden: tuple[int, ...],
                 activation: str, saturation: str = "uniform"):
        super().__init__()
        self.normalizer, self.n_joints, self.saturation = normalizer, n_joints, saturation
        self.holding = ErrorGain(layout, n_joints)
        self.net = EnsembleMLP(1, layout.size, hidden, self.holding.outputs, activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.saturate(self.unsaturated(obs))

    def unsaturated(self, obs: torch.Tensor) -> torch.Tensor:
        """y = M_theta(s) z(s), before saturation."""
        return self.holding(self.net(self.normalizer(obs)), obs)

    def saturate(self, y: torch.Tensor) -> torch.Tensor:
        """``saturate`` of torch tensors."""
        return saturate_tensor(y, self.saturation)


def saturate_tensor(y: torch.Tensor, saturation: str) -> torch.Tensor:
    """``saturate`` of torch tensors."""
    if saturation == "clip":
        return torch.clamp(y, -1.0, 1.0)
    return y / torch.clamp(y.abs().amax(dim=1, keepdim=True), min=1.0)


class Student:
    """The imitating policy (``ErrorGainActor``) with the env's fixed observation normalization."""

    def __init__(self, config: DaggerConfig, layout: ObservationLayout, n_joints: int, mean: np.ndarray,
                 std: np.ndarray):
        self.config = config
        self.policy = ErrorGainActor(Normalizer(mean, std), layout, n_joints, config.hidden, config.activation,
                                     config.saturation)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self.updates = 0

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.policy(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    def fit(self, obs: torch.Tensor, target: torch.Tensor, generator: torch.Generator) -> float:
        """``updates_per_iteration`` Adam steps of the regression on (obs, target); the mean loss."""
        total = 0.0
        for _ in range(self.config.updates_per_iteration):
            idx = torch.randint(0, len(obs), (self.config.batch_size,), generator=generator)
            loss = self.loss(obs[idx], target[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item()
        self.updates += self.config.updates_per_iteration
        return total / self.config.updates_per_iteration

    def loss(self, obs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The regression loss of ``config.loss`` on a batch (target: the saturated action, or y* for relative)."""
        if self.config.loss == "action":
            return torch.mean((self.policy(obs) - target) ** 2)
        scale = torch.clamp(target.abs().amax(dim=1, keepdim=True), min=1.0)
        return torch.mean(((self.policy.unsaturated(obs) - target) / scale) ** 2)

    def state_dict(self) -> dict:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = state["updates"]
