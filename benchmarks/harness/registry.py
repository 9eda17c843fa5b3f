"""The methods and task sets the harness runs: every trainer family's, registered in one loop.

A family declares its methods in its module under ``train/`` (``Family``:
the options of each setting, or a ``CellMethod`` for a cell that is more than
one run), the task sets they run on and the options the grid sets itself; a
task set names its metrics (``TaskSet.metrics``). Adding a method is a line in
its family's ``settings``; adding a family is a ``Family`` in ``train/cli.py``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mtpolicy_training.envs.registry import make_task_set
from mtpolicy_training.envs.taskset import TaskSetMetrics
from mtpolicy_training.train.cli import FAMILIES
from mtpolicy_training.train.family import Family, GridCell

GRID_SETS = frozenset({"seed", "out_dir", "budget_steps", "progress"})
"""Run settings every cell takes from the grid, which overrides may not touch."""


@dataclass(frozen=True)
class Method:
    """A harness method: its family, how it trains a cell, the task sets it runs on, and the methods it reads."""

    family: Family
    trains: Callable[[GridCell], None]
    """Trains one cell."""
    task_sets: tuple[str, ...]
    check_args: tuple[str, ...]
    """Setting options the grid's overrides are checked with."""
    after: tuple[str, ...] = ()
    """Methods whose cell of the same task set and seed this one reads (``GridCell.inputs``): they run first."""

    def train(self, task_set: str, seed: int, budget_steps: int, out_dir: Path, overrides: dict[str, str],
              inputs: dict[str, Path] | None = None) -> None:
        """Train the cell in ``out_dir`` (``inputs``: the folders of the cells it reads, by method)."""
        self.trains(GridCell(self.family, task_set, seed, budget_steps, out_dir, overrides, inputs or {}))

    def check(self, task_set: str, overrides: dict[str, str], budget_steps: int = 1) -> None:
        """Raise ValueError when ``overrides`` set what the grid sets, or the family refuses them or the budget
        (not all its options, a value out of range, a budget below a DAgger iteration)."""
        fixed = GRID_SETS | self.family.fixed
        if taken := sorted(k for k in overrides if k.replace("-", "_") in fixed):
            raise ValueError(f"overrides: {taken} are set by the grid (cell, budget_steps, method), not by overrides")
        try:
            GridCell(self.family, task_set, 1, budget_steps, Path("."), overrides).config(list(self.check_args))
        except SystemExit:  # tyro has printed which option or value it refuses
            raise ValueError(f"overrides: {overrides} with budget_steps {budget_steps} are refused by `python -m "
                             f"mtpolicy_training.train {self.family.name}` (its error above; see its --help)") from None


def run_setting(setting_args: list[str], cell: GridCell) -> None:
    """One training run of the setting (it resumes from ``cell.out_dir/checkpoint.pt``)."""
    cell.family.run(cell.config(setting_args))


def _methods() -> dict[str, Method]:
    methods: dict[str, Method] = {}
    for family in FAMILIES.values():
        declared = {name: Method(family, functools.partial(run_setting, args), tuple(family.task_sets), tuple(args))
                    for name, args in family.settings.items()}
        declared |= {name: Method(family, cell.train, cell.task_sets or tuple(family.task_sets), cell.check_args,
                                  cell.after) for name, cell in family.cells.items()}
        if twice := set(declared) & set(methods):
            raise ValueError(f"methods {sorted(twice)} are declared by two families")
        methods |= declared
    return methods


METHODS: dict[str, Method] = _methods()
"""Method name -> how the harness runs it."""

TASK_SETS: tuple[str, ...] = tuple(dict.fromkeys(t for m in METHODS.values() for t in m.task_sets))
"""Every task set some method runs on."""


def same_overrides(overrides: list[str]) -> list[str]:
    """``key=value`` overrides with ``_`` between the words of their keys: two lists that mean the same options
    compare equal."""
    return [f"{key.replace('-', '_')}={value}" for key, _, value in (item.partition("=") for item in overrides)]


@functools.cache
def task_set_metrics(name: str) -> TaskSetMetrics:
    """The metric names of the task set ``name``'s evaluation (eval.json, and ``eval/`` in metrics.csv)."""
    return make_task_set(name).metrics
