"""Policies against the classical controllers on the test seeds: the README's reach table, and the test-seed
table of a harness grid.

For each (robot, goal distribution) of the rows it runs the damped-least-squares
baseline and mink's differential IK once (``anchors``), and each row's exported
policies, through ``reach_evaluation.evaluate_reach`` on the same goal sets:
``goal_sets`` per seed of ``reach_evaluation.TEST_SEEDS`` (never used for a choice).
Held success is pooled over the seeds with a 95 % Wilson interval; time to reach
is the median over the held goal sets; dithering the mean sign changes per joint
in the final second (both: means over the evaluations of the row).

    python -m mtpolicy_training.ship.reach_table \
        --rows planar8:local:planar8_reach planar8:workspace:planar8_reach_workspace \
               humanoid:local:humanoid_reach humanoid:workspace:humanoid_reach_workspace

A grid's rows (``--grids``): a row per method x robot, over the training seeds
of its finished cells, each cell's last exported policy (``policy.onnx``, not
the best-validated one), on the goal distribution it trained on. Held success
is then pooled over training seeds x test seeds x goal sets (the Wilson interval
does not hold the spread between training seeds), and beside it each training
seed's held success (over the test seeds): mean [min, max].

    python -m mtpolicy_training.ship.reach_table --grids benchmarks/results/reach-dagger-vs-digrad \
        --out benchmarks/results/reach-dagger-vs-digrad/test-seeds

Writes ``<out>/table.md`` and ``<out>/results.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tyro

from mtpolicy.integrity import strict_json
from mtpolicy.policy import resolve_model_path
from mtpolicy_training.envs.reach import ReachConfig
from mtpolicy_training.envs.reach_evaluation import (TEST_SEEDS, Controller, dls_controller, evaluate_reach,
                                                     mink_controller, onnx_controller, wilson_interval)

GOAL_SET_FIELDS = ("robot", "end_effectors", "control_period", "reach_tolerance", "goal_joint_range",
                   "goal_distribution")
"""The reach settings that make the goal sets and score them: every controller of a (robot, distribution) is
evaluated with the same ones."""


@dataclass
class TableConfig:
    """Which policies to hold against DLS and mink, on which goal sets."""

    rows: tuple[str, ...] = ()
    """robot:distribution:model triples (model: a shipped name or an ONNX path)."""
    grids: tuple[Path, ...] = ()
    """Harness grid folders (<results_root>/<name>): a row per method x robot of their finished cells."""
    anchors: tuple[str, ...] = ("DLS", "mink")
    """Classical controllers on the same goal sets (DLS, mink; ``--anchors`` alone: none)."""
    goal_sets: int = 500
    """Goal sets per seed."""
    seeds: tuple[int, ...] = TEST_SEEDS
    """Seeds of the goal sets (the test seeds: report only)."""
    out: Path = Path("benchmarks/results/reach-table")
    """Folder of table.md and results.json."""


@dataclass(frozen=True)
class Row:
    """A row of the table: one exported policy, or a grid method's policies of its training seeds."""

    robot: str
    distribution: str
    name: str
    models: tuple[str, ...]
    """Shipped names or ONNX paths."""
    training_seeds: tuple[int, ...] = ()
    """The grid cells' seeds, in the order of ``models`` (empty for a row of ``--rows``)."""


def summary(per_seed: list[dict[str, float]], goal_sets: int) -> dict[str, float]:
    """Pooled held success with its interval, and the seeds' means of the other figures."""
    held = sum(r["success_rate"] * goal_sets for r in per_seed)
    low, high = wilson_interval(held, goal_sets * len(per_seed))
    mean = {k: float(np.nanmean([r[k] for r in per_seed])) for k in per_seed[0]}
    return {**mean, "success_rate": held / (goal_sets * len(per_seed)), "success_low": low, "success_high": high}


def parse_row(row: str) -> Row:
    """A ``robot:distribution:model`` row (SystemExit with a one-line error if it is not one)."""
    parts = row.split(":")
    if len(parts) != 3 or not all(parts):
        raise SystemExit(f"error: --rows {row!r} is not robot:distribution:model")
    return Row(parts[0], parts[1], parts[2], (parts[2],))


def grid_rows(grid: Path) -> list[Row]:
    """A row per (method, task set) of a harness grid's finished cells (``cell.json``), with each cell's last
    exported policy; cells that export none (the DLS baseline) are left out, saying so."""
    cells: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for done in sorted((grid / "runs").glob("*/*/*/cell.json")):
        cell = done.parent
        method, task_set, seed = cell.parents[1].name, cell.parent.name, int(cell.name)
        if (cell / "policy.rejected.onnx").exists():
            raise SystemExit(f"error: {cell}: policy.onnx is not the run's last policy (a later final evaluation "
                             "was set aside as policy.rejected.onnx)")
        if not (cell / "policy.onnx").is_file():
            print(f"{grid.name}: {method} {task_set} seed {seed} exported no policy: left out", flush=True)
            continue
        cells.setdefault((method, task_set), []).append((seed, cell / "policy.onnx"))
    if not cells:
        raise SystemExit(f"error: {grid}: no finished cell with a policy.onnx (runs/<method>/<task set>/<seed>/)")
    rows = []
    for (method, _), runs in cells.items():
        runs.sort()
        env = onnx_controller(runs[0][1])[1]
        rows.append(Row(env.robot, env.goal_distribution, method, tuple(str(p) for _, p in runs),
                        tuple(s for s, _ in runs)))
    return rows


