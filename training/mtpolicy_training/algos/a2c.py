"""A2C, multi-head multi-task A2C, multi-task distillation and last-layer fine-tuning on the on-policy core.

Paper: seeds/a2c-multitask-and-distillation.txt. A2C (Mnih et al. 2016,
synchronous) updates after every ``t_max`` = 5 steps of all envs with the
advantage of Eq. 3, ``A_t = sum_{i<k} gamma^i r_{t+i} + gamma^k V(s_{t+k}) - V(s_t)``
(k = steps to the end of the rollout or of the episode). That is the core's
GAE with ``gae_lambda = 1`` over ``rollout_steps = t_max``: exactly the
n-step target, plus the core's time-limit bootstrap. Loss per transition:
``-log pi(a|s) A - ent_coef H(pi) + vf_coef (V(s) - R)^2``; one RMSprop
step per rollout, global gradient-norm clipping as in the A2C reference code.

One network class serves every setting (``A2CConfig.setting``):

| setting     | heads             | trained                          | loss                     |
|-------------|-------------------|----------------------------------|--------------------------|
| single      | 1                 | everything                       | A2C                      |
| finetune    | 1 (from init_from)| last actor and critic layer, std | A2C                      |
| multitask   | one per task      | everything                       | A2C (head i on env i)    |
| distill     | one per task      | actor only (no critic)           | Eq. 4 KL to teacher i    |

Choices where the paper is vague (written here, tested in tests/training/test_a2c.py):

* Actor: 2 x 64 hidden, both shared across tasks; a head is the output
  layer. Critic: 3 x 64 hidden, the first shared ("one shared hidden layer
  and n heads"): a head is the task's own two remaining hidden layers and
  output, so each task's critic has the single-task shape. Both splits are
  config fields.
* Initialization is PyTorch's default for every layer (the paper gives none).
* The Gaussian's log-std is a state-independent parameter per head (as in the
  A2C/PPO reference code for MuJoCo), not a network output: the core draws
  the rollout's noise in one batch from it.
* "Cycling E1..En with an equal number of rollouts each" is realized as one
  vector env holding every task (task-major, equal sub-envs per task): each
  update takes the t_max rollout of all of them, and one RMSprop step on the
  mean loss, in which row j reaches only head task(j) and the shared trunk.
* The task index travels in the observation (one-hot appended by
  ``envs.taskset.TaskOneHotObservations``): heads are routed per row, also for the final
  observations of cut episodes. Observation normalization, when on, leaves
  the one-hot columns out of the network's input.
* Distillation draws every rollout from the student (p_s = 1, as in the
  paper's multi-task distillation) and its loss is Eq. 4 as printed,
  ``1/2 [log |S_T| / |S_S| - p + tr(S_T^-1 S_S)] + 1/2 (mu_T - mu_S)^T S_T^-1 (mu_T - mu_S)``
  with ``S = diag(exp(2 log_std))``, averaged over the rollout's states;
  advantages are unused. The expression is KL(N_S || N_T) (student first,
  ``core.distributions.gaussian_kl(student, teacher)``), although the paper
  writes it D_KL(N_T, N_S).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
from torch import nn

from mtpolicy.kinematics import Kinematics
from mtpolicy.observation import ObservationLayout
from mtpolicy_training.core.distributions import gaussian_entropy, gaussian_kl, gaussian_log_prob
from mtpolicy_training.core.holding import Actor, ErrorGain, holding_problems
from mtpolicy_training.core.networks import (ACTIVATIONS, NUMPY_ACTIVATIONS, EnsembleLinear, EnsembleMLP,
                                             RunningNormalizer, initialize_gain)
from mtpolicy_training.core.onpolicy import Rollout
from mtpolicy_training.core.run_record import load_checkpoint

Setting = Literal["single", "finetune", "multitask", "distill"]


class HeadedMLP(nn.Module):
    """Shared hidden layers (a trunk), then one MLP per head; row b of the input goes through head ``task[b]``.

    ``hidden[:shared]`` are shared, ``hidden[shared:]`` and the output layer
    are per head (an ``EnsembleMLP`` with one member per head). All heads are
    evaluated on all rows and each row takes its own head's output, so a loss
    on rows of task i has gradient only in head i and the trunk.
    """

    def __init__(self, in_features: int, hidden: tuple[int, ...], shared: int, out_features: int, heads: int,
                 activation: str):
        super().__init__()
        act, widen = ACTIVATIONS[activation]
        self.n_heads = heads
        self.trunk = nn.Sequential()
        width = in_features
        for h in hidden[:shared]:
            self.trunk.extend([EnsembleLinear(1, width, h), act()])
            width = h * widen
        self.heads = EnsembleMLP(heads, width, hidden[shared:], out_features, activation)

    def forward(self, x: torch.Tensor, task: torch.Tensor | int) -> torch.Tensor:
        """(B, in), task (B,) or one for every row -> (B, out)."""
        h = self.trunk(x.unsqueeze(0))
        out = self.heads(h.expand(self.n_heads, -1, -1))  # (heads, B, out)
        return out[task] if isinstance(task, int) else out[task, torch.arange(x.shape[0])]

    def numpy_forward(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``forward`` on float32 numpy arrays (no torch op overhead; reads the parameters' memory)."""
        trunk = [(m.weight.detach().numpy()[0], m.bias.detach().numpy()[0]) if isinstance(m, EnsembleLinear)
                 else NUMPY_ACTIVATIONS[type(m)] for m in self.trunk]
        heads = self.heads.numpy_forward()

        def forward(x: np.ndarray, task: np.ndarray) -> np.ndarray:
            for step in trunk:
                x = x @ step[0] + step[1] if isinstance(step, tuple) else step(x)
            return heads(x)[task, np.arange(x.shape[0])]
        return forward

    def last_layer_parameters(self) -> list[nn.Parameter]:
        """The heads' output layer (what fine-tuning trains)."""
        return list(self.heads[-1].parameters())


