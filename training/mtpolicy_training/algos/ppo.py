"""PPO on the on-policy core.

Paper: Schulman et al. 2017, as restated in the joint-training-and-
specialization paper (seeds/ppo-joint-training-and-specialization.txt),
Eq. 4: ``L_PPO = -E[min(r A, clip(r, 1 - eps, 1 + eps) A)]`` with
``r = pi(a|s) / pi_old(a|s)``. Added to it, as in the PPO reference code:
the value loss ``vf_coef (V(s) - R)^2`` against the GAE returns, an entropy
bonus ``-ent_coef H``, per-minibatch advantage normalization, and global
gradient-norm clipping; ``epochs`` passes over the rollout in shuffled
minibatches, one Adam step each.

Variants stay thin: ``make_policy`` builds the network, ``losses`` returns
per-sample losses (B,) for a minibatch, and ``apply_gradients`` turns them
into a step (a per-task weighting or splitting hook overrides only that).
A2C is the case of one epoch, one minibatch and the unclipped ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from mtpolicy_training.core.networks import GaussianPolicy, RunningNormalizer, flatten_parameters
from mtpolicy_training.core.onpolicy import Rollout


@dataclass
class PPOConfig:
    """Network and update settings of PPO (defaults: the PPO paper's MuJoCo settings, as in Stable-Baselines3)."""

    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy and of the value network."""
    activation: Literal["tanh", "relu", "crelu"] = "tanh"
    """Hidden activation."""
    log_std_init: float = 0.0
    """Initial log-std of the (state-independent) Gaussian."""
    lr: float = 3e-4
    """Adam learning rate."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    epochs: int = 10
    """Passes over each rollout."""
    minibatch_size: int = 64
    """Transitions per gradient step (the rollout size must be a multiple of it)."""
    clip: float = 0.2
    """Clip range eps of the probability ratio (Eq. 4)."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip (0: off)."""
    normalize_advantage: bool = True
    """Standardize advantages within each minibatch."""

    def validate(self) -> list[str]:
        bad = [k for k in ("lr", "adam_eps", "clip") if not getattr(self, k) > 0]
        bad += [k for k in ("epochs", "minibatch_size") if getattr(self, k) < 1]
        bad += [k for k in ("vf_coef", "ent_coef", "max_grad_norm") if getattr(self, k) < 0]
        bad += ["hidden"] if not self.hidden or min(self.hidden) <= 0 else []
        return bad


class PPO:
    """The PPO learner (an ``OnPolicyMethod``)."""

    def __init__(self, config: PPOConfig, obs_size: int, action_size: int, rollout_size: int, seed: int = 0):
        bad = config.validate()
        if rollout_size % config.minibatch_size:
            bad.append(f"minibatch_size (rollout size {rollout_size} is not a multiple of it)")
        if bad:
            raise ValueError("invalid PPOConfig value(s): " + ", ".join(bad))
        self.config = config
        self.policy = self.make_policy(obs_size, action_size)
        self.params = list(self.policy.parameters())
        self.flat = flatten_parameters(self.params)
        self.optimizer = torch.optim.Adam([self.flat], lr=config.lr, eps=config.adam_eps, fused=True)
        self.generator = torch.Generator().manual_seed(seed)
        """Draws the minibatch shuffles."""

    def make_policy(self, obs_size: int, action_size: int) -> GaussianPolicy:
        c = self.config
        return GaussianPolicy(RunningNormalizer(obs_size), obs_size, action_size, c.hidden, c.activation,
                              c.log_std_init)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic action (the Gaussian's mean)."""
        return self.policy(torch.as_tensor(obs, dtype=torch.float32))[0].numpy()

    def losses(self, mb: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-sample loss (B,): Eq. 4's clipped surrogate + vf_coef * value error - ent_coef * entropy.

        ``mb["advantages"]`` arrive normalized when ``normalize_advantage`` (see ``update``).
        """
        c = self.config
        mean, value = self.policy(mb["obs"])
        adv = mb["advantages"]
        ratio = torch.exp(self.policy.log_prob(mean, mb["actions"]) - mb["log_probs"])
        surrogate = torch.min(ratio * adv, ratio.clamp(1 - c.clip, 1 + c.clip) * adv)
        return -surrogate + c.vf_coef * (value - mb["returns"]).square() - c.ent_coef * self.policy.entropy()

    def apply_gradients(self, losses: torch.Tensor) -> torch.Tensor:
        """One Adam step on the minibatch mean of ``losses`` with global norm clipping; returns the mean.

        Gradients land in the one flat gradient tensor, so the norm, the clip
        and the Adam step are one kernel each.
        """
        loss = losses.mean()
        grad = self.flat.grad
        if grad is None:  # flatten_parameters preallocates it; zero_grad(set_to_none=True) would drop it
            raise RuntimeError("PPO's flat parameter has lost its preallocated gradient")
        torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, self.params)], out=grad)
        if self.config.max_grad_norm:  # as torch.nn.utils.clip_grad_norm_
            grad.mul_((self.config.max_grad_norm / (grad.norm() + 1e-6)).clamp(max=1.0))
        self.optimizer.step()
        return loss.detach()

    def update(self, rollout: Rollout) -> dict[str, torch.Tensor]:
        """``epochs`` x (rollout size / minibatch_size) steps.

        Each epoch gathers one shuffled copy of the rollout and, with
        ``normalize_advantage``, standardizes the advantages of all its
        minibatches at once (each by its own mean and std).
        """
        c = self.config
        data = rollout.flat()
        n = data["obs"].shape[0]
        total = torch.zeros(())
        for _ in range(c.epochs):
            perm = torch.randperm(n, generator=self.generator)
            shuffled = {k: v[perm] for k, v in data.items()}
            if c.normalize_advantage:
                adv = shuffled["advantages"].view(-1, c.minibatch_size)
                adv = (adv - adv.mean(1, keepdim=True)) / (adv.std(1, keepdim=True) + 1e-8)
                shuffled["advantages"] = adv.view(-1)
            minibatches = {k: v.split(c.minibatch_size) for k, v in shuffled.items()}
            for i in range(n // c.minibatch_size):
                total += self.apply_gradients(self.losses({k: v[i] for k, v in minibatches.items()}))
        return {"loss": total / (c.epochs * (n // c.minibatch_size)), "log_std": self.policy.log_std.detach().mean()}

    def state_dict(self) -> dict:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
