"""The off-policy loop: act, store in replay, update from minibatches, over the shared ``LoopRun``.

A method plugs in as an ``OffPolicyMethod``: it acts, updates from a
``Batch``, and saves/loads its state. The loop owns everything else: vector
env stepping, replay (its checkpoints hold the replay and the loop's numpy
random state too), update-to-data ratio, exploration noise and hindsight copies.
"""

from __future__ import annotations

import ctypes
import platform
import sys
import warnings
from dataclasses import dataclass
from typing import Callable, Literal, Protocol, TypeVar

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from mtpolicy_training.core.loop import LoopRun, LoopSettings
from mtpolicy_training.core.replay import Batch, ReplayBuffer, add_relabeled
from mtpolicy_training.core.run_record import RunConfig, RunSettings
from mtpolicy_training.core.trainer import BestRun
from mtpolicy_training.core.vector_envs import final_observations, space_sizes


class OffPolicyMethod(Protocol):
    """What a method provides to the loop."""

    n_rewards: int

    def act(self, obs: np.ndarray, noise_std: float) -> np.ndarray: ...

    def update(self, batch: Batch) -> dict[str, torch.Tensor]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


OffPolicyMethodT = TypeVar("OffPolicyMethodT", bound=OffPolicyMethod)


MATMUL_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""``LoopConfig.matmul_precision`` -> the dtype of the updates' hidden-layer matrix products."""


def update_precision(name: str) -> torch.autocast:
    """The context an update runs in: matrix products autocast to the dtype ``name`` (none for float32)."""
    dtype = MATMUL_DTYPES[name]
    return torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32)


@dataclass
class LoopConfig(LoopSettings):
    """Parallel envs, replay, exploration, update-to-data ratio and bookkeeping of an off-policy run."""

    num_envs: int = 16
    eval_every: int = 25_000
    checkpoint_every: int = 25_000
    batch_size: int = 256
    """Minibatch size of each update."""
    update_every: int = 16
    """Env steps between rounds of updates."""
    updates_per_round: int = 8
    """Gradient updates per round (update-to-data ratio = updates_per_round / update_every)."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions (hindsight copies included)."""
    learning_starts: int = 5_000
    """Env steps collected before the first update."""
    noise_start: float = 0.3
    """Std of the Gaussian exploration noise (normalized actions) at the start."""
    noise_end: float = 0.05
    """Std after ``noise_decay_steps`` (linear decay, then constant)."""
    noise_decay_steps: int = 200_000
    """Env steps over which the exploration noise decays."""
    hindsight_copies: int = 0
    """Hindsight-relabeled copies of each transition added at episode end (envs with ``relabel``; 0 = off)."""
    matmul_precision: Literal["float32", "bfloat16"] = "float32"
    """Precision of the updates' hidden-layer matrix products. bfloat16 runs each update under torch.autocast;
    weights, gradients, optimizer state and output layers stay float32. Faster only on CPUs with bfloat16 matrix
    units (docs/dgrad.md)."""

    def validate(self) -> list[str]:
        bad = super().validate() + [k for k in ("batch_size", "update_every", "buffer_size") if getattr(self, k) <= 0]
        bad += [k for k in ("updates_per_round", "learning_starts", "noise_decay_steps", "hindsight_copies")
                if getattr(self, k) < 0]
        bad += [k for k in ("noise_start", "noise_end") if not 0 <= getattr(self, k) <= 1]
        if self.update_every % self.num_envs:
            bad.append("update_every (must be a multiple of num_envs)")
        if self.matmul_precision not in MATMUL_DTYPES:
            bad.append(f"matmul_precision ({self.matmul_precision!r} not in {', '.join(MATMUL_DTYPES)})")
        return bad

    def noise_std(self, step: int) -> float:
        frac = min(1.0, step / self.noise_decay_steps) if self.noise_decay_steps else 1.0
        return self.noise_start + frac * (self.noise_end - self.noise_start)