def goal_set_config(env: ReachConfig) -> dict:
    """What of ``env`` makes and scores the goal sets (``GOAL_SET_FIELDS``)."""
    return {k: getattr(env, k) for k in GOAL_SET_FIELDS}


def row_controllers(row: Row) -> list[tuple[Controller, ReachConfig]]:
    """Each model of the row as a controller, with its task on the row's goal distribution."""
    controllers = []
    for model in row.models:
        policy, env = onnx_controller(resolve_model_path(model))
        if env.robot != row.robot:
            raise SystemExit(f"error: model {model} is for robot {env.robot!r}, not {row.robot!r}")
        controllers.append((policy, replace(env, goal_distribution=row.distribution)))
    return controllers


def evaluate_row(name: str, controllers: list[tuple[Controller, ReachConfig]], cfg: TableConfig,
                 training_seeds: tuple[int, ...] = ()) -> dict:
    """A row's results: its summary over every (controller, test seed) evaluation and, for several controllers
    (the training seeds of a grid method), each one's summary and their held success's mean, min and max."""
    start = time.perf_counter()
    runs = [[evaluate_reach(controller, env, cfg.goal_sets, seed) for seed in cfg.seeds]
            for controller, env in controllers]
    out = {"controller": name, "seeds": list(cfg.seeds), "goal_sets_per_seed": cfg.goal_sets,
           "summary": summary([r for per_seed in runs for r in per_seed], cfg.goal_sets),
           "per_seed": [r for per_seed in runs for r in per_seed]}
    if training_seeds:
        out["training_seeds"] = list(training_seeds)
    if len(runs) > 1:
        per_model = [summary(per_seed, cfg.goal_sets) for per_seed in runs]
        held = [s["success_rate"] for s in per_model]
        out |= {"per_training_seed": per_model,
                "held_per_training_seed": {"mean": float(np.mean(held)), "min": min(held), "max": max(held)}}
    return out | {"seconds": time.perf_counter() - start}


def table_line(result: dict, spread_column: bool) -> str:
    """The markdown line of a row's results."""
    s, spread = result["summary"], result.get("held_per_training_seed")
    seeds = result.get("training_seeds")
    name = f"{result['controller']} (seeds {', '.join(map(str, seeds))})" if seeds else result["controller"]
    cells = [result["robot"], result["goal_distribution"], name,
             f"{s['success_rate']:.3f} [{s['success_low']:.3f}, {s['success_high']:.3f}]"]
    if spread_column:
        cells.append(f"{spread['mean']:.3f} [{spread['min']:.3f}, {spread['max']:.3f}]" if spread else "-")
    cells += [f"{s['reached_rate']:.3f}", f"{s['time_to_reach_median']:.2f}", f"{s['dither_sign_changes']:.3f}"]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> None:
    cfg = tyro.cli(TableConfig, args=argv)
    rows = [parse_row(r) for r in cfg.rows] + [row for grid in cfg.grids for row in grid_rows(grid)]
    if not rows:
        raise SystemExit("error: no rows: give --rows and/or --grids")
    if unknown := sorted(set(cfg.anchors) - {"DLS", "mink"}):
        raise SystemExit(f"error: --anchors {unknown}: not DLS or mink")
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.robot, row.distribution), []).append(row)
    spread_column = any(len(row.models) > 1 for row in rows)
    header = ["robot", "goals", "controller", "held success [95% CI]",
              *(["held per training seed: mean [min, max]"] if spread_column else []), "reached",
              "time to reach (s)", "dithering (sign changes/joint/s)"]
    results, lines = [], ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (robot, distribution), group in groups.items():
        controllers = {row: row_controllers(row) for row in group}
        anchor_env = replace(controllers[group[0]][0][1], planned=False)
        if apart := [row.name for row, pairs in controllers.items() for _, env in pairs
                     if goal_set_config(env) != goal_set_config(anchor_env)]:
            raise SystemExit(f"error: {robot} {distribution}: {sorted(set(apart))} trained on other goal sets or "
                             f"tolerance than {group[0].name} ({', '.join(GOAL_SET_FIELDS)}): not one table")
        anchors = {"DLS": dls_controller, "mink": mink_controller}
        evaluated = [(row.name, pairs, row.training_seeds) for row, pairs in controllers.items()]
        evaluated += [(name, [(anchors[name](anchor_env), anchor_env)], ()) for name in cfg.anchors]
        for name, pairs, training_seeds in evaluated:
            result = {"robot": robot, "goal_distribution": distribution,
                      **evaluate_row(name, pairs, cfg, training_seeds)}
            results.append(result)
            lines.append(table_line(result, spread_column))
            print(lines[-1], flush=True)
    notes = [f"{grid.name}: {json.loads((grid / 'grid.json').read_text())['budget_steps']} env steps per run; "
             "each finished cell's last policy.onnx." for grid in cfg.grids]
    if spread_column:
        notes.append(f"Held success: pooled over training seeds x {len(cfg.seeds)} test seeds x {cfg.goal_sets} goal "
                     "sets, 95% Wilson interval (it does not hold the spread between training seeds); per training "
                     "seed: each seed's held success over the test seeds, mean [min, max]. Reached, time to reach "
                     "(median over held sets) and dithering: means over the row's evaluations.")
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "results.json").write_text(strict_json(results, indent=2))
    (cfg.out / "table.md").write_text("\n".join(lines) + "\n" + "".join(f"\n{note}\n" for note in notes))


if __name__ == "__main__":
    main()
