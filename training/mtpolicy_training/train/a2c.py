"""Train A2C (single task, fine-tuning, vanilla multi-task, multi-task distillation) on a task set, evaluate it:
``train a2c``.

    # single task from scratch (a teacher, or E1 of Table 1)
    python -m mtpolicy_training.train a2c --algo.setting single --tasks SmallFoot \
        --budget-steps 3000000 --seed 1 --out-dir runs/a2c/single/SmallFoot/1
    # fine-tune its last actor and critic layers on E2, evaluated on both (forgetting)
    python -m mtpolicy_training.train a2c --algo.setting finetune --algo.init-from runs/a2c/single/SmallFoot/1 \
        --tasks SmallLeg --eval-tasks SmallFoot SmallLeg --budget-steps 5000000 --out-dir runs/a2c/ft/1
    # vanilla multi-task: 6 heads, 1M steps per head
    python -m mtpolicy_training.train a2c --algo.setting multitask --budget-steps 6000000 --out-dir runs/a2c/mt/1
    # distillation: one teacher run per task, in task order
    python -m mtpolicy_training.train a2c --algo.setting distill --algo.teachers runs/a2c/single/{SmallFoot,...}/1 ...

``--robot R`` puts every setting on R's morphology variants (``envs/variants.py``,
``--tasks`` and ``--eval-tasks`` name variants) and exports the policy of each
trained variant (its head, the one-hot baked in) as ``policy_<variant>.onnx``
(and ``best_policy_<variant>.onnx``), a policy of that variant robot:

    python -m mtpolicy_training.train a2c --robot planar8 --algo.setting single --tasks planar8_long \
        --out-dir runs/a2c/planar8/single/planar8_long/1
    # fine-tuned from planar8_long to planar8_short: policy_planar8_short.onnx
    python -m mtpolicy_training.train a2c --robot planar8 --algo.setting finetune \
        --algo.init-from runs/a2c/planar8/single/planar8_long/1 --tasks planar8_short \
        --eval-tasks planar8_long planar8_short --out-dir runs/a2c/planar8/ft/1
    # distilled from one single-variant run per variant: policy_planar8_{long,short,long_base}.onnx
    python -m mtpolicy_training.train a2c --robot planar8 --algo.setting distill \
        --algo.teachers runs/a2c/planar8/single/{planar8_long,planar8_short,planar8_long_base}/1 ...

Writes ``metrics.csv`` and TensorBoard logs (``eval/mean_return``, ``eval/return_<task>``,
``eval/return_std_<task>``, ``train/...``), ``checkpoint.pt`` (resumed when
run again with the same config) and ``eval.json`` (``mean_return``,
``return_<task>``, ``return_std_<task>``): mean and std of the return over
``final_eval_episodes`` episodes per evaluated task (the paper: 20).

For the harness: the A2C paper's Table 2 methods on halfcheetah6 (single-task
runs from scratch, vanilla multi-task, distillation from the scratch runs)
and its Table 1 fine-tuning on halfcheetah-e1e2; all of them on a robot's
variants too (task sets ``planar8-variants``, ``humanoid-variants``).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from mtpolicy.integrity import strict_json
from mtpolicy_training.algos.a2c import A2C, A2CConfig
from mtpolicy_training.core.onpolicy import OnPolicyLoopConfig, train_on_policy
from mtpolicy_training.core.run_record import RunConfig
from mtpolicy_training.core.trainer import BestRun, Trainer, run_trainer
from mtpolicy_training.core.vector_envs import space_sizes
from mtpolicy_training.envs.registry import GymTaskSet, ReachTaskSet, make_task_set
from mtpolicy_training.envs.taskset import PolicyFn, TaskOneHotObservations, TaskSet
from mtpolicy_training.envs.variants import VariantReachTaskSet
from mtpolicy_training.ship.export import check_finite
from mtpolicy_training.envs.seeds import HELD_OUT_SEED
from mtpolicy_training.train.family import (VARIANT_TASK_SETS, CellMethod, Family, GridCell, TrainSettings,
                                            VariantTaskSettings, actor_problems, periodic_seed, variant_export,
                                            variant_structure)


def a2c_loop() -> OnPolicyLoopConfig:
    """The paper's A2C rollout: t_max = 5 steps, n-step returns (GAE with lambda 1)."""
    return OnPolicyLoopConfig(num_envs=6, rollout_steps=5, gae_lambda=1.0, eval_every=100_000,
                              checkpoint_every=100_000)


