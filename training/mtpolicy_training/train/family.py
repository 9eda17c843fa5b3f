"""What a trainer family declares: its config, its run, and how the benchmark harness runs its methods.

A family is a subcommand of ``python -m mtpolicy_training.train``. Its
config is a ``TrainSettings``: every family takes the same words for the
robot or task set, the budget, the seed, the run folder and the periodic and
final evaluations (``mtpolicy.vocabulary.VOCABULARY``; a reach trainer's env is
a ``ReachOptions``, whose robot, end effectors, tolerance and goal
distribution are spelled as in every other command). For the harness it names its methods (the options of each
setting, one training run per grid cell, or a function for a cell that is
more than one run), the task sets they run on and the options that put a run
on each, and the options the grid sets itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable

import tyro
from torch import nn

from mtpolicy.kinematics import Kinematics
from mtpolicy.observation import ObservationLayout
from mtpolicy.robots import load_robot, shipped_robots
from mtpolicy.robots.variants import VARIANTS
from mtpolicy_training.core.options import override_args, word
from mtpolicy_training.core.run_record import RunSettings, config_dict
from mtpolicy_training.envs.reach import ReachOptions as ReachOptions  # re-exported: train/dagger, train/digrad
from mtpolicy_training.envs.registry import make_task_set
from mtpolicy_training.envs.seeds import HELD_OUT_SEED, VALIDATION_SEED
from mtpolicy_training.envs.taskset import TaskSet
from mtpolicy_training.envs.variants import SUFFIX, VariantReachTaskSet
from mtpolicy_training.ship.export import export_variant_policies


@dataclass(kw_only=True)
class TrainSettings(RunSettings):
    """What every trainer is given: the run's settings and its evaluations."""

    periodic_eval_episodes: int
    """Episodes per task of each evaluation during training, every ``loop.eval_every`` env steps (reach: goal
    sets of the validation seed)."""
    final_eval_episodes: int
    """Episodes per task of the final evaluation in eval.json (reach: goal sets of the held-out seed)."""

    def validate_settings(self) -> list[str]:
        return super().validate_settings() + [k for k in ("periodic_eval_episodes", "final_eval_episodes")
                                              if getattr(self, k) <= 0]


@dataclass(kw_only=True)
class VariantTaskSettings:
    """The words that put a task-family trainer (ppo, a2c) on a robot: its morphology variants as the tasks
    (``envs/variants.py``), each trained variant's policy exported to ONNX."""

    robot: Annotated[str | None, tyro.conf.arg(help=(
        "shipped robot whose morphology variants are the tasks (planar8, humanoid: mtpolicy/robots/variants.py); "
        "each trained variant's policy is exported as <out-dir>/policy_<variant>.onnx"))] = None
    """Robot whose variants are the task set (None: the trainer's task set)."""
    goal_distribution: Annotated[str, word("goal distribution")] = "local"
    """Where the reach goals of ``robot``'s variants lie."""
    reward: str = "paper"
    """With ``robot``: the reach reward shape, ``ReachConfig.reward`` (paper: DiGrad's; hold: pays for holding)."""

    def chosen_task_set(self, task_set: str, default: str) -> TaskSet:
        """The task set a run trains on: ``robot``'s variants with ``robot``, else ``task_set``; ValueError (one
        line) if the robot has no variants or a ``task_set`` other than the ``default`` is given too."""
        if self.robot is None:
            if self.reward != "paper":
                raise ValueError(f"invalid config value(s): reward ({self.reward!r} needs a robot's variants: "
                                 "--robot R)")
            return make_task_set(task_set)
        if task_set != default:
            raise ValueError(f"invalid config value(s): robot and task_set (give one; --robot {self.robot} trains on "
                             f"its variants, {self.robot}{SUFFIX})")
        return VariantReachTaskSet.of(self.robot, self.goal_distribution, self.reward)


def actor_problems(actor: str, task_set: TaskSet) -> list[str]:
    """``algo.actor`` when a gain actor is asked for on a task set without goal errors (not a robot's variants)."""
    if actor == "mlp" or isinstance(task_set, VariantReachTaskSet):
        return []
    return [f"algo.actor ({actor} needs reach goal errors, a robot's variants: --robot R; {task_set.name} has none)"]


def variant_structure(task_set: TaskSet) -> tuple[ObservationLayout | None, list[Kinematics] | None]:
    """What a gain actor is built on (``core/holding.py``): on a robot's variants their common observation layout
    and each variant's kinematics, in task order (a head's DLS step is its own variant's: link lengths differ);
    (None, None) on other task sets."""
    if not isinstance(task_set, VariantReachTaskSet):
        return None, None
    specs = [load_robot(v) for v in task_set.task_names]
    return ObservationLayout.for_robot(specs[0].n_joints, specs[0].n_tasks), [Kinematics(s) for s in specs]


