"""Train A2C (single task, fine-tuning, vanilla multi-task, multi-task distillation) on a task set, evaluate it.

    # single task from scratch (a teacher, or E1 of Table 1)
    python -m mtpolicy_training.train_a2c --algo.setting single --tasks SmallFoot \
        --loop.total-steps 3000000 --seed 1 --out-dir runs/a2c/single/SmallFoot/1
    # fine-tune its last actor and critic layers on E2, evaluated on both (forgetting)
    python -m mtpolicy_training.train_a2c --algo.setting finetune --algo.init-from runs/a2c/single/SmallFoot/1 \
        --tasks SmallLeg --eval-tasks SmallFoot SmallLeg --loop.total-steps 5000000 --out-dir runs/a2c/ft/1
    # vanilla multi-task: 6 heads, 1M steps per head
    python -m mtpolicy_training.train_a2c --algo.setting multitask --loop.total-steps 6000000 --out-dir runs/a2c/mt/1
    # distillation: one teacher run per task, in task order
    python -m mtpolicy_training.train_a2c --algo.setting distill --algo.teachers runs/a2c/single/{SmallFoot,...}/1 ...

Writes ``metrics.csv`` and TensorBoard logs (``eval/mean_return``, ``eval/return_<task>``,
``eval/return_std_<task>``, ``train/...``), ``checkpoint.pt`` (resumed when
run again with the same config) and ``eval.json`` (``mean_return``,
``return_<task>``, ``return_std_<task>``): mean and std of the return over
``eval_episodes`` episodes per evaluated task (the paper: 20).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mtpolicy_training.algos.a2c import A2C, A2CConfig, TaskOneHotObservations
from mtpolicy_training.algos.onpolicy import OnPolicyLoopConfig, train_on_policy
from mtpolicy_training.cli import RunConfig, train_main, write_eval
from mtpolicy_training.envs.tasksets import GymTaskSet, PolicyFn, make_task_set


def a2c_loop() -> OnPolicyLoopConfig:
    """The paper's A2C rollout: t_max = 5 steps, n-step returns (GAE with lambda 1)."""
    return OnPolicyLoopConfig(num_envs=6, rollout_steps=5, gae_lambda=1.0, eval_every=100_000,
                              checkpoint_every=100_000)


@dataclass
class TrainA2CConfig:
    """An A2C run on (a subset of) a task set."""

    algo: A2CConfig = field(default_factory=A2CConfig)
    """Method settings."""
    loop: OnPolicyLoopConfig = field(default_factory=a2c_loop)
    """Budget (env steps summed over all sub-envs), rollout shape and bookkeeping; num_envs is split equally
    over the training tasks (a multiple of their number)."""
    task_set: str = "halfcheetah6"
    """Task set (tasks: its Gym tasks, e.g. halfcheetah6, halfcheetah8, hoppers3)."""
    tasks: tuple[str, ...] = ()
    """Training tasks, in head order (empty: all of the set)."""
    eval_tasks: tuple[str, ...] = ()
    """Evaluated tasks (empty: the training tasks). A one-head network runs its head on every one."""
    eval_episodes: int = 20
    """Episodes per task of the final evaluation (eval.json)."""
    periodic_eval_episodes: int = 5
    """Episodes per task of the evaluations every loop.eval_every steps (metrics.csv curves)."""
    seed: int = 1
    """Seed of networks, exploration and training episodes."""
    out_dir: Path = Path("runs/a2c")
    """Where metrics, checkpoints and eval.json go."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self):
        bad = [f"algo.{k}" for k in self.algo.validate()] + [f"loop.{k}" for k in self.loop.validate()]
        bad += [k for k in ("eval_episodes", "periodic_eval_episodes") if getattr(self, k) <= 0]
        task_set = make_task_set(self.task_set)
        if not isinstance(task_set, GymTaskSet):
            bad.append(f"task_set ({self.task_set} is not a set of Gym tasks)")
        for key in ("tasks", "eval_tasks"):
            unknown = [t for t in getattr(self, key) if t not in task_set.task_names]
            if unknown or len(set(getattr(self, key))) != len(getattr(self, key)):
                bad.append(f"{key} (unknown or repeated: {getattr(self, key)}; known: {task_set.task_names})")
        n_tasks = len(self.tasks or task_set.task_names)
        if self.loop.num_envs % n_tasks:
            bad.append(f"loop.num_envs ({self.loop.num_envs} is not a multiple of the {n_tasks} training tasks)")
        if self.algo.setting in ("single", "finetune") and n_tasks != 1:
            bad.append(f"algo.setting ({self.algo.setting} trains on one task; pass one with --tasks)")
        if self.algo.setting == "distill" and len(self.algo.teachers) != n_tasks:
            bad.append(f"algo.teachers ({len(self.algo.teachers)} given for {n_tasks} training tasks)")
        if n_tasks > 1 and not set(self.eval_tasks) <= set(self.tasks or task_set.task_names):
            bad.append("eval_tasks (a multi-head network is evaluated on its training tasks only)")
        if bad:
            raise ValueError("invalid config value(s): " + ", ".join(bad))


def task_subset(task_set: GymTaskSet, names: tuple[str, ...]) -> GymTaskSet:
    """The tasks ``names`` of ``task_set``, in that order, as a task set of their own."""
    ids = dict(zip(task_set.task_names, task_set.env_ids))
    return dataclasses.replace(task_set, task_names=names, env_ids=tuple(ids[n] for n in names))


def deterministic_policy(method: A2C, head_of_task: np.ndarray) -> PolicyFn:
    """The evaluated policy: each row's head mean, clipped to [-1, 1] as the training loop clips its actions
    (a mean outside the box would otherwise pay HalfCheetah's control cost on the unclipped action)."""
    return lambda obs, tasks: np.clip(method.act(obs, head_of_task[tasks]), -1.0, 1.0)


def run(config: TrainA2CConfig) -> dict[str, float]:
    """Train, then evaluate ``eval_episodes`` episodes per evaluated task; returns (and writes) eval.json."""
    torch.manual_seed(config.seed)  # the networks' initialization
    full = make_task_set(config.task_set)
    train_set = task_subset(full, config.tasks or full.task_names)
    eval_set = task_subset(full, config.eval_tasks or train_set.task_names)
    n_tasks, per_task = train_set.n_tasks, config.loop.num_envs // train_set.n_tasks
    rollout_tasks = train_set.task_indices(per_task)

    def make_env(num_envs: int):
        return TaskOneHotObservations(train_set.make_multitask_env(num_envs // n_tasks, config.seed), rollout_tasks,
                                      n_tasks)

    probe = train_set.make_env(0)
    obs_size, action_size = probe.single_observation_space.shape[0], probe.single_action_space.shape[0]
    probe.close()
    method = A2C(config.algo, obs_size, action_size, n_tasks, rollout_tasks)
    head_of_eval_task = np.array([train_set.task_names.index(t) if n_tasks > 1 else 0
                                  for t in eval_set.task_names])

    def evaluate(m: A2C, episodes: int = config.periodic_eval_episodes) -> dict[str, float]:
        metrics = eval_set.evaluate(deterministic_policy(m, head_of_eval_task), episodes)
        return {k.removeprefix("eval/"): v for k, v in metrics.items()}  # the recorder adds eval/ itself

    t0 = time.perf_counter()
    train_on_policy(method, make_env, config.loop, config.out_dir, config.seed, evaluate, RunConfig.of(config),
                    config.progress)
    return write_eval(config.out_dir / "eval.json", evaluate(method, config.eval_episodes), time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    train_main(TrainA2CConfig, run, argv, digits=2)


if __name__ == "__main__":
    main()
