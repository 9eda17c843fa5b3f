"""DiGrad (differential policy gradients) and DDPG, one implementation.

Paper: "DiGrad: Multi-Task Reinforcement Learning with Shared Actions".
A compound deterministic actor mu(s) outputs all joint velocities; task i
(end effector i) owns the actions a_i on its kinematic chain.

* Critic, Eq. 5-7: one network with a Q head per task (``critic="single"``)
  or one network per task (``critic="multi"``), trained on
  ``sum_i (Q_i(s, a_i) - y_i)^2`` with ``y_i = r_i + gamma Q'_i(s', mu'(s'))``.
* Actor, Eq. 12: ``grad J = sum_i E[grad_{a_i} Q_i * grad_theta mu_i]``: each
  Q_i's action gradient reaches only the actions on chain i. With the
  heuristic of direction (Eq. 11) the gradient on a shared action is the
  average over the k tasks sharing it instead of the sum.
* DDPG (Eq. 1-3) is the case of one task that owns every action, learning
  the single summed-error reward.

The per-task action gradients are routed by evaluating Q_i on a copy of the
action whose value is a but whose gradient is scaled by w_i (w_ij = 1 on
chain i, 1/k_j with the heuristic on a joint shared by k_j chains, 0 off the
chain): one critic call over all copies gives exactly Eq. 12.

Choices where the paper is silent or where we deviate, each a config field:
two hidden layers of 128 CReLU units, 256 outputs each (the paper: 2 layers, CReLU, width not
given); Gaussian exploration noise decaying linearly; soft target updates
tau = 0.005; Adam by default (``optimizer="rmsprop"`` with the paper's
learning rates is available; no comparison of the two has been run).
With ``actor="error-gain"`` (not in the paper) the actor is
``mu(s) = tanh(M_theta(s) z(s))`` (``core/holding.py``): exactly zero command at the goal; exploration noise is
added in training only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from mtpolicy.kinematics import Kinematics
from mtpolicy.observation import ObservationLayout
from mtpolicy.robots import RobotSpec
from mtpolicy_training.core.holding import Actor, ErrorGain, holding_problems
from mtpolicy_training.core.networks import DeterministicActor, MultiTaskCritic, Normalizer
from mtpolicy_training.core.replay import Batch


@dataclass
class DiGradConfig:
    """Network and update settings of DiGrad / DDPG."""

    method: Literal["digrad", "ddpg"] = "digrad"
    """digrad: one reward and one Q per task; ddpg: one Q on the single summed-error reward."""
    critic: Literal["single", "multi"] = "single"
    """DiGrad critic: one network with a head per task, or one network per task."""
    heuristic: bool = True
    """DiGrad heuristic of direction (Eq. 11): average, not sum, the shared-action gradients."""
    hidden: tuple[int, ...] = (128, 128)
    """Hidden layer widths of actor and critic (CReLU doubles each layer's output width)."""
    activation: Literal["crelu", "relu", "tanh"] = "crelu"
    """Hidden activation (the paper uses CReLU)."""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """Optimizer of actor and critic (the paper uses RMSProp)."""
    actor_lr: float = 3e-4
    """Actor learning rate (paper, RMSProp: 1e-3)."""
    critic_lr: float = 3e-4
    """Critic learning rate (paper, RMSProp: 1e-4)."""
    gamma: float = 0.99
    """Discount factor (paper: 0.99)."""
    tau: float = 0.005
    """Soft target update rate."""
    twin_critics: bool = False
    """Clipped double Q (Fujimoto et al. 2018): two critics, targets from their minimum. Not in the paper."""
    target_noise: float = 0.0
    """Std of the smoothing noise on the target action (normalized units, clipped at 2.5 std). Not in the paper."""
    policy_delay: int = 1
    """Critic updates per actor and target update (paper: 1)."""
    critic_warmup: int = 0
    """Critic updates before the actor's first step (the targets still follow): the critic first learns the values
    of the starting actor, so that a good start (``gain_init``) is not moved by an untrained critic's gradient.
    Not in the paper (paper: 0)."""
    action_penalty: float = 0.0
    """Weight of mean squared (normalized) action added to the actor loss, as in HER. Not in the paper."""
    actor: Actor = "mlp"
    """Actor structure: mlp (the paper's, tanh of an MLP), error-gain or dls-gain (tanh(M_theta(s) z(s)), exactly
    zero at the goal; ``core/holding.py``). Not in the paper."""
    gain_init: float | None = None
    """error-gain, dls-gain: start M(s) near ``gain_init`` times the Jacobian-transpose gain or the DLS law
    (``ErrorGain.constant_gain``; None: PyTorch's init)."""

    def validate(self) -> list[str]:
        bad = [k for k in ("actor_lr", "critic_lr", "tau") if not 0 < getattr(self, k) <= 1]
        bad += ["gamma"] if not 0 <= self.gamma < 1 else []
        bad += ["hidden"] if not self.hidden or min(self.hidden) <= 0 else []
        bad += [k for k in ("target_noise", "action_penalty") if getattr(self, k) < 0]
        bad += ["policy_delay"] if self.policy_delay < 1 else []
        bad += ["critic_warmup"] if self.critic_warmup < 0 else []
        bad += holding_problems(self.actor, self.gain_init)
        return bad

    @property
    def setting(self) -> str:
        """Short name of the setting, e.g. ``digrad-single-heur`` or ``ddpg``."""
        if self.method == "ddpg":
            return "ddpg"
        return f"digrad-{self.critic}" + ("-heur" if self.heuristic else "")


def gradient_weights(chain_mask: np.ndarray, heuristic: bool) -> np.ndarray:
    """(n_tasks, n_actions) weights of each task's action gradient (Eq. 10 / Eq. 11-12)."""
    w = chain_mask.astype(np.float32)
    if heuristic:
        w = w / np.maximum(w.sum(axis=0, keepdims=True), 1.0)
    return w


class DiGrad:
    """The DiGrad / DDPG learner for a robot's reach tasks."""

    def __init__(self, config: DiGradConfig, spec: RobotSpec, obs_mean: np.ndarray, obs_std: np.ndarray,
                 layout: ObservationLayout | None = None):
        """``layout``: the observations' (None: the robot's unplanned reach layout)."""
        self.config = config
        obs_size, n_act = len(obs_mean), spec.n_joints
        chain = spec.chain_mask if config.method == "digrad" else np.ones((1, n_act), dtype=bool)
        self.n_rewards = chain.shape[0]
        normalizer = Normalizer(obs_mean, obs_std)
        holding = ErrorGain.of(config.actor, layout or ObservationLayout.for_robot(n_act, spec.n_tasks), n_act,
                               Kinematics(spec) if config.actor == "dls-gain" else None)
        self.actor = DeterministicActor(normalizer, obs_size, n_act, config.hidden, config.activation, holding,
                                        config.gain_init)
        masks = torch.as_tensor(chain if config.critic == "multi" else np.ones((1, n_act)))
        self.critic = MultiTaskCritic(normalizer, obs_size, masks, self.n_rewards, config.hidden, config.activation,
                                      twins=2 if config.twin_critics else 1)
        self.updates = 0
        self.actor_target, self.critic_target = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        for p in [*self.actor_target.parameters(), *self.critic_target.parameters()]:
            p.requires_grad_(False)
        self.grad_weights = torch.as_tensor(gradient_weights(chain, config.heuristic and config.method == "digrad"))
        opt = torch.optim.Adam if config.optimizer == "adam" else torch.optim.RMSprop
        self._actor_params = list(self.actor.parameters())
        self.actor_opt = opt(self._actor_params, lr=config.actor_lr)
        self.critic_opt = opt(self.critic.parameters(), lr=config.critic_lr)
        self._target_pairs = [(t, s) for t, s in zip(
            [*self.actor_target.parameters(), *self.critic_target.parameters()],
            [*self.actor.parameters(), *self.critic.parameters()])]

    @property
    def policy(self) -> DeterministicActor:
        """The policy evaluated and exported: the target actor, a Polyak average of the actor (rate ``tau``).

        Our choice (the paper evaluates "the actor"): the average smooths the
        last updates' noise out of the weights (docs/results.md, "planar8 reach").
        """
        return self.actor_target

    @torch.no_grad()
    def deployed_action(self, obs: np.ndarray) -> np.ndarray:
        """Normalized action of ``policy`` (no exploration noise)."""
        return self.policy(torch.as_tensor(obs)).numpy()

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise_std: float) -> np.ndarray:
        """Exploration action: the online actor plus Gaussian noise, clipped to [-1, 1]."""
        a = self.actor(torch.as_tensor(obs))
        if noise_std > 0:
            a = (a + noise_std * torch.randn_like(a)).clamp(-1.0, 1.0)
        return a.numpy()

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One critic and one actor step; metrics stay tensors (no host sync per update)."""
        c = self.config
        with torch.no_grad():  # Eq. 6: y_i = r_i + gamma Q'_i(s', mu'(s'))
            next_a = self.actor_target(batch.next_obs)
            if c.target_noise > 0:
                noise = (c.target_noise * torch.randn_like(next_a)).clamp(-2.5 * c.target_noise, 2.5 * c.target_noise)
                next_a = (next_a + noise).clamp(-1.0, 1.0)
            next_q = self.critic_target(batch.next_obs, next_a).min(dim=0).values
            y = batch.rewards + c.gamma * (~batch.terminated).float().unsqueeze(1) * next_q
        q = self.critic(batch.obs, batch.action)
        critic_loss = ((q - y) ** 2).mean(dim=1).sum()  # Eq. 5 (sum of the per-critic Eq. 7 losses)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.updates += 1
        metrics = {"critic_loss": critic_loss.detach(), "q_mean": q.detach().mean()}
        if self.updates % c.policy_delay:
            return metrics
        if self.updates > c.critic_warmup:
            metrics["actor_loss"] = self.actor_step(batch)
        with torch.no_grad():
            targets, sources = zip(*self._target_pairs)
            torch._foreach_lerp_(list(targets), list(sources), c.tau)
        return metrics

    def actor_step(self, batch: Batch) -> torch.Tensor:
        """One actor step on Eq. 12 (per-task gradient-routed copies of the action); returns the loss."""
        a = self.actor(batch.obs)
        detached = a.detach()
        routed = detached + self.grad_weights.unsqueeze(1) * (a - detached).unsqueeze(0)
        actor_loss = -self.critic(batch.obs, routed)[0].sum(dim=1).mean() + self.config.action_penalty * (a ** 2).mean()
        for p, g in zip(self._actor_params, torch.autograd.grad(actor_loss, self._actor_params)):
            p.grad = g  # autograd.grad: no wasted gradients for the critic's parameters
        self.actor_opt.step()
        return actor_loss.detach()

    MODULES = ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt")

    def state_dict(self) -> dict:
        return {"updates": self.updates, **{k: getattr(self, k).state_dict() for k in self.MODULES}}

    def load_state_dict(self, state: dict) -> None:
        self.updates = state["updates"]
        for k in self.MODULES:
            getattr(self, k).load_state_dict(state[k])