@dataclass(kw_only=True)
class A2CTrainConfig(TrainSettings, VariantTaskSettings):
    """A2C in one of its settings on (a subset of) a robot's morphology variants or a task set of Gym tasks."""

    budget_steps: int = 1_000_000
    out_dir: Path = Path("runs/a2c")
    periodic_eval_episodes: int = 5
    final_eval_episodes: int = 20
    algo: A2CConfig = field(default_factory=A2CConfig)
    """Method settings."""
    loop: OnPolicyLoopConfig = field(default_factory=a2c_loop)
    """Parallel envs, rollout shape and bookkeeping; num_envs is split equally over the training tasks (a multiple
    of their number)."""
    task_set: str = "halfcheetah6"
    """Task set (tasks: its Gym tasks, e.g. halfcheetah6, halfcheetah8, hoppers3); with ``--robot``, that robot's
    variants instead."""
    tasks: tuple[str, ...] = ()
    """Training tasks, in head order (empty: all of the set)."""
    eval_tasks: tuple[str, ...] = ()
    """Evaluated tasks (empty: the training tasks). A one-head network runs its head on every one."""

    COMMAND: ClassVar[str] = "train a2c"

    def __post_init__(self):
        bad = self.validate_settings() + [f"algo.{k}" for k in self.algo.validate()]
        bad += [f"loop.{k}" for k in self.loop.validate()]
        task_set = self.tasks_of_run()
        if not isinstance(task_set, (GymTaskSet, VariantReachTaskSet)):
            hint = f"; a robot's variants: --robot {task_set.name}" if isinstance(task_set, ReachTaskSet) else ""
            bad.append(f"task_set ({task_set.name} is not a set of Gym tasks{hint})")
        bad += actor_problems(self.algo.actor, task_set)
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

    def tasks_of_run(self) -> TaskSet:
        """The task set the training and evaluated tasks are taken from."""
        return self.chosen_task_set(self.task_set, "halfcheetah6")


def task_subset(task_set: TaskSet, names: tuple[str, ...]) -> TaskSet:
    """The tasks ``names`` of ``task_set`` (a gymnasium family or a robot's variants), in that order, as a task set
    of their own."""
    if isinstance(task_set, VariantReachTaskSet):  # a variant's task is its name
        return dataclasses.replace(task_set, task_names=names)
    if not isinstance(task_set, GymTaskSet):
        raise ValueError(f"{task_set.name}: A2C trains on a gymnasium task family or a robot's variants")
    ids = dict(zip(task_set.task_names, task_set.env_ids))
    return dataclasses.replace(task_set, task_names=names, env_ids=tuple(ids[n] for n in names))


def deterministic_policy(method: A2C, head_of_task: np.ndarray) -> PolicyFn:
    """The evaluated policy: each row's head mean, clipped to [-1, 1] as the training loop clips its actions
    (a mean outside the box would otherwise pay HalfCheetah's control cost on the unclipped action)."""
    return lambda obs, tasks: np.clip(method.act(obs, head_of_task[tasks]), -1.0, 1.0)


