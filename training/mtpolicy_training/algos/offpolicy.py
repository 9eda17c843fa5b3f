"""The off-policy core: replay, the shared training loop, checkpoints, logs.

A method plugs in as an ``OffPolicyMethod``: it acts, updates from a
``Batch``, and saves/loads its state. The loop owns everything else: vector
env stepping, replay, update-to-data ratio, evaluation, logging, and atomic
checkpoints that let a killed run resume where its last checkpoint left it
(replay included, so the resumed run is the same run).
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch


@dataclass
class Batch:
    """A sampled minibatch. ``truncated`` marks a time-limit cut, which is never a terminal."""

    obs: torch.Tensor
    action: torch.Tensor
    rewards: torch.Tensor
    """(B, n_rewards): one column per task for per-task methods, one for single-reward ones."""
    next_obs: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    task: torch.Tensor
    """(B,) task index (task families); 0 for simultaneous tasks in one env."""


class ReplayBuffer:
    """Preallocated ring buffer of contiguous tensors, sampled in one gather per field."""

    FIELDS = ("obs", "action", "rewards", "next_obs", "terminated", "truncated", "task")

    def __init__(self, capacity: int, obs_size: int, action_size: int, n_rewards: int):
        self.capacity, self.size, self.pos = capacity, 0, 0
        f32 = torch.float32
        self.data = {
            "obs": torch.zeros(capacity, obs_size, dtype=f32), "action": torch.zeros(capacity, action_size, dtype=f32),
            "rewards": torch.zeros(capacity, n_rewards, dtype=f32), "next_obs": torch.zeros(capacity, obs_size, dtype=f32),
            "terminated": torch.zeros(capacity, dtype=torch.bool), "truncated": torch.zeros(capacity, dtype=torch.bool),
            "task": torch.zeros(capacity, dtype=torch.long),
        }

    def add(self, **fields: np.ndarray) -> None:
        n = len(fields["obs"])
        idx = (torch.arange(n) + self.pos) % self.capacity
        for k in self.FIELDS:
            self.data[k][idx] = torch.as_tensor(fields[k]).to(self.data[k].dtype).reshape(n, *self.data[k].shape[1:])
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        idx = torch.randint(0, self.size, (batch_size,), generator=generator)
        return Batch(**{k: v[idx] for k, v in self.data.items()})

    def state_dict(self) -> dict:
        return {"size": self.size, "pos": self.pos, "data": {k: v[:self.size].clone() for k, v in self.data.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.size, self.pos = state["size"], state["pos"]
        for k, v in state["data"].items():
            self.data[k][:self.size] = v


class OffPolicyMethod(Protocol):
    """What a method provides to the loop."""

    n_rewards: int

    def act(self, obs: np.ndarray, noise_std: float) -> np.ndarray: ...

    def update(self, batch: Batch) -> dict[str, torch.Tensor]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class LoopConfig:
    """Budget, replay and bookkeeping of an off-policy run."""

    total_steps: int = 300_000
    """Environment steps (summed over the parallel envs)."""
    num_envs: int = 16
    """Parallel envs stepped in lockstep."""
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
    eval_every: int = 25_000
    """Env steps between evaluations."""
    eval_goal_sets: int = 100
    """Goal sets per periodic evaluation (the final evaluation uses 500)."""
    checkpoint_every: int = 25_000
    """Env steps between checkpoints (a killed run loses at most this much)."""
    hindsight_copies: int = 0
    """Hindsight-relabeled copies of each transition added at episode end (envs with ``relabel``; 0 = off)."""
    torch_threads: int = 1
    """torch intra-op threads (small nets: 1 avoids thread overhead on 2 cores)."""

    def validate(self) -> list[str]:
        bad = [k for k in ("total_steps", "num_envs", "batch_size", "update_every", "buffer_size", "eval_every",
                           "checkpoint_every", "torch_threads", "eval_goal_sets") if getattr(self, k) <= 0]
        bad += [k for k in ("updates_per_round", "learning_starts", "noise_decay_steps", "hindsight_copies")
                if getattr(self, k) < 0]
        bad += [k for k in ("noise_start", "noise_end") if not 0 <= getattr(self, k) <= 1]
        if self.update_every % self.num_envs:
            bad.append("update_every (must be a multiple of num_envs)")
        return bad

    def noise_std(self, step: int) -> float:
        frac = min(1.0, step / self.noise_decay_steps) if self.noise_decay_steps else 1.0
        return self.noise_start + frac * (self.noise_end - self.noise_start)


class RunLogger:
    """Namespaced scalars to CSV (one row per log call) and TensorBoard."""

    def __init__(self, out_dir: Path, resume: bool):
        from torch.utils.tensorboard import SummaryWriter

        self.path = out_dir / "metrics.csv"
        self.rows: list[dict] = []
        if resume and self.path.exists():
            with self.path.open() as f:
                self.rows = list(csv.DictReader(f))
        self.tb = SummaryWriter(str(out_dir / "tb"))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self.tb.add_scalar(k, v, step)
        self.rows.append({"step": step, **metrics})
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, keys)
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.path)

    def truncate(self, step: int) -> None:
        """Drop rows past ``step`` (logged after the checkpoint a resumed run restarts from)."""
        self.rows = [r for r in self.rows if int(float(r["step"])) <= step]

    def close(self) -> None:
        self.tb.close()


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a kill during the save leaves the previous checkpoint intact."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def add_relabeled(buffer: ReplayBuffer, env, episode: list, rng: np.random.Generator, reward_of: Callable) -> None:
    """Add one hindsight-relabeled copy of a finished lockstep episode."""
    obs, action, next_obs = (np.stack(x) for x in zip(*episode))
    r = env.relabel(obs, next_obs, rng)
    flat = obs.shape[0] * obs.shape[1]
    info = {k: v.reshape(flat, *v.shape[2:]) for k, v in r["info"].items()}
    buffer.add(obs=r["obs"].reshape(flat, -1), action=action.reshape(flat, -1),
               rewards=reward_of(r["reward"].reshape(flat), info), next_obs=r["next_obs"].reshape(flat, -1),
               terminated=np.zeros(flat), truncated=np.zeros(flat), task=np.zeros(flat))


def crossed(step: int, advanced: int, interval: int) -> bool:
    """True when ``step`` passed a multiple of ``interval`` during the last ``advanced`` steps."""
    return step // interval > (step - advanced) // interval


def train_off_policy(method: OffPolicyMethod, make_env: Callable[[int], object], loop: LoopConfig,
                     out_dir: Path, seed: int, evaluate: Callable[[OffPolicyMethod], dict[str, float]],
                     reward_of: Callable[[np.ndarray, dict], np.ndarray], run_config: dict,
                     progress: bool = True) -> dict[str, float]:
    """Run (or resume) training; returns the last evaluation's metrics.

    ``reward_of(reward, info)`` turns an env step into the (N, n_rewards)
    rewards the method learns from. With ``hindsight_copies`` the env's
    ``relabel`` (lockstep episodes) adds goal-relabeled copies of each
    episode. Resumes from ``out_dir/checkpoint.pt`` if it exists and was made
    with the same ``run_config``.
    """
    from tqdm import tqdm

    torch.set_num_threads(loop.torch_threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.pt"
    env = make_env(loop.num_envs)
    transitions = loop.total_steps * (1 + loop.hindsight_copies)
    buffer = ReplayBuffer(min(loop.buffer_size, transitions), env.single_observation_space.shape[0],
                          env.single_action_space.shape[0], method.n_rewards)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    step, episode_stats, last_eval = 0, [], {}
    resume = ckpt_path.exists()
    if resume:
        state = torch.load(ckpt_path, weights_only=False)
        if state["run_config"] != run_config:
            raise ValueError(f"{ckpt_path} was made with a different config; use a new --out-dir or delete it")
        method.load_state_dict(state["method"])
        buffer.load_state_dict(state["buffer"])
        gen.set_state(state["torch_rng"])
        rng.bit_generator.state = state["np_rng"]
        env._rng.bit_generator.state = state["env_rng"]
        step, last_eval = state["step"], state["last_eval"]
        print(f"resuming {out_dir} from step {step}", flush=True)
    (out_dir / "config.json").write_text(json.dumps(run_config, indent=2))
    logger = RunLogger(out_dir, resume)
    logger.truncate(step)
    obs, _ = env.reset(seed=None if resume else seed)
    episode: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    bar = tqdm(total=loop.total_steps, initial=step, disable=not progress, unit="step", dynamic_ncols=True,
               smoothing=0.05)
    t_last, s_last = time.perf_counter(), step
    while step < loop.total_steps:
        noise = loop.noise_std(step)
        action = method.act(obs, noise) if step >= loop.learning_starts else \
            rng.uniform(-1, 1, (loop.num_envs, env.single_action_space.shape[0])).astype(np.float32)
        next_obs, reward, terminated, truncated, info = env.step(action)
        final_obs = info["final_obs"] if truncated.any() else next_obs
        buffer.add(obs=obs, action=action, rewards=reward_of(reward, info), next_obs=final_obs,
                   terminated=terminated, truncated=truncated, task=np.zeros(loop.num_envs))
        if loop.hindsight_copies:
            episode.append((obs, action, final_obs))
        if truncated.any():
            for _ in range(loop.hindsight_copies):
                add_relabeled(buffer, env, episode, rng, reward_of)
            episode.clear()
            fi = info["final_info"]
            episode_stats.append((fi["all_done"].mean(), fi["scores"].mean(), fi["errors"].mean()))
        obs = next_obs
        step += loop.num_envs
        bar.update(loop.num_envs)
        if step >= loop.learning_starts and step % loop.update_every == 0:
            for _ in range(loop.updates_per_round):
                train_metrics = method.update(buffer.sample(loop.batch_size, gen))
        done = step >= loop.total_steps
        if crossed(step, loop.num_envs, loop.eval_every) or done:
            last_eval = evaluate(method)
            now = time.perf_counter()
            metrics = {f"eval/{k}": v for k, v in last_eval.items()}
            if episode_stats:
                s = np.mean(episode_stats, axis=0)
                metrics.update({"train/success": s[0], "train/mean_score": s[1], "train/mean_error": s[2]})
                episode_stats.clear()
            if step >= loop.learning_starts:
                metrics.update({f"train/{k}": float(v) for k, v in train_metrics.items()})
            metrics.update({"train/noise_std": noise, "perf/steps_per_second": (step - s_last) / (now - t_last)})
            t_last, s_last = now, step
            logger.log(step, metrics)
            bar.set_postfix(success=f"{last_eval.get('success_rate', float('nan')):.2f}",
                            score=f"{last_eval.get('mean_score', float('nan')):.2f}")
        if crossed(step, loop.num_envs, loop.checkpoint_every) or done:
            save_checkpoint(ckpt_path, {"run_config": run_config, "method": method.state_dict(),
                                        "buffer": buffer.state_dict(), "torch_rng": gen.get_state(),
                                        "np_rng": rng.bit_generator.state, "env_rng": env._rng.bit_generator.state,
                                        "step": step, "last_eval": last_eval})
    bar.close()
    logger.close()
    return last_eval
