"""Train PPO with joint training then specialization (or a baseline) on a robot's variants or a locomotion task
set: ``train ppo``.

    python -m mtpolicy_training.train ppo --robot planar8 --algo.jt 400000 --algo.sp 25 \\
        --budget-steps 2000000 --seed 1 --out-dir runs/specialization/planar8/jt400k-sp25/1
    python -m mtpolicy_training.train ppo --task-set hoppers3 --algo.jt 400000 --algo.sp 25 \\
        --budget-steps 2000000 --seed 1 --out-dir runs/specialization/hoppers3/jt400k-sp25/1

``--robot R`` trains on R's morphology variants (``envs/variants.py``: one
reach task per variant, planar8 and humanoid have three each) and exports
each variant's specialized policy (its task's copy of the split network, the
one-hot baked in) as ``policy_<variant>.onnx`` (and ``best_policy_<variant>.onnx``,
the best periodic evaluation's), a policy of that variant robot:
``mtpolicy demo --robot planar8_long --model runs/.../policy_planar8_long.onnx``.

Settings of the paper's Table I (seeds/ppo-joint-training-and-specialization.txt)
as options: ``--algo.sp 0`` (joint training only), ``--algo.jt 0
--algo.sp 100`` (separate policies), ``--algo.selection random`` (random
split), ``--algo.sp 0 --algo.task-input`` (append). The paper's batch
(4000 samples; 8000 for the biped) is ``loop.num_envs * loop.rollout_steps``:
6 x 672 = 4032 by default, 6 x 1344 = 8064 for the biped. ``loop.num_envs``
must be a multiple of the number of tasks (the env is task-major).

The paper's Table I grid (13 settings x 2 families x 3 seeds) and its Fig. 6
(torso-mass pairs) are the harness presets ``ppo-spec-table1`` and
``ppo-spec-fig6``: ``python -m benchmarks.harness ppo-spec-table1``; on a robot's
variants (harness task sets ``planar8-variants``, ``humanoid-variants``) with
joint training over half the budget: ``reach-retest-ppo``.

Resumes from ``<out-dir>/checkpoint.pt`` when run again with the same config.
Writes ``metrics.csv`` (``eval/return_<task>``, ``eval/mean_return``,
``train/specialized_fraction``), TensorBoard logs and ``eval.json`` (final
evaluation, ``final_eval_episodes`` per task).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from mtpolicy_training.algos.specialization import SpecializationConfig, SpecializationPPO
from mtpolicy_training.core.onpolicy import OnPolicyLoopConfig, train_on_policy
from mtpolicy_training.core.run_record import RunConfig
from mtpolicy_training.core.trainer import BestRun, Trainer, run_trainer
from mtpolicy_training.core.vector_envs import space_sizes
from mtpolicy_training.envs.taskset import TaskOneHotObservations, TaskSet, append_task_one_hot
from mtpolicy_training.ship.export import check_finite
from mtpolicy_training.envs.seeds import HELD_OUT_SEED
from mtpolicy_training.train.family import (VARIANT_TASK_SETS, CellMethod, Family, GridCell, TrainSettings,
                                            VariantTaskSettings, actor_problems, periodic_seed, variant_export,
                                            variant_structure)

TASK_SETS = ("hoppers3", "walker-fwd-bwd", "hopper-mass-3", "hopper-mass-8", "hopper-mass-14")


@dataclass(kw_only=True)
class SpecializationTrainConfig(TrainSettings, VariantTaskSettings):
    """PPO joint training then specialization (or a baseline of the paper) on a robot's morphology variants or a
    locomotion task set."""

    budget_steps: int = 2_000_000
    out_dir: Path = Path("runs/specialization")
    periodic_eval_episodes: int = 5
    final_eval_episodes: int = 10
    task_set: Literal["hoppers3", "walker-fwd-bwd", "hopper-mass-3", "hopper-mass-8", "hopper-mass-14"] = "hoppers3"
    """Locomotion task family (envs/registry.py); with ``--robot``, that robot's variants instead."""
    algo: SpecializationConfig = field(default_factory=SpecializationConfig)
    """PPO, jt, sp and the baselines' switches."""
    loop: OnPolicyLoopConfig = field(default_factory=lambda: OnPolicyLoopConfig(
        num_envs=6, rollout_steps=672, normalize_obs=True, eval_every=100_000, checkpoint_every=100_000))
    """Parallel envs and rollout shape (observations normalized by running statistics, as in OpenAI Baselines'
    PPO)."""

    COMMAND: ClassVar[str] = "train ppo"

    def __post_init__(self):
        # a robot without variants, a robot and a task set, a gain actor without goal errors: one line at parsing
        if bad := actor_problems(self.algo.actor, self.tasks()):
            raise ValueError("invalid config value(s): " + ", ".join(bad))

    def tasks(self) -> TaskSet:
        """The task set trained on."""
        return self.chosen_task_set(self.task_set, "hoppers3")

    def validate(self, task_set: TaskSet) -> list[str]:
        bad = self.validate_settings() + [f"algo.{k}" for k in self.algo.validate()]
        bad += [f"loop.{k}" for k in self.loop.validate()]
        if self.loop.num_envs % task_set.n_tasks:
            bad.append(f"loop.num_envs (must be a multiple of the {task_set.n_tasks} tasks of {task_set.name})")
        return bad