class MultiHeadGaussianPolicy(nn.Module):
    """Multi-head Gaussian actor and (optional) multi-head critic over ``[obs, one_hot(task)]`` inputs.

    Speaks the core's ``GaussianPolicy`` interface for rollouts: ``numpy_forward``,
    ``log_std`` and ``log_prob``. ``log_std`` is the per-sub-env log-std of the
    rollout env (``rollout_tasks``: the task of each sub-env), so the core's
    batched noise draws each sub-env's head's std. With ``holding``
    (``core/holding.py``) a head's outputs are its gains M and its mean is M z(s),
    z with the DLS step of the head's robot (``dls-gain``): every head's mean is
    exactly zero at the goal.
    """

    def __init__(self, obs_size: int, action_size: int, heads: int, actor_hidden: tuple[int, ...],
                 shared_actor_layers: int, critic_hidden: tuple[int, ...], shared_critic_layers: int,
                 activation: str, log_std_init: float, with_critic: bool, holding: ErrorGain | None = None,
                 gain_init: float | None = None):
        super().__init__()
        self.kwargs = dict(obs_size=obs_size, action_size=action_size, heads=heads, actor_hidden=actor_hidden,
                           shared_actor_layers=shared_actor_layers, critic_hidden=critic_hidden,
                           shared_critic_layers=shared_critic_layers, activation=activation,
                           log_std_init=log_std_init, with_critic=with_critic,
                           actor="mlp" if holding is None else holding.actor)
        """Constructor arguments and the actor structure (saved with the weights, so a checkpoint rebuilds its own
        network: ``load_policy``)."""
        self.obs_size, self.heads, self.holding = obs_size, heads, holding
        self.normalizer = RunningNormalizer(obs_size + heads)
        self.actor = HeadedMLP(obs_size, actor_hidden, shared_actor_layers,
                               action_size if holding is None else holding.outputs, heads, activation)
        initialize_gain(self.actor.heads, holding, gain_init)
        self.critic = (HeadedMLP(obs_size, critic_hidden, shared_critic_layers, 1, heads, activation)
                       if with_critic else None)
        self.head_log_std = nn.Parameter(torch.full((heads, action_size), log_std_init))
        self.rollout_tasks = torch.zeros(1, dtype=torch.long)
        """Task (= head) of each sub-env of the rollout env (set by the learner; not saved: it is the env's)."""

    def split(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalized observation without the one-hot, task index) of ``[obs, one_hot]`` rows."""
        return self.normalizer(obs)[:, :self.obs_size], obs[:, self.obs_size:].argmax(-1)

    def forward(self, obs: torch.Tensor, task: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (B, A), value (B,); zeros without a critic); ``task``: every row's, when known (an export: the
        graph then runs that head's structure only)."""
        x, tasks = self.split(obs)
        route = tasks if task is None else task
        value = self.critic(x, route)[:, 0] if self.critic is not None else torch.zeros(obs.shape[0])
        return self.mean(x, obs, route), value

    def mean(self, x: torch.Tensor, obs: torch.Tensor, task: torch.Tensor | int) -> torch.Tensor:
        """Each row's head mean from its network input ``x`` and raw observation: the head's outputs, or M z(s)
        with them as M."""
        out = self.actor(x, task)
        return out if self.holding is None else self.holding(out, obs, task)

    def distribution(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_std) of each row's head, each (B, A)."""
        x, task = self.split(obs)
        return self.mean(x, obs, task), self.head_log_std[task]

    def numpy_forward(self) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        mean, std = self.normalizer.mean.numpy(), self.normalizer.std.numpy()
        actor = self.actor.numpy_forward()
        critic = self.critic.numpy_forward() if self.critic is not None else None
        n, holding = self.obs_size, self.holding

        def forward(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            x, task = ((obs - mean) / std)[:, :n], obs[:, n:].argmax(-1)
            value = critic(x, task)[:, 0] if critic is not None else np.zeros(len(obs), dtype=np.float32)
            out = actor(x, task)
            return out if holding is None else holding.numpy_forward(out, obs, task), value
        return forward

    @property
    def log_std(self) -> torch.Tensor:
        """(num_envs, A): the log-std of each rollout sub-env's head."""
        return self.head_log_std[self.rollout_tasks]

    def log_prob(self, mean: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log-probabilities of a rollout's (T, num_envs, A) actions under each sub-env's head."""
        return gaussian_log_prob(mean, self.log_std, action)


@dataclass
class A2CConfig:
    """Network and update settings of A2C and its multi-task variants (defaults: the paper's Sec. 4.1)."""

    setting: Setting = "multitask"
    """single: one task from scratch; finetune: last layers of init_from on one task; multitask: one head per
    task, A2C; distill: one head per task, Eq. 4 KL to teachers."""
    actor_hidden: tuple[int, ...] = (64, 64)
    """Actor hidden widths."""
    shared_actor_layers: int = 2
    """Leading actor hidden layers shared by all heads (the rest and the output layer are per head)."""
    critic_hidden: tuple[int, ...] = (64, 64, 64)
    """Critic hidden widths."""
    shared_critic_layers: int = 1
    """Leading critic hidden layers shared by all heads."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Hidden activation."""
    log_std_init: float = 0.0
    """Initial log-std of every head's Gaussian."""
    lr: float = 7e-4
    """RMSprop learning rate."""
    rmsprop_alpha: float = 0.99
    """RMSprop smoothing constant."""
    rmsprop_eps: float = 1e-5
    """RMSprop epsilon."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip (0: off)."""
    actor: Actor = "mlp"
    """Actor structure: mlp (the paper's, each head's mean an MLP output), error-gain or dls-gain (each head's mean
    M_theta(s) z(s), exactly zero at the goal; ``core/holding.py``; a robot's variants only). Not in the paper."""
    gain_init: float | None = None
    """error-gain, dls-gain: start M(s) near ``gain_init`` times the Jacobian-transpose gain or the DLS law
    (``ErrorGain.constant_gain``; None: PyTorch's init)."""
    init_from: Path | None = None
    """finetune: a single-task run directory (or its checkpoint.pt) whose network is fine-tuned."""
    teachers: tuple[Path, ...] = ()
    """distill: one single-task run directory (or checkpoint.pt) per training task, in task order."""

    def validate(self) -> list[str]:
        bad = [k for k in ("lr", "rmsprop_alpha", "rmsprop_eps") if not getattr(self, k) > 0]
        bad += [k for k in ("ent_coef", "vf_coef", "max_grad_norm") if getattr(self, k) < 0]
        bad += [k for k in ("actor_hidden", "critic_hidden") if not getattr(self, k) or min(getattr(self, k)) <= 0]
        bad += [k for k, h in (("shared_actor_layers", self.actor_hidden), ("shared_critic_layers", self.critic_hidden))
                if not 0 <= getattr(self, k) <= len(h)]
        bad += holding_problems(self.actor, self.gain_init)
        if self.setting == "finetune" and self.init_from is None:
            bad.append("init_from (finetune needs a single-task run)")
        if self.setting != "finetune" and self.init_from is not None:
            bad.append(f"init_from (only for setting finetune, not {self.setting})")
        if (self.setting == "distill") != bool(self.teachers):
            bad.append("teachers (one per task for distill, none otherwise)")
        return bad


def load_policy(run: Path, holding_of: Callable[[str], ErrorGain | None] = lambda actor: ErrorGain.of(actor, None, 0)
                ) -> MultiHeadGaussianPolicy:
    """The trained network of an A2C run directory or checkpoint file (rebuilt from the saved constructor args);
    ``holding_of(actor)``: the structure of its saved actor option on the robots it now serves (the default
    refuses a gain actor)."""
    path = run / "checkpoint.pt" if run.is_dir() else run
    if not path.exists():
        raise ValueError(f"no A2C checkpoint at {path}")
    state = load_checkpoint(path)["method"]
    kwargs = dict(state["policy_kwargs"])
    actor = kwargs.pop("actor", "mlp")  # a checkpoint made before the actor option: the papers' MLP
    policy = MultiHeadGaussianPolicy(**kwargs, holding=holding_of(actor))
    policy.load_state_dict(state["policy"])
    return policy


class A2C:
    """The A2C learner in every setting (an ``OnPolicyMethod``)."""

    def __init__(self, config: A2CConfig, obs_size: int, action_size: int, n_tasks: int, rollout_tasks: np.ndarray,
                 layout: ObservationLayout | None = None, kins: list[Kinematics] | None = None):
        """``obs_size`` without the one-hot; ``rollout_tasks``: the training env's task (= head) per sub-env;
        ``layout``: the reach observations' (without the one-hot), which the gain actors need; ``kins``: each
        task's robot's kinematics, in task order, which ``actor="dls-gain"`` needs (a teacher's: its task's)."""
        bad = config.validate()
        if config.setting in ("single", "finetune") and n_tasks != 1:
            bad.append(f"setting ({config.setting} trains on one task, got {n_tasks})")
        if config.setting == "distill" and len(config.teachers) != n_tasks:
            bad.append(f"teachers ({len(config.teachers)} given for {n_tasks} tasks)")
        if kins is not None and len(kins) != n_tasks:
            bad.append(f"kins ({len(kins)} robots for {n_tasks} tasks)")
        if bad:
            raise ValueError("invalid A2CConfig value(s): " + ", ".join(bad))
        self.config = config

        def holding_of(actor: str, tasks: slice = slice(None)) -> ErrorGain | None:
            return ErrorGain.of(actor, layout, action_size, None if kins is None else kins[tasks])
        if config.init_from is not None:  # setting finetune (validated above)
            self.policy = load_policy(config.init_from, holding_of)
            if self.policy.kwargs["heads"] != 1 or self.policy.critic is None:
                raise ValueError(f"init_from: {config.init_from} is not a single-task A2C run")
            if self.policy.kwargs["actor"] != config.actor:
                raise ValueError(f"init_from: {config.init_from} has actor {self.policy.kwargs['actor']}, not "
                                 f"{config.actor}: give --algo.actor {self.policy.kwargs['actor']}")
            for p in self.policy.parameters():
                p.requires_grad_(False)
            trained = [*self.policy.actor.last_layer_parameters(), *self.policy.critic.last_layer_parameters(),
                       self.policy.head_log_std]
            for p in trained:
                p.requires_grad_(True)
        else:
            self.policy = MultiHeadGaussianPolicy(
                obs_size, action_size, n_tasks, config.actor_hidden, config.shared_actor_layers, config.critic_hidden,
                config.shared_critic_layers, config.activation, config.log_std_init,
                with_critic=config.setting != "distill", holding=holding_of(config.actor), gain_init=config.gain_init)
        self.policy.rollout_tasks = torch.as_tensor(rollout_tasks, dtype=torch.long)
        self.teachers = [load_policy(t, partial(holding_of, tasks=slice(i, i + 1)))
                         for i, t in enumerate(config.teachers)]
        for t in self.teachers:
            if t.kwargs["heads"] != 1 or t.kwargs["obs_size"] != obs_size:
                raise ValueError(f"teachers: each must be a single-task A2C run on this task set ({t.kwargs})")
        self.params = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.RMSprop(self.params, lr=config.lr, alpha=config.rmsprop_alpha,
                                             eps=config.rmsprop_eps)

    @torch.no_grad()
    def act(self, obs: np.ndarray, heads: np.ndarray) -> np.ndarray:
        """Deterministic actions (each row's head mean) of raw observations (B, obs) for heads (B,)."""
        x = np.concatenate([obs, np.eye(self.policy.heads, dtype=np.float32)[heads]], axis=-1)
        return self.policy(torch.as_tensor(x, dtype=torch.float32))[0].numpy()

    def loss(self, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean loss over the rows of ``data`` (flat rollout fields) and its parts."""
        c = self.config
        mean, log_std = self.policy.distribution(data["obs"])
        if c.setting == "distill":
            obs, n = data["obs"], self.policy.obs_size
            task = obs[:, n:].argmax(-1)
            with torch.no_grad():
                teacher_mean, teacher_log_std = torch.empty_like(mean), torch.empty_like(log_std)
                for i, teacher in enumerate(self.teachers):  # a teacher sees its own one-head input
                    rows = task == i
                    teacher_mean[rows], teacher_log_std[rows] = teacher.distribution(
                        torch.cat([obs[rows, :n], torch.ones(int(rows.sum()), 1)], dim=-1))
            kl = gaussian_kl(mean, log_std, teacher_mean, teacher_log_std).mean()  # Eq. 4 as printed
            return kl, {"kl": kl.detach()}
        value = self.policy(data["obs"])[1]
        policy_loss = -(gaussian_log_prob(mean, log_std, data["actions"]) * data["advantages"]).mean()
        entropy = gaussian_entropy(log_std).mean()
        value_loss = (value - data["returns"]).square().mean()
        loss = policy_loss - c.ent_coef * entropy + c.vf_coef * value_loss
        return loss, {"policy_loss": policy_loss.detach(), "value_loss": value_loss.detach(),
                      "entropy": entropy.detach()}

    def step(self, loss: torch.Tensor) -> None:
        """One RMSprop step on ``loss`` with global gradient-norm clipping."""
        self.optimizer.zero_grad()
        loss.backward()
        if self.config.max_grad_norm:
            nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)
        self.optimizer.step()

    def update(self, rollout: Rollout) -> dict[str, torch.Tensor]:
        loss, parts = self.loss(rollout.flat())
        self.step(loss)
        return {"loss": loss.detach(), **parts, "log_std": self.policy.head_log_std.detach().mean()}

    def state_dict(self) -> dict:
        return {"policy": self.policy.state_dict(), "policy_kwargs": self.policy.kwargs,
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
