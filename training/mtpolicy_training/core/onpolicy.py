"""The on-policy loop: vectorized rollouts, GAE(lambda) and an update per rollout, over the shared ``LoopRun``.

A method plugs in as an ``OnPolicyMethod``: it owns a ``GaussianPolicy``
(``policy``) and updates from a ``Rollout``. The loop collects
``rollout_steps`` steps of ``num_envs`` envs into preallocated tensors,
computes advantages and calls the update (checkpoints at rollout
boundaries). Actions are normalized ([-1, 1] maps to the env's Box bounds);
the Gaussian sample is stored unclipped and clipped only for the env, as in
the PPO reference code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, TypeVar

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from mtpolicy_training.core.loop import EpisodeStats, LoopRun, LoopSettings
from mtpolicy_training.core.networks import Normalizer, RunningNormalizer
from mtpolicy_training.core.run_record import RunConfig, RunSettings
from mtpolicy_training.core.trainer import BestRun
from mtpolicy_training.core.vector_envs import space_sizes


@dataclass
class OnPolicyLoopConfig(LoopSettings):
    """Parallel envs, rollout shape, advantage estimation and bookkeeping of an on-policy run."""

    rollout_steps: int = 2048
    """Steps per env in one rollout (a rollout holds rollout_steps * num_envs transitions)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda (1: Monte-Carlo returns, 0: one-step TD)."""
    normalize_obs: bool = False
    """Normalize observations by running mean/std (updated after each update, so a rollout is scored
    with the statistics it was collected under)."""

    def validate(self) -> list[str]:
        bad = super().validate() + (["rollout_steps"] if self.rollout_steps <= 0 else [])
        return bad + [k for k in ("gamma", "gae_lambda") if not 0 <= getattr(self, k) <= 1]


class Rollout:
    """Preallocated (T, N, ...) tensors of one rollout, plus its advantages and returns."""

    def __init__(self, steps: int, num_envs: int, obs_size: int, action_size: int):
        def z(*shape: int) -> torch.Tensor:
            return torch.zeros(steps, num_envs, *shape)

        self.obs, self.actions, self.means = z(obs_size), z(action_size), z(action_size)
        self.log_probs, self.values, self.rewards = z(), z(), z()
        self.next_values = z()
        """V of the observation each step reached (the final one where an episode was cut)."""
        self.terminated = torch.zeros(steps, num_envs, dtype=torch.bool)
        self.cut = torch.zeros(steps, num_envs, dtype=torch.bool)
        """Episode truncated (and not terminated) at this step: ``next_values`` is V of its final observation."""
        self.done = torch.zeros(steps, num_envs, dtype=torch.bool)
        """Episode ended at this step (terminated or truncated): advantages do not flow across it."""
        self.advantages, self.returns = z(), z()
        self.steps, self.num_envs = steps, num_envs

    def flat(self) -> dict[str, torch.Tensor]:
        """The fields a loss needs, as (T * N, ...) views."""
        n = self.steps * self.num_envs
        return {k: getattr(self, k).reshape(n, *getattr(self, k).shape[2:])
                for k in ("obs", "actions", "log_probs", "advantages", "returns")}


def gae(rollout: Rollout, gamma: float, lam: float) -> None:
    """Generalized advantage estimation (Schulman et al. 2016, Eq. 16) into ``rollout.advantages``/``returns``.

    ``delta_t = r_t + gamma (1 - terminated_t) V(s'_t) - V(s_t)`` with s'_t the
    observation step t reached, so a time-limit cut bootstraps from the value
    of the episode's final observation; ``A_t = delta_t + gamma lambda
    (1 - done_t) A_{t+1}``. Returns are ``A_t + V(s_t)`` (the value target).
    """
    r = rollout
    delta = (r.rewards + gamma * (~r.terminated) * r.next_values - r.values).numpy()
    carry = (gamma * lam * (~r.done)).numpy().astype(np.float32)
    adv = r.advantages.numpy()
    last = np.zeros(r.num_envs, dtype=np.float32)
    for t in range(r.steps - 1, -1, -1):
        last = delta[t] + carry[t] * last
        adv[t] = last
    torch.add(r.advantages, r.values, out=r.returns)


class RolloutPolicy(Protocol):
    """What the loop needs of a policy (``core.networks.GaussianPolicy``'s interface): its numpy form for rollouts,
    its log-std and log-probability, and its observation normalizer (a ``RunningNormalizer`` with
    ``normalize_obs``)."""

    @property
    def log_std(self) -> torch.Tensor: ...

    @property
    def normalizer(self) -> Normalizer: ...

    def numpy_forward(self) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]: ...

    def log_prob(self, mean: torch.Tensor, action: torch.Tensor) -> torch.Tensor: ...


class OnPolicyMethod(Protocol):
    """What an on-policy method provides to the loop."""

    @property
    def policy(self) -> RolloutPolicy: ...

    def update(self, rollout: Rollout) -> dict[str, torch.Tensor]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


OnPolicyMethodT = TypeVar("OnPolicyMethodT", bound=OnPolicyMethod)


def collect_rollout(policy: RolloutPolicy, env: VectorEnv, obs: np.ndarray, rollout: Rollout,
                    to_env: Callable[[np.ndarray], np.ndarray], stats: EpisodeStats,
                    generator: torch.Generator) -> np.ndarray:
    """Fill ``rollout`` with ``rollout.steps`` lockstep steps from ``obs``; returns the observation after them.

    Per step: the policy (as a numpy function: a few small matmuls, no torch
    op overhead) and the env step, written into numpy views of the
    preallocated tensors. The exploration noise is drawn for the whole
    rollout at once and the log-probabilities computed for all of it at the
    end, in torch.
    """
    r = rollout
    act = policy.numpy_forward()
    torch.mul(torch.randn(r.actions.shape, generator=generator), policy.log_std.detach().exp(), out=r.actions)
    obs_np, actions, means, values, next_values, rewards, terminated_np, done_np, cut_np = (
        x.numpy() for x in (r.obs, r.actions, r.means, r.values, r.next_values, r.rewards, r.terminated, r.done,
                            r.cut))
    for t in range(r.steps):
        obs_np[t] = obs
        means[t], values[t] = act(obs_np[t])
        actions[t] += means[t]  # a = mean + std * noise
        next_obs, rewards[t], terminated, truncated, info = env.step(to_env(actions[t]))
        terminated_np[t], done_np[t] = terminated, terminated | truncated
        cut_np[t] = cut = truncated & ~terminated
        if cut.any():  # V of the final observation of episodes cut by the time limit
            next_values[t, cut] = act(np.stack(info["final_obs"][cut]).astype(np.float32))[1]
        stats.record(rewards[t], done_np[t], info)
        obs = next_obs
    next_values[:-1] = np.where(cut_np[:-1], next_values[:-1], values[1:])
    next_values[-1] = np.where(cut_np[-1], next_values[-1], act(np.asarray(obs, dtype=np.float32))[1])
    r.log_probs.copy_(policy.log_prob(r.means, r.actions))
    return obs


def train_on_policy(method: OnPolicyMethodT, make_env: Callable[[int], VectorEnv], loop: OnPolicyLoopConfig,
                    run: RunSettings, evaluate: Callable[[OnPolicyMethodT], dict[str, float]],
                    run_config: RunConfig, best: BestRun | None = None) -> dict[str, float]:
    """Run (or resume, at a rollout boundary) training for ``run.budget_steps`` env steps; returns the last
    evaluation's metrics. Each evaluation is offered to ``best`` (if given)."""
    normalizer = method.policy.normalizer if loop.normalize_obs else None
    if normalizer is not None and not isinstance(normalizer, RunningNormalizer):
        raise ValueError(f"normalize_obs needs a policy with a RunningNormalizer, not a {type(normalizer).__name__}")
    session = LoopRun(method, make_env, loop, run, evaluate, run_config, best)
    env = session.env
    rollout = Rollout(loop.rollout_steps, loop.num_envs, *space_sizes(env))
    obs = session.obs
    per_rollout = loop.rollout_steps * loop.num_envs
    while session.running:
        with torch.no_grad():
            obs = collect_rollout(method.policy, env, obs, rollout, session.to_env, session.stats, session.generator)
        gae(rollout, loop.gamma, loop.gae_lambda)
        session.update_means.add(method.update(rollout))
        if normalizer is not None:
            normalizer.update(rollout.obs.reshape(per_rollout, -1))
        session.advance(per_rollout)
        session.record(per_rollout, {}, dict)
    return session.finish()
