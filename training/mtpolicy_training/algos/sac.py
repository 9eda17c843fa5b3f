"""Soft actor-critic on the off-policy core.

Paper: Haarnoja et al., "Soft Actor-Critic Algorithms and Applications"
(2018b, the SAC that D-Grad and PiCor build on). With
``y = r + gamma (1 - terminated) (min_j Q'_j(s', a') - alpha log pi(a'|s'))``, a' ~ pi(.|s'):

* critic, Eq. 5: ``J_Q = E[1/2 sum_j (Q_j(s, a) - y)^2]`` over the twin critics
  (clipped double Q, Sec. 5), targets Q' by Polyak averaging (rate ``tau``);
* actor, Eq. 7 (reparameterized, a = tanh(mu + sigma eps)):
  ``J_pi = E[alpha log pi(a|s) - min_j Q_j(s, a)]``;
* temperature, Eq. 18 with ``target_entropy = -|A|``: learned as log alpha,
  ``J(log alpha) = E[-log alpha (log pi(a|s) + target_entropy)]``.

Order of one update (as in the authors' later code and Stable-Baselines3):
temperature step with the action sampled for the actor loss, critic step
with the temperature from before that step, then the actor step against the
updated critics; the actor is unchanged until its own step, so a' and a come
from the same actor. One temperature per task (``per_task_alpha``, indexed
by ``Batch.task``) gives the disentangled temperatures of multi-task SAC.

Variants stay thin: ``make_networks`` builds actor and critic (task
conditioning, heads, D-Grad(A) layers), every loss is returned per sample
(B,), and ``apply_gradients`` turns per-sample losses and ``Batch.task``
into a parameter step (gradient surgery overrides only that).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from mtpolicy_training.core.distributions import LOG_STD_MAX, LOG_STD_MIN
from mtpolicy_training.core.networks import Normalizer, SquashedGaussianActor, TwinCritic
from mtpolicy_training.core.replay import Batch


@dataclass
class SACConfig:
    """Network and update settings of SAC (defaults: the paper's, as in Stable-Baselines3)."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of actor and each critic."""
    activation: Literal["relu", "tanh", "crelu"] = "relu"
    """Hidden activation."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    alpha_lr: float = 3e-4
    """Adam learning rate of log alpha."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    init_alpha: float = 1.0
    """Initial entropy temperature."""
    target_entropy: float | None = None
    """Entropy target of the temperature loss; None: -|A| (the paper's heuristic)."""
    per_task_alpha: bool = False
    """One temperature per task (disentangled alpha), indexed by the batch's task."""
    target_update_every: int = 1
    """Updates between target-critic Polyak steps."""
    log_std_init: float | None = None
    """Start of the actor's (pre-squash) log-std (``SquashedGaussianActor.start_log_std``; None: PyTorch's init,
    std ~1). A gain actor's start that holds needs exploration narrower than the tolerance. Not in the paper."""
    critic_warmup: int = 0
    """Updates of the critics alone before the first actor and temperature step (the targets still follow): the
    critics first learn the values of the starting actor. Not in the paper (paper: 0)."""

    def validate(self) -> list[str]:
        bad = [k for k in ("actor_lr", "critic_lr", "alpha_lr", "tau") if not 0 < getattr(self, k) <= 1]
        bad += ["gamma"] if not 0 <= self.gamma < 1 else []
        bad += ["hidden"] if not self.hidden or min(self.hidden) <= 0 else []
        bad += ["init_alpha"] if not self.init_alpha > 0 else []
        bad += ["target_update_every"] if self.target_update_every < 1 else []
        if self.log_std_init is not None and not LOG_STD_MIN <= self.log_std_init <= LOG_STD_MAX:
            bad.append("log_std_init")
        bad += ["critic_warmup"] if self.critic_warmup < 0 else []
        return bad


class SAC:
    """The SAC learner (an ``OffPolicyMethod``): one scalar reward, ``n_tasks`` task indices."""

    n_rewards = 1

    def __init__(self, config: SACConfig, obs_size: int, action_size: int, n_tasks: int = 1,
                 obs_mean: np.ndarray | None = None, obs_std: np.ndarray | None = None):
        bad = config.validate()
        if bad:
            raise ValueError("invalid SACConfig value(s): " + ", ".join(bad))
        self.config, self.n_tasks, self.action_size = config, n_tasks, action_size
        normalizer = Normalizer(np.zeros(obs_size) if obs_mean is None else obs_mean,
                                np.ones(obs_size) if obs_std is None else obs_std)
        self.actor, self.critic = self.make_networks(normalizer, obs_size, action_size)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.full((n_tasks if config.per_task_alpha else 1,),
                                                 math.log(config.init_alpha)))
        self.target_entropy = -float(action_size) if config.target_entropy is None else config.target_entropy
        self._actor_params: list[torch.Tensor] = list(self.actor.parameters())
        self._critic_params: list[torch.Tensor] = list(self.critic.parameters())
        self.actor_opt = torch.optim.Adam(self._actor_params, lr=config.actor_lr, fused=True)
        self.critic_opt = torch.optim.Adam(self._critic_params, lr=config.critic_lr, fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=config.alpha_lr, fused=True)
        self._targets: list[torch.Tensor] = list(self.critic_target.parameters())
        self.updates = 0

    def make_networks(self, normalizer: Normalizer, obs_size: int,
                      action_size: int) -> tuple[SquashedGaussianActor, nn.Module]:
        """(actor, critic): a squashed-Gaussian actor and twin critics fused as one ensemble."""
        c = self.config
        return (SquashedGaussianActor(normalizer, obs_size, action_size, c.hidden, c.activation,
                                      log_std_init=c.log_std_init),
                TwinCritic(normalizer, obs_size, action_size, c.hidden, c.activation))

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise_std: float) -> np.ndarray:
        """A sampled action when ``noise_std`` > 0 (its size is ignored: SAC's noise is its own), else tanh(mean)."""
        o = torch.as_tensor(obs, dtype=torch.float32)
        if noise_std > 0:
            return self.actor.sample(o, torch.randn(o.shape[0], self.action_size))[0].numpy()
        return self.actor(o).numpy()

    def alpha(self, task: torch.Tensor) -> torch.Tensor:
        """Temperature per sample (B,) with per-task alphas, else a (1,) tensor that broadcasts."""
        return (self.log_alpha[task] if self.config.per_task_alpha else self.log_alpha).exp()

    def alpha_losses(self, log_prob: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Eq. 18 per sample (B,), in log alpha."""
        log_alpha = self.log_alpha[task] if self.config.per_task_alpha else self.log_alpha
        return -log_alpha * (log_prob.detach() + self.target_entropy)

    @torch.no_grad()
    def critic_targets(self, batch: Batch, next_action: torch.Tensor, next_log_prob: torch.Tensor,
                       alpha: torch.Tensor) -> torch.Tensor:
        """Soft Bellman targets y (B,) from the target critics' minimum (Eq. 3 and 5)."""
        next_q = self.critic_target(batch.next_obs, next_action).min(dim=0).values[..., 0]
        return batch.rewards[:, 0] + self.config.gamma * (~batch.terminated) * (next_q - alpha * next_log_prob)

    def critic_losses(self, batch: Batch, y: torch.Tensor) -> torch.Tensor:
        """Eq. 5 per sample (B,), summed over the twins."""
        q = self.critic(batch.obs, batch.action)[..., 0]
        return 0.5 * (q - y).square().sum(dim=0)

    def actor_losses(self, obs: torch.Tensor, action: torch.Tensor, log_prob: torch.Tensor,
                     alpha: torch.Tensor) -> torch.Tensor:
        """Eq. 7 per sample (B,): the critics see the reparameterized action."""
        return alpha * log_prob - self.critic(obs, action).min(dim=0).values[..., 0]

    def apply_gradients(self, losses: torch.Tensor, task: torch.Tensor, params: list[torch.Tensor],
                        optimizer: torch.optim.Optimizer) -> torch.Tensor:
        """Step ``params`` on the batch mean of per-sample ``losses``; returns that mean.

        Only ``params`` get gradients (the actor loss does not fill the
        critics'). Gradient-surgery variants override this: ``task`` groups
        the per-sample losses into per-task losses.
        """
        loss = losses.mean()
        for p, g in zip(params, torch.autograd.grad(loss, params)):
            p.grad = g
        optimizer.step()
        return loss.detach()

    def temperature_step(self, log_prob: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """One step of log alpha on Eq. 18 over the samples' log pi(a|s) (B,); returns the loss."""
        return self.apply_gradients(self.alpha_losses(log_prob, task), task, [self.log_alpha], self.alpha_opt)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One temperature, critic and actor step; metrics stay tensors (no host sync per update)."""
        noise = torch.randn(2, batch.obs.shape[0], self.action_size)
        action, log_prob = self.actor.sample(batch.obs, noise[0])
        alpha = self.alpha(batch.task).detach()
        acting = self.updates >= self.config.critic_warmup
        alpha_loss = self.temperature_step(log_prob, batch.task) if acting else log_prob.new_zeros(())
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(batch.next_obs, noise[1])
        y = self.critic_targets(batch, next_action, next_log_prob, alpha)
        critic_loss = self.apply_gradients(self.critic_losses(batch, y), batch.task, self._critic_params,
                                           self.critic_opt)
        actor_loss = self.apply_gradients(self.actor_losses(batch.obs, action, log_prob, alpha), batch.task,
                                          self._actor_params, self.actor_opt) if acting else log_prob.new_zeros(())
        self.updates += 1
        if self.updates % self.config.target_update_every == 0:
            with torch.no_grad():
                torch._foreach_lerp_(self._targets, self._critic_params, self.config.tau)
        return {"critic_loss": critic_loss, "actor_loss": actor_loss, "alpha_loss": alpha_loss,
                "alpha": alpha.mean(), "entropy": -log_prob.detach().mean()}

    MODULES = ("actor", "critic", "critic_target", "actor_opt", "critic_opt", "alpha_opt")

    def state_dict(self) -> dict:
        return {"updates": self.updates, "log_alpha": self.log_alpha.detach().clone(),
                **{k: getattr(self, k).state_dict() for k in self.MODULES}}

    def load_state_dict(self, state: dict) -> None:
        self.updates = state["updates"]
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        for k in self.MODULES:
            getattr(self, k).load_state_dict(state[k])
