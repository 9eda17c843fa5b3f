"""Train PPO with joint training then specialization (or a baseline) on a locomotion task set.

    python -m mtpolicy_training.train_specialization --task-set hoppers3 --method.jt 400000 --method.sp 25 \\
        --loop.total-steps 2000000 --seed 1 --out-dir runs/specialization/hoppers3/jt400k-sp25/1

Settings of the paper's Table I (seeds/ppo-joint-training-and-specialization.txt)
as options: ``--method.sp 0`` (joint training only), ``--method.jt 0
--method.sp 100`` (separate policies), ``--method.selection random`` (random
split), ``--method.sp 0 --method.task-input True`` (append). The paper's batch
(4000 samples; 8000 for the biped) is ``loop.num_envs * loop.rollout_steps``:
6 x 672 = 4032 by default, 6 x 1344 = 8064 for the biped. ``loop.num_envs``
must be a multiple of the number of tasks (the env is task-major).

The paper's Table I grid (13 settings x 2 families x 3 seeds) and its Fig. 6
(torso-mass pairs) are the harness presets ``ppo-spec-table1`` and
``ppo-spec-fig6``: ``python -m mtpolicy_training.benchmarks.harness ppo-spec-table1``.

Resumes from ``<out-dir>/checkpoint.pt`` when run again with the same config.
Writes ``metrics.csv`` (``eval/return_<task>``, ``eval/mean_return``,
``train/specialized_fraction``), TensorBoard logs and ``eval.json`` (final
evaluation, ``final_eval_episodes`` per task).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from mtpolicy_training.algos.a2c import TaskOneHotObservations
from mtpolicy_training.algos.onpolicy import OnPolicyLoopConfig, train_on_policy
from mtpolicy_training.algos.specialization import SpecializationConfig, SpecializationPPO
from mtpolicy_training.cli import RunConfig, train_main, write_eval
from mtpolicy_training.envs.tasksets import TaskSet, append_task_one_hot, make_task_set

TASK_SETS = ("hoppers3", "walker-fwd-bwd", "hopper-mass-3", "hopper-mass-8", "hopper-mass-14")


@dataclass
class SpecializationTrainConfig:
    """One run: a task set, the method's settings, the on-policy loop, evaluation."""

    task_set: Literal["hoppers3", "walker-fwd-bwd", "hopper-mass-3", "hopper-mass-8", "hopper-mass-14"] = "hoppers3"
    """Task family (envs/tasksets.py)."""
    method: SpecializationConfig = field(default_factory=SpecializationConfig)
    """PPO, jt, sp and the baselines' switches."""
    loop: OnPolicyLoopConfig = field(default_factory=lambda: OnPolicyLoopConfig(
        total_steps=2_000_000, num_envs=6, rollout_steps=672, normalize_obs=True, eval_every=100_000,
        checkpoint_every=100_000))
    """Budget and rollout shape (observations normalized by running statistics, as in OpenAI Baselines' PPO)."""
    seed: int = 1
    """Seed of the networks, the env streams and the minibatch shuffles."""
    out_dir: Path = Path("runs/specialization")
    """Run folder (checkpoint, metrics, eval.json)."""
    eval_episodes: int = 5
    """Episodes per task at each periodic evaluation (deterministic policy, held-out env seed)."""
    final_eval_episodes: int = 10
    """Episodes per task of the final evaluation in eval.json."""
    progress: bool = True
    """Show a progress bar."""

    def validate(self, n_tasks: int) -> list[str]:
        bad = [f"method.{k}" for k in self.method.validate()] + [f"loop.{k}" for k in self.loop.validate()]
        bad += [k for k in ("eval_episodes", "final_eval_episodes") if getattr(self, k) < 1]
        if self.loop.num_envs % n_tasks:
            bad.append(f"loop.num_envs (must be a multiple of the {n_tasks} tasks of {self.task_set})")
        return bad


def evaluate(method: SpecializationPPO, task_set: TaskSet, episodes: int) -> dict[str, float]:
    """The task set's evaluation of the deterministic policy (mean action, clipped), keys without ``eval/``."""
    def policy_fn(obs: np.ndarray, tasks: np.ndarray) -> np.ndarray:
        return np.clip(method.act(append_task_one_hot(obs.astype(np.float32), tasks, task_set.n_tasks)), -1, 1)
    return {k.removeprefix("eval/"): v for k, v in task_set.evaluate(policy_fn, episodes).items()}


def run(config: SpecializationTrainConfig) -> dict[str, float]:
    """Train (or resume), then write the final evaluation to ``eval.json``; returns it."""
    task_set = make_task_set(config.task_set)
    n = task_set.n_tasks
    if bad := config.validate(n):
        raise ValueError("invalid SpecializationTrainConfig value(s): " + ", ".join(bad))
    torch.manual_seed(config.seed)
    probe = task_set.make_env(0)
    obs_size, action_size = probe.single_observation_space.shape[0], probe.single_action_space.shape[0]
    probe.close()

    def make_env(num_envs: int) -> TaskOneHotObservations:
        per_task = num_envs // n
        return TaskOneHotObservations(task_set.make_multitask_env(per_task, config.seed),
                                      task_set.task_indices(per_task), n)

    method = SpecializationPPO(config.method, obs_size, n, action_size,
                               config.loop.num_envs * config.loop.rollout_steps, config.seed)
    t0 = time.perf_counter()
    train_on_policy(method, make_env, config.loop, config.out_dir, config.seed,
                    lambda m: evaluate(m, task_set, config.eval_episodes),
                    RunConfig.of(config), config.progress)
    final = evaluate(method, task_set, config.final_eval_episodes)
    return write_eval(config.out_dir / "eval.json", final, time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    train_main(SpecializationTrainConfig, run, argv)


if __name__ == "__main__":
    main()