def evaluate(method: SpecializationPPO, task_set: TaskSet, episodes: int,
             seed: int = HELD_OUT_SEED) -> dict[str, float]:
    """The task set's evaluation of the deterministic policy (mean action, clipped) on goal sets or episodes of
    ``seed``, keys without ``eval/``."""
    def policy_fn(obs: np.ndarray, tasks: np.ndarray | None) -> np.ndarray:  # tasks: never None (N MDPs)
        return np.clip(method.act(append_task_one_hot(obs.astype(np.float32), tasks, task_set.n_tasks)), -1, 1)
    return {k.removeprefix("eval/"): v for k, v in task_set.evaluate(policy_fn, episodes, seed).items()}


def run(config: SpecializationTrainConfig) -> dict[str, float]:
    """Train (or resume), then write the final evaluation to ``eval.json``; returns it."""
    task_set = config.tasks()
    n = task_set.n_tasks
    if bad := config.validate(task_set):  # before anything is built
        raise ValueError("invalid config value(s): " + ", ".join(bad))
    torch.manual_seed(config.seed)
    probe = task_set.make_env(0)
    obs_size, action_size = space_sizes(probe)
    probe.close()

    def make_env(num_envs: int) -> TaskOneHotObservations:
        per_task = num_envs // n
        return TaskOneHotObservations(task_set.make_multitask_env(per_task, config.seed),
                                      task_set.task_indices(per_task), n)

    method = SpecializationPPO(config.algo, obs_size, n, action_size,
                               config.loop.num_envs * config.loop.rollout_steps, config.seed,
                               *variant_structure(task_set))
    export = variant_export(method.policy, task_set, "ppo-specialization", config)
    best = BestRun(config.out_dir, export)

    def train() -> None:
        train_on_policy(method, make_env, config.loop, config,
                        lambda m: evaluate(m, task_set, config.periodic_eval_episodes, periodic_seed(task_set)),
                        RunConfig.of(config),
                        best=best)

    return run_trainer(Trainer(config.out_dir, train, lambda: evaluate(method, task_set, config.final_eval_episodes),
                               export, best, check=None if export is None else lambda: check_finite(
                                   method.policy, config.out_dir / "policy.onnx")))  # a diverged run: not exported


SETTINGS = {
    "ppo-sp0": ["--algo.sp", "0"],
    "ppo-jt0-sp100": ["--algo.jt", "0", "--algo.sp", "100"],
    "ppo-random-jt400k-sp25": ["--algo.jt", "400000", "--algo.sp", "25", "--algo.selection", "random"],
    "ppo-append": ["--algo.sp", "0", "--algo.task-input"],
    **{f"ppo-jt{jt // 1000}k-sp{sp}": ["--algo.jt", str(jt), "--algo.sp", str(sp)]
       for jt in (80_000, 400_000, 800_000) for sp in (5, 25, 50)},
}
"""The rows of Table I of the joint-training paper, as harness methods."""

ROLLOUT_STEPS = {"walker-fwd-bwd": 1344}
"""Steps per env of the 6 envs: the paper's batch of 8000 (biped) or 4000 (the rest: 672) rounded up to 64s."""


def train_joint_half(setting_args: list[str], cell: GridCell) -> None:
    """A setting whose joint training lasts half the cell's budget (jt = budget_steps / 2, as the shipped
    planar8_long_ppo's 50k of 100k), the rest specialized, at any budget."""
    run(cell.config([*setting_args, "--algo.jt", str(cell.budget_steps // 2)]))


JOINT_HALF = {"ppo-jthalf-sp25": ["--algo.sp", "25"],
              "ppo-random-jthalf-sp25": ["--algo.sp", "25", "--algo.selection", "random"]}
"""Specialization (gradient-guided or a random split) of 25 % of the network after joint training over half the
budget: Table I's jt relative to a budget far below the paper's."""

FAMILY = Family("ppo", SpecializationTrainConfig, run, settings=SETTINGS,
                cells={name: CellMethod(functools.partial(train_joint_half, args), check_args=tuple(args))
                       for name, args in JOINT_HALF.items()},
                task_sets={**{t: ["--task-set", t, "--loop.rollout-steps", str(ROLLOUT_STEPS.get(t, 672))]
                              for t in TASK_SETS}, **VARIANT_TASK_SETS},
                fixed=frozenset({"task_set", "robot", "algo.jt", "algo.sp", "algo.selection", "algo.task_input"}))
"""PPO joint training and specialization; its cells take the paper's batch size per task set unless overridden,
on a robot's variants the trainer's (6 x 672)."""