def periodic_seed(task_set: TaskSet) -> int:
    """Seed of a run's periodic evaluations (which choose its best policy): the validation seed on a robot's
    variants, as in every reach trainer; the held-out seed on the other sets, as before."""
    return VALIDATION_SEED if isinstance(task_set, VariantReachTaskSet) else HELD_OUT_SEED


def variant_export(policy: nn.Module, task_set: TaskSet, method: str,
                   config: RunSettings) -> Callable[[dict, Path], object] | None:
    """A run's export on a robot's variants: head i of ``policy`` (over ``[obs, one_hot]``) as the ONNX policy of
    task i's variant (``ship.export.export_variant_policies``); None for other task sets (nothing exported)."""
    if not isinstance(task_set, VariantReachTaskSet):
        return None
    configs = [task_set.config(t) for t in range(task_set.n_tasks)]
    return lambda metrics, path: export_variant_policies(policy, task_set.task_names, configs, method,
                                                         config_dict(config), metrics, path)


REACH_TASK_SETS: dict[str, list[str]] = {robot: ["--robot", robot] for robot in shipped_robots()}
"""The reach trainers' harness task sets: the shipped robots."""

VARIANT_TASK_SETS: dict[str, list[str]] = {base + SUFFIX: ["--robot", base] for base in dict.fromkeys(v.base
                                                                                                 for v in VARIANTS)}
"""The task-family trainers' (ppo, a2c) harness task sets on robots: ``<robot>-variants`` (the task set's own name,
``envs/variants.py``) for each robot with morphology variants, a run on it trained with ``--robot <robot>``."""


@dataclass(frozen=True)
class GridCell:
    """One cell of a harness grid as its family trains it: a task set, a seed, a budget and a folder."""

    family: Family
    task_set: str
    seed: int
    budget_steps: int
    out_dir: Path
    overrides: dict[str, str]
    """The grid's options as key=value (the same for every method of the grid)."""
    inputs: dict[str, Path] = field(default_factory=dict)
    """The folders of the cells this one reads (its method's ``after``), by method."""

    def config(self, setting_args: list[str], budget_steps: int | None = None, out_dir: Path | None = None):
        """The family's config for a run of this cell: ``setting_args``, the task set's options, the cell, its
        budget and folder (or the ones given), then the overrides."""
        args = [*setting_args, *self.family.task_sets[self.task_set], "--seed", str(self.seed),
                "--budget-steps", str(self.budget_steps if budget_steps is None else budget_steps),
                "--out-dir", str(self.out_dir if out_dir is None else out_dir),
                *override_args(self.family.config, self.overrides)]
        return tyro.cli(self.family.config, args=args)


@dataclass(frozen=True)
class CellMethod:
    """A harness method whose cell is more than one training run of a setting (a baseline, runs per task,
    runs that start from other cells)."""

    train: Callable[[GridCell], None]
    """Trains the cell: writes ``out_dir/metrics.csv`` (``step`` and ``eval/<metric>`` columns) and a final
    ``out_dir/eval.json``, resuming from what an earlier session left."""
    task_sets: tuple[str, ...] = ()
    """The family's task sets it runs on (empty: all)."""
    after: tuple[str, ...] = ()
    """Methods whose cells of the same task set and seed it reads (``GridCell.inputs``): they run first."""
    check_args: tuple[str, ...] = ()
    """Setting options the grid's overrides are checked with."""


@dataclass(frozen=True)
class Family:
    """A trainer: its subcommand, config and run, and the methods it gives the harness."""

    name: str
    """Subcommand of ``python -m mtpolicy_training.train``."""
    config: type
    """The config dataclass (a ``TrainSettings``, parsed by tyro)."""
    run: Callable[[Any], dict[str, float]]
    """Trains (or resumes) a run of the config and returns its final evaluation."""
    digits: int = 4
    """Decimals of the final metrics the command prints."""
    settings: dict[str, list[str]] = field(default_factory=dict)
    """Harness method -> the options of its setting (a cell is one run)."""
    cells: dict[str, CellMethod] = field(default_factory=dict)
    """Harness methods whose cell is more than one run."""
    task_sets: dict[str, list[str]] = field(default_factory=dict)
    """Harness task set -> the options that put a run on it."""
    fixed: frozenset[str] = frozenset()
    """Options the grid sets itself (beyond the run settings), which overrides may not touch."""