def keep_freed_memory() -> None:
    """Make glibc's malloc keep freed memory for reuse instead of handing it back to the OS (no-op elsewhere).

    Every update allocates and frees the same activation and gradient tensors.
    With glibc's default thresholds, big chunks are mmapped and unmapped and the
    top of the heap is trimmed, so the next update faults the same pages in
    again (docs/dgrad.md measures it). Here chunks up to 32 MB (glibc's
    maximum) come from the heap, and the heap is trimmed only past 1 GB free:
    the process keeps its peak footprint. Allocation only: numerics unchanged.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    libc = ctypes.CDLL(None)
    libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    libc.mallopt(m_trim_threshold, 1 << 30)


def train_off_policy(method: OffPolicyMethodT, make_env: Callable[[int], VectorEnv], loop: LoopConfig,
                     run: RunSettings, evaluate: Callable[[OffPolicyMethodT], dict[str, float]],
                     reward_of: Callable[[np.ndarray, dict], np.ndarray] | None, run_config: RunConfig,
                     make_buffer: Callable[[int, int, int, int], ReplayBuffer] = ReplayBuffer,
                     best: BestRun | None = None) -> dict[str, float]:
    """Run (or resume) training for ``run.budget_steps`` env steps; returns the last evaluation's metrics.

    ``reward_of(reward, info)`` turns an env step into the (N, n_rewards)
    rewards the method learns from (None: the env's scalar reward). A
    truncated transition stores the episode's real last observation
    (``info["final_obs"]``) and is not terminal; ``info["task"]``, when the
    env gives it, is stored as the task index. With ``hindsight_copies`` the
    env's ``relabel`` (lockstep episodes) adds goal-relabeled copies of each
    episode. ``make_buffer(capacity, obs_size, action_size, n_rewards)``
    builds the replay (e.g. one buffer per task). Each evaluation is offered to ``best`` (if given).
    """
    keep_freed_memory()
    if loop.learning_starts >= run.budget_steps:
        warnings.warn(f"the budget ({run.budget_steps} env steps) ends before learning starts "
                      f"(learning_starts {loop.learning_starts}): no update will run; lower --loop.learning-starts",
                      stacklevel=2)
    session = LoopRun(method, make_env, loop, run, evaluate, run_config, best)
    env = session.env
    reward_of = reward_of or (lambda reward, info: reward[:, None])
    transitions = run.budget_steps * (1 + loop.hindsight_copies)
    obs_size, action_size = space_sizes(env)
    buffer = make_buffer(min(loop.buffer_size, transitions), obs_size, action_size, method.n_rewards)
    rng = np.random.default_rng(run.seed)
    if session.resumed:
        buffer.load_state_dict(session.resumed["buffer"])
        rng.bit_generator.state = session.resumed["np_rng"]
    obs = session.obs
    no_task = np.zeros(loop.num_envs, dtype=np.int64)
    precision = update_precision(loop.matmul_precision)  # entered once per update
    episode: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    while session.running:
        noise = loop.noise_std(session.step)
        action = method.act(obs, noise) if session.step >= loop.learning_starts else \
            rng.uniform(-1, 1, (loop.num_envs, action_size)).astype(np.float32)
        next_obs, reward, terminated, truncated, info = env.step(session.to_env(action))
        done = terminated | truncated
        final_obs = final_observations(next_obs, done, info)
        buffer.add(obs=obs, action=action, rewards=reward_of(reward, info), next_obs=final_obs,
                   terminated=terminated, truncated=truncated, task=info.get("task", no_task))
        session.stats.record(reward, done, info)
        if loop.hindsight_copies:
            episode.append((obs, action, final_obs))
        if truncated.any():
            for _ in range(loop.hindsight_copies):
                add_relabeled(buffer, env, episode, rng, reward_of)
            episode.clear()
        obs = next_obs
        session.advance(loop.num_envs)
        if session.step >= loop.learning_starts and loop.updates_per_round > 0 and \
                session.step % loop.update_every == 0:
            for batch in buffer.sample(loop.batch_size, session.generator, loop.updates_per_round):
                with precision:
                    session.update_means.add(method.update(batch))
        session.record(loop.num_envs, {"train/noise_std": noise},
                       lambda: {"buffer": buffer.state_dict(), "np_rng": rng.bit_generator.state})
    return session.finish()
