"""Joint training, then gradient-guided specialization, with PPO (seeds/ppo-joint-training-and-specialization.txt).

Sec. IV: one policy is trained on rollouts pooled from all tasks with no task
input (joint training, ``jt`` samples); then, per weight, the variance across
tasks of the per-task PPO-loss gradients (Eq. 5, Algorithm 1), averaged over
``variance_iterations`` PPO iterations, picks the ``sp`` % of the policy's
weights with the HIGHEST variance to split; the rest (the M lowest) stay
shared. The split network is N copies of the joint network joined at the
output, initialized from it; training goes on with PPO.

How it sits on the on-policy core without a fork: the multi-task env is
wrapped by ``envs.taskset.TaskOneHotObservations``, so each observation carries its task's
one-hot at the end. ``SpecializedPolicy`` reads the task from those columns
(for routing only: its network does not see them, except in the append
baseline, ``task_input``). The rollout, GAE and the PPO update (``ppo.PPO``)
are unchanged; ``SpecializationPPO`` only adds the measurement before an update
and the split after it.

Choices where the paper is silent or where we deviate (all documented here):

* Value network: not specialized (the paper's choice, Sec. VI); it is one
  network over the observation without the task id, as during joint training.
* Log-std: stays shared across tasks (the paper counts it in theta; the core
  draws rollout noise from one ``policy.log_std``). The split covers the
  policy network's weights and biases, ranked together over all layers.
* Eq. 5's loss is PPO's clipped surrogate evaluated with ``PPO.losses`` on the
  task's samples of the current rollout, before that rollout's update (ratio
  1); advantages standardized over the whole pooled rollout, as the joint
  update sees them. Variance is the population variance over tasks.
* The measurement covers the last ``variance_iterations`` joint-training
  updates (fewer if ``jt`` is shorter); the split follows the update at which
  ``jt`` samples are reached. Adam's moments restart at the split (the network
  has new parameters; every one starts with a bias-corrected step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import torch
from torch import nn

from mtpolicy.kinematics import Kinematics
from mtpolicy.observation import ObservationLayout
from mtpolicy_training.core.holding import Actor, ErrorGain, holding_problems
from mtpolicy_training.core.networks import NUMPY_ACTIVATIONS, EnsembleLinear, GaussianPolicy, RunningNormalizer
from mtpolicy_training.core.onpolicy import Rollout
from mtpolicy_training.algos.ppo import PPO, PPOConfig


class SpecializedPolicy(GaussianPolicy):
    """N task policies whose weights are shared where ``specialized`` is False (Fig. 1), plus one value network.

    Input: observations with the task one-hot appended (``TaskOneHotObservations``).
    ``net`` holds the joint policy (member 0) and the value network (member 1)
    as in ``GaussianPolicy``; ``copies[k]`` holds N task copies of the policy's
    k-th weight or bias tensor and ``specialized[k]`` the boolean mask. Task
    i's tensor is ``where(mask, copy_i, shared)``: with no entry specialized
    every task computes the joint policy exactly. The N policies and the value
    network run as one (N + 1)-member ensemble; each sample takes the output of
    its task's member ("N sub-networks joined at the output"). With ``holding``
    (``core/holding.py``) a task's outputs are its gains M and its mean is
    M z(s), z with the DLS step of the task's robot (``dls-gain``): every task's
    mean is exactly zero at the goal.
    """

    def __init__(self, obs_size: int, n_tasks: int, action_size: int, hidden: tuple[int, ...], activation: str,
                 log_std_init: float, task_input: bool, holding: ErrorGain | None = None,
                 gain_init: float | None = None):
        super().__init__(RunningNormalizer(obs_size + n_tasks), obs_size + n_tasks if task_input else obs_size,
                         action_size, hidden, activation, log_std_init, holding, gain_init)
        self.obs_size, self.n_tasks, self.task_input = obs_size, n_tasks, task_input
        self.shared = [t for m in self.net if isinstance(m, EnsembleLinear) for t in (m.weight, m.bias)]
        """The policy-and-value tensors, per layer weight then bias (index 0: policy, 1: value)."""
        self.copies = nn.ParameterList(nn.Parameter(t[0].detach().expand(n_tasks, *t.shape[1:]).clone())
                                       for t in self.shared)
        for k, t in enumerate(self.shared):
            self.register_buffer(f"specialized_{k}", torch.zeros(t.shape[1:], dtype=torch.bool))

    @property
    def masks(self) -> list[torch.Tensor]:
        """Per policy tensor, True where the entry is split into per-task copies."""
        return [getattr(self, f"specialized_{k}") for k in range(len(self.shared))]

    def member_tensors(self) -> list[torch.Tensor]:
        """Each weight and bias as (N + 1, ...): the N task policies' effective tensors, then the value network's."""
        return [torch.cat([torch.where(mask, copy, shared[0]), shared[1:]])
                for mask, copy, shared in zip(self.masks, self.copies, self.shared)]

    def split_tasks(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(task index (B,), network input (B, in)) of raw observations carrying the task one-hot."""
        x = self.normalizer(obs)
        return obs[:, self.obs_size:].argmax(-1), x if self.task_input else x[:, :self.obs_size]

    def forward(self, obs: torch.Tensor, task: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (B, A) from each sample's task policy, value (B,)); ``task``: every row's, when known (an export:
        the graph then runs that task's structure only)."""
        tasks, x = self.split_tasks(obs)
        x = x.unsqueeze(0).expand(self.n_tasks + 1, -1, -1)
        tensors = iter(self.member_tensors())
        for module in self.net:
            if isinstance(module, EnsembleLinear):
                weight, bias = next(tensors), next(tensors)
                x = torch.baddbmm(bias, x, weight)
            else:
                x = module(x)
        out = x[tasks, torch.arange(x.shape[1])] if task is None else x[task]
        route = tasks if task is None else task
        return out if self.holding is None else self.holding(out, obs, route), x[-1, :, 0]

    def numpy_forward(self) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """``forward`` as a numpy function, for rollouts. Unlike ``GaussianPolicy``'s it snapshots the weights
        (the effective tensors are computed): call it again after an update."""
        with torch.no_grad():
            tensors = iter([t.numpy() for t in self.member_tensors()])
        steps = [(next(tensors), next(tensors)) if isinstance(m, EnsembleLinear) else NUMPY_ACTIVATIONS[type(m)]
                 for m in self.net]
        mean, std = self.normalizer.mean.numpy(), self.normalizer.std.numpy()

        def forward(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            x = (obs - mean) / std
            x = x if self.task_input else x[:, :self.obs_size]
            for step in steps:
                x = np.matmul(x, step[0]) + step[1] if isinstance(step, tuple) else step(x)
            tasks = obs[:, self.obs_size:].argmax(-1)
            out = x[tasks, np.arange(x.shape[1])]
            return out if self.holding is None else self.holding.numpy_forward(out, obs, tasks), x[-1, :, 0]
        return forward

    @torch.no_grad()
    def split(self, specialized: list[torch.Tensor]) -> None:
        """Split the entries where ``specialized`` (one mask per policy tensor) is True; copies start as the
        current shared values."""
        for copy, shared, mask, new in zip(self.copies, self.shared, self.masks, specialized):
            copy.copy_(shared[0].expand_as(copy))
            mask.copy_(new)


def gradient_variance(task_gradients: torch.Tensor) -> torch.Tensor:
    """Algorithm 1, lines 4-5: per-weight variance across tasks, v_j = var(g_1[j], ..., g_N[j]) (population)."""
    return task_gradients.var(dim=0, unbiased=False)


def highest(scores: torch.Tensor, percent: float) -> torch.Tensor:
    """Boolean mask of the ``round(percent / 100 * n)`` highest of ``scores`` (n,): the weights to split, so the
    M = n - that lowest stay shared (Algorithm 1, lines 6-7)."""
    mask = torch.zeros_like(scores, dtype=torch.bool)
    mask[scores.topk(round(percent / 100 * scores.numel())).indices] = True
    return mask


@dataclass
class SpecializationConfig:
    """PPO joint training then specialization: the paper's jt and sp, the selection rule and the baselines."""

    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(hidden=(64, 64, 64)))
    """PPO settings (the paper's policy: 3 hidden layers of 64)."""
    jt: int = 400_000
    """Joint-training samples (env steps over all tasks) before the split; 0: split at the start."""
    sp: float = 25.0
    """Percentage of the policy network's weights and biases split into per-task copies (0: joint only)."""
    selection: Literal["variance", "random"] = "variance"
    """Which weights to split: highest gradient variance across tasks (the method) or uniformly random."""
    variance_iterations: int = 10
    """PPO iterations the variance statistic is averaged over (the last ones of joint training)."""
    task_input: bool = False
    """Append the task one-hot to the network's input (the 'append' baseline, with sp=0)."""
    actor: Actor = "mlp"
    """Actor structure: mlp (the paper's, the Gaussian's mean an MLP), error-gain or dls-gain (each task's mean
    M_theta(s) z(s), exactly zero at the goal; ``core/holding.py``; a robot's variants only). Not in the paper."""
    gain_init: float | None = None
    """error-gain, dls-gain: start M(s) near ``gain_init`` times the Jacobian-transpose gain or the DLS law
    (``ErrorGain.constant_gain``; None: PyTorch's init)."""

    def validate(self) -> list[str]:
        bad = [f"ppo.{k}" for k in self.ppo.validate()]
        bad += ["jt"] if self.jt < 0 else []
        bad += ["sp"] if not 0 <= self.sp <= 100 else []
        bad += ["variance_iterations"] if self.variance_iterations < 1 else []
        bad += holding_problems(self.actor, self.gain_init)
        if self.selection == "variance" and 0 < self.sp < 100 and self.jt == 0:
            bad.append("jt (the variance selection needs joint training: jt > 0, or sp 0 or 100)")
        return bad


class SpecializationPPO(PPO):
    """PPO on a ``SpecializedPolicy`` with the jt/sp schedule (an ``OnPolicyMethod``)."""

    policy: SpecializedPolicy

    def __init__(self, config: SpecializationConfig, obs_size: int, n_tasks: int, action_size: int,
                 rollout_size: int, seed: int = 0, layout: ObservationLayout | None = None,
                 kins: list[Kinematics] | None = None):
        """``layout``: the reach observations' (without the one-hot), which the gain actors need; ``kins``: each
        task's robot's kinematics, in task order, which ``actor="dls-gain"`` needs."""
        bad = config.validate()
        bad += [f"kins ({len(kins)} robots for {n_tasks} tasks)"] if kins is not None and len(kins) != n_tasks else []
        if bad:
            raise ValueError("invalid SpecializationConfig value(s): " + ", ".join(bad))
        self.spec, self.n_tasks, self.task_obs_size = config, n_tasks, obs_size
        self.holding = ErrorGain.of(config.actor, layout, action_size, kins)
        super().__init__(config.ppo, obs_size + n_tasks, action_size, rollout_size, seed)
        self.samples = 0
        """Env steps trained on so far."""
        self.variance_sum = torch.zeros(sum(t[0].numel() for t in self.policy.shared))
        self.variance_count = 0
        self.is_split = False
        if config.jt == 0:
            self.specialize()

    def make_policy(self, obs_size: int, action_size: int) -> SpecializedPolicy:
        c = self.config
        return SpecializedPolicy(self.task_obs_size, self.n_tasks, action_size, c.hidden, c.activation,
                                 c.log_std_init, self.spec.task_input, self.holding, self.spec.gain_init)

    def task_gradients(self, rollout: Rollout) -> torch.Tensor:
        """(N, |theta|) gradients of Eq. 4's loss on each task's samples w.r.t. the joint policy (Eq. 5)."""
        data = rollout.flat()
        if self.config.normalize_advantage:
            adv = data["advantages"]
            data["advantages"] = (adv - adv.mean()) / (adv.std() + 1e-8)
        task = data["obs"][:, self.task_obs_size:].argmax(-1)
        grads = []
        for i in range(self.n_tasks):
            mine = task == i
            loss = self.losses({k: v[mine] for k, v in data.items()}).mean()
            grads.append(torch.cat([g[0].reshape(-1) for g in torch.autograd.grad(loss, self.policy.shared)]))
        return torch.stack(grads)

    def specialize(self) -> None:
        """Split ``sp`` % of the policy's weights (by mean variance, or at random) and restart Adam's moments."""
        p = self.policy
        if self.spec.selection == "variance" and self.variance_count:
            scores = self.variance_sum / self.variance_count
        else:
            scores = torch.rand(self.variance_sum.shape, generator=self.generator)
        flat = highest(scores, self.spec.sp)
        p.split([f.view_as(m) for f, m in zip(flat.split([m.numel() for m in p.masks]), p.masks)])
        self.optimizer.state.clear()
        self.is_split = True

    def update(self, rollout: Rollout) -> dict[str, torch.Tensor]:
        """Measure (last ``variance_iterations`` joint updates), PPO update, split once ``jt`` samples are reached."""
        s, size = self.spec, rollout.steps * rollout.num_envs
        measuring = (not self.is_split and s.selection == "variance" and 0 < s.sp < 100
                     and self.samples >= s.jt - s.variance_iterations * size)
        if measuring:
            self.variance_sum += gradient_variance(self.task_gradients(rollout))
            self.variance_count += 1
        metrics = super().update(rollout)
        self.samples += size
        if not self.is_split and s.sp > 0 and self.samples >= s.jt:
            self.specialize()
        split = sum(int(m.sum()) for m in self.policy.masks) / max(self.variance_sum.numel(), 1)
        return metrics | {"specialized_fraction": torch.tensor(split)}

    def state_dict(self) -> dict:
        return super().state_dict() | {"samples": self.samples, "variance_sum": self.variance_sum,
                                       "variance_count": self.variance_count, "is_split": self.is_split}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.samples, self.variance_count, self.is_split = (state["samples"], state["variance_count"],
                                                            state["is_split"])
        self.variance_sum.copy_(state["variance_sum"])