def run(config: A2CTrainConfig) -> dict[str, float]:
    """Train, then evaluate ``final_eval_episodes`` episodes per evaluated task; returns (and writes) eval.json."""
    torch.manual_seed(config.seed)  # the networks' initialization
    full = config.tasks_of_run()
    train_set = task_subset(full, config.tasks or full.task_names)
    eval_set = task_subset(full, config.eval_tasks or train_set.task_names)
    n_tasks, per_task = train_set.n_tasks, config.loop.num_envs // train_set.n_tasks
    rollout_tasks = train_set.task_indices(per_task)

    def make_env(num_envs: int):
        return TaskOneHotObservations(train_set.make_multitask_env(num_envs // n_tasks, config.seed), rollout_tasks,
                                      n_tasks)

    probe = train_set.make_env(0)
    obs_size, action_size = space_sizes(probe)
    probe.close()
    method = A2C(config.algo, obs_size, action_size, n_tasks, rollout_tasks, *variant_structure(train_set))
    head_of_eval_task = np.array([train_set.task_names.index(t) if n_tasks > 1 else 0
                                  for t in eval_set.task_names])

    def evaluate(m: A2C, episodes: int = config.periodic_eval_episodes,
                 seed: int = periodic_seed(eval_set)) -> dict[str, float]:
        metrics = eval_set.evaluate(deterministic_policy(m, head_of_eval_task), episodes, seed)
        return {k.removeprefix("eval/"): v for k, v in metrics.items()}  # the recorder adds eval/ itself

    export = variant_export(method.policy, train_set, f"a2c-{config.algo.setting}", config)
    best = BestRun(config.out_dir, export)

    def train() -> None:
        train_on_policy(method, make_env, config.loop, config, evaluate, RunConfig.of(config), best=best)

    def final_evaluation() -> dict[str, float]:
        return evaluate(method, config.final_eval_episodes, HELD_OUT_SEED)

    return run_trainer(Trainer(config.out_dir, train, final_evaluation, export, best,
                               check=None if export is None else lambda: check_finite(
                                   method.policy, config.out_dir / "policy.onnx")))  # a diverged run: not exported


MULTITASK = ["--algo.setting", "multitask"]


def train_multitask_envs_per_task(cell: GridCell) -> None:
    """Vanilla multi-task A2C with ``loop.num_envs`` sub-envs for every task, not split over the tasks: an update
    then holds as many samples per task as a single-task update (the paper cycles the tasks, one single-task
    rollout per update)."""
    config = cell.config(MULTITASK)
    num_envs = config.loop.num_envs * make_task_set(cell.task_set).n_tasks
    run(dataclasses.replace(config, loop=dataclasses.replace(config.loop, num_envs=num_envs)))


def train_scratch(cell: GridCell) -> None:
    """Single-task A2C from scratch on every task (``out_dir/<task>/``), ``budget_steps / n_tasks`` steps each
    (the same total samples as a multi-task cell). eval.json and metrics.csv merge the tasks' runs: each task's
    own figures (``return_<task>``, ``success_rate_<task>``, ...) and the task set's headline metrics as their mean
    over the tasks (``mean_return``, ``success_rate``, ``mean_score``), at the evaluations every task's run has
    (steps summed over the tasks)."""
    task_set = make_task_set(cell.task_set)
    tasks, headline = task_set.task_names, task_set.metrics.headline_metrics
    runs: list[dict[str, float]] = []
    evaluations: dict[int, list[dict[str, float]]] = {}  # step (summed over the tasks) -> each task's evaluation
    for task in tasks:
        runs.append(run(cell.config(["--algo.setting", "single", "--tasks", task],
                                    budget_steps=cell.budget_steps // len(tasks), out_dir=cell.out_dir / task)))
        with (cell.out_dir / task / "metrics.csv").open() as f:
            for r in csv.DictReader(f):
                if r[f"eval/{headline[0]}"]:
                    evaluations.setdefault(int(r["step"]) * len(tasks), []).append(
                        {k: float(v) for k, v in r.items() if k.startswith("eval/") and v})
    final = functools.reduce(operator.or_, runs) | {h: float(np.mean([r[h] for r in runs])) for h in headline}
    final.pop("train_wall_seconds_this_session")
    rows = [{"step": step, **functools.reduce(operator.or_, each),
             **{f"eval/{h}": np.mean([e[f"eval/{h}"] for e in each]) for h in headline}}
            for step, each in sorted(evaluations.items()) if len(each) == len(tasks)]
    with (cell.out_dir / "metrics.csv").open("w", newline="") as f:  # step, the headline, each task's figures
        writer = csv.DictWriter(f, list(rows[0]) if rows else ["step", *(f"eval/{h}" for h in headline)])
        writer.writeheader()
        writer.writerows(rows)
    (cell.out_dir / "eval.json").write_text(strict_json(final, indent=2))


def train_distill(cell: GridCell) -> None:
    """Multi-task distillation: a student head per task trained on Eq. 4 towards that task's teacher, the
    a2c-scratch cell's run of the same seed; ``budget_steps`` student env steps over all tasks (the paper's
    teachers had 3x the student's samples per task, ours have as many)."""
    teachers = [str(cell.inputs["a2c-scratch"] / t) for t in make_task_set(cell.task_set).task_names]
    run(cell.config(["--algo.setting", "distill", "--algo.teachers", *teachers]))


def train_finetune(source: int, cell: GridCell) -> None:
    """Table 1's fine-tuning from E1 to E2 (``source`` 0) or back (1), E1 and E2 the first two tasks of the set
    (halfcheetah-e1e2: SmallFoot, SmallLeg; a robot's variants: its first two): the a2c-scratch cell's network of
    the source task (same seed), its last actor and critic layers trained on the other for ``budget_steps /
    n_tasks`` steps (as many as it had from scratch), evaluated on both (forgetting); on a robot it exports the
    target variant's policy."""
    tasks = make_task_set(cell.task_set).task_names
    pair = tasks[:2]
    init = cell.inputs["a2c-scratch"] / pair[source]
    run(cell.config(["--algo.setting", "finetune", "--algo.init-from", str(init), "--tasks", pair[1 - source],
                     "--eval-tasks", *pair], budget_steps=cell.budget_steps // len(tasks)))


FAMILY = Family(
    "a2c", A2CTrainConfig, run, digits=2, settings={"a2c-multitask": MULTITASK},
    cells={"a2c-multitask-envs-per-task": CellMethod(train_multitask_envs_per_task, check_args=tuple(MULTITASK)),
           "a2c-scratch": CellMethod(train_scratch, check_args=tuple(MULTITASK)),
           "a2c-distill": CellMethod(train_distill, after=("a2c-scratch",), check_args=tuple(MULTITASK)),
           **{method: CellMethod(functools.partial(train_finetune, source),
                                 task_sets=("halfcheetah-e1e2", *VARIANT_TASK_SETS), after=("a2c-scratch",),
                                 check_args=tuple(MULTITASK))
              for source, method in enumerate(("a2c-finetune-e1e2", "a2c-finetune-e2e1"))}},
    task_sets={**{t: ["--task-set", t] for t in ("halfcheetah6", "halfcheetah-e1e2")}, **VARIANT_TASK_SETS},
    fixed=frozenset({"task_set", "robot", "tasks", "eval_tasks", "algo.setting", "algo.init_from", "algo.teachers"}))
"""Table 2 of the A2C paper runs on halfcheetah6, its Table 1 (fine-tuning) on E1 = SmallFoot, E2 = SmallLeg; both
on a robot's variants (``<robot>-variants``: E1, E2 its first two)."""
