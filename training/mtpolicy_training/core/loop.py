"""What the off- and on-policy training loops share: their common settings, the setup of a run (threads, run
record, envs, seeds, resume) and the bookkeeping after each step (metric rows, evaluations, checkpoints).

A loop builds a ``LoopRun``, steps its env until ``running`` is False,
``advance``s the run record by the env steps taken and calls ``record`` after
its updates (which offers each evaluation to the run's ``BestRun``, if any);
``finish`` closes the run and returns the last evaluation. A checkpoint
holds the method's state, the torch generator, the envs' random state and
what the loop adds; a resumed run restarts the episodes in flight
from a reset, so it continues the same learning but does not repeat an
uninterrupted run step for step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, Mapping, Protocol, TypeVar

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from mtpolicy_training.core.run_record import RunConfig, RunRecorder, RunSettings
from mtpolicy_training.core.trainer import BestRun
from mtpolicy_training.core.vector_envs import (action_scaler, check_same_step_autoreset, env_rng_state,
                                                set_env_rng_state)


@dataclass
class LoopSettings:
    """Parallel envs and bookkeeping of a training loop."""

    num_envs: int = 1
    """Parallel envs stepped in lockstep."""
    eval_every: int = 50_000
    """Environment steps between evaluations (at the end of the step or rollout that crosses the mark)."""
    log_every: int = 5_000
    """Environment steps between rows of training metrics in metrics.csv and TensorBoard, each the mean over the
    updates since the last row (an evaluation's row carries them too). A resumed run may change it."""
    checkpoint_every: int = 50_000
    """Environment steps between checkpoints (a killed run loses at most this much)."""
    torch_threads: int = 1
    """torch intra-op threads (small nets: 1 avoids thread overhead on 2 cores)."""

    def validate(self) -> list[str]:
        return [k for k in ("num_envs", "eval_every", "log_every", "checkpoint_every", "torch_threads")
                if getattr(self, k) <= 0]


class Method(Protocol):
    """What every loop needs of a method: its state, to checkpoint and resume it."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


MethodT = TypeVar("MethodT", bound=Method)
"""A loop's method type (its evaluation takes that method)."""


def crossed(step: int, advanced: int, interval: int) -> bool:
    """True when ``step`` passed a multiple of ``interval`` during the last ``advanced`` steps."""
    return step // interval > (step - advanced) // interval


class EpisodeStats:
    """Undiscounted return and length of each finished training episode, plus the reach env's end-of-episode info."""

    def __init__(self, num_envs: int):
        self.returns, self.lengths = np.zeros(num_envs), np.zeros(num_envs, dtype=np.int64)
        self.finished: list[tuple[float, int]] = []
        self.reach: list[tuple[float, float, float]] = []

    def record(self, reward: np.ndarray, done: np.ndarray, info: dict) -> None:
        self.returns += reward
        self.lengths += 1
        if done.any():
            self.finished += zip(self.returns[done].tolist(), self.lengths[done].tolist())
            self.returns[done], self.lengths[done] = 0.0, 0
            fi = info.get("final_info", {})
            if "all_done" in fi:
                self.reach.append((fi["all_done"][done].mean(), fi["scores"][done].mean(), fi["errors"][done].mean()))

    def pop(self) -> dict[str, float]:
        """``train/`` metrics of the episodes finished since the last call."""
        out = {}
        if self.finished:
            r, n = np.mean(self.finished, axis=0)
            out = {"train/episode_return": r, "train/episode_length": n}
        if self.reach:
            s = np.mean(self.reach, axis=0)
            out.update({"train/success": s[0], "train/mean_score": s[1], "train/mean_error": s[2]})
        self.finished, self.reach = [], []
        return out


class UpdateMeans:
    """Sums of the metrics each update returns; ``pop`` gives their means since the last call as ``train/`` metrics.

    A row of metrics.csv then stands for every update since the previous row, not only the last one's values.
    """

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor | float] = {}
        self.count = 0

    def add(self, metrics: Mapping[str, torch.Tensor | float]) -> None:
        for k, v in metrics.items():
            v = v.detach() if isinstance(v, torch.Tensor) else v
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.count += 1

    def pop(self) -> dict[str, float]:
        means = {f"train/{k}": float(v) / self.count for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


class LoopRun(Generic[MethodT]):
    """One session of a training loop: set up (or resumed from ``run.out_dir/checkpoint.pt``, if it was made with
    the same ``run_config``), then advanced and recorded step by step."""

    def __init__(self, method: MethodT, make_env: Callable[[int], VectorEnv], loop: LoopSettings, run: RunSettings,
                 evaluate: Callable[[MethodT], dict[str, float]], run_config: RunConfig, best: BestRun | None = None):
        if bad := loop.validate() + run.validate_settings():
            raise ValueError(f"invalid {type(loop).__name__} value(s): " + ", ".join(bad))
        torch.set_num_threads(loop.torch_threads)
        self.method, self.loop, self.budget_steps, self.evaluate = method, loop, run.budget_steps, evaluate
        self.best = best
        """Where each evaluation is offered as the run's best (None: no best-run record)."""
        self.recorder = RunRecorder(run.out_dir, run_config, run.budget_steps, run.progress)
        self.env = make_env(loop.num_envs)
        check_same_step_autoreset(self.env)
        self.to_env = action_scaler(self.env.single_action_space)
        self.generator = torch.Generator().manual_seed(run.seed)
        """The loop's torch random stream (minibatches, rollout noise), saved in checkpoints."""
        self.resumed = self.recorder.resumed
        """The checkpoint this session resumes from, if any (the loop restores what it added itself)."""
        if self.resumed:
            method.load_state_dict(self.resumed["method"])
            self.generator.set_state(self.resumed["torch_rng"])
            set_env_rng_state(self.env, self.resumed["env_rng"])
        self.obs, _ = self.env.reset(seed=None if self.resumed else run.seed)
        self.stats = EpisodeStats(loop.num_envs)
        self.update_means = UpdateMeans()

    @property
    def step(self) -> int:
        """Env steps taken so far (over all sessions)."""
        return self.recorder.step

    @property
    def running(self) -> bool:
        return self.recorder.step < self.budget_steps

    def advance(self, steps: int) -> None:
        self.recorder.advance(steps)

    def record(self, advanced: int, metrics: dict[str, float], state: Callable[[], dict]) -> None:
        """After a step of ``advanced`` env steps and its updates: a metric row (``metrics`` between the episodes'
        and the updates' means) when one is due, with an evaluation when that is due, and a checkpoint with
        ``state()`` when one is due. The last step of the budget has all three."""
        step = self.recorder.step
        finished = step >= self.budget_steps
        evaluating = crossed(step, advanced, self.loop.eval_every) or finished
        if evaluating or crossed(step, advanced, self.loop.log_every):
            evaluation = self.evaluate(self.method) if evaluating else None
            if evaluation is not None and self.best is not None:
                self.best.offer(evaluation, step, self.recorder.train_seconds)
            self.recorder.log(evaluation, self.stats.pop() | metrics | self.update_means.pop())
        if crossed(step, advanced, self.loop.checkpoint_every) or finished:
            self.recorder.save(method=self.method.state_dict(), torch_rng=self.generator.get_state(),
                               env_rng=env_rng_state(self.env), **state())

    def finish(self) -> dict[str, float]:
        """Close the run record and the env; the last evaluation's metrics."""
        self.recorder.close()
        self.env.close()
        return self.recorder.last_eval
