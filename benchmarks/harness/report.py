"""A grid's report: results.json and results.csv (every aggregate), table.md (IQM [95% CI] per method) and
curves per task set (IQM line and CI band over env steps), and the README block that shows the table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from mtpolicy.integrity import strict_json
from benchmarks.harness.grid import Cell, GridSpec, replace_block
from benchmarks.harness.registry import task_set_metrics
from benchmarks.harness.stats import aggregate, curve_bands, task_names
from mtpolicy_training.envs.taskset import TaskSetMetrics


def markdown_table(rows: list[dict]) -> str:
    """Methods as rows, their number of runs, then (metric, task) as columns, cells ``IQM [low, high]``."""
    columns = list(dict.fromkeys((r["metric"], r["task"]) for r in rows))
    cells: dict[str, dict] = {}
    runs: dict[str, int] = {}
    for r in rows:
        runs[r["method"]] = r["runs"]
        cells.setdefault(r["method"], {})[(r["metric"], r["task"])] = f"{r['iqm']:.3f} [{r['ci_low']:.3f}, " \
                                                                     f"{r['ci_high']:.3f}]"
    header = ["method", "runs"] + [f"{m} {t}".strip() if t != "all" else f"{m} (all tasks)" for m, t in columns]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join([method, str(runs[method])] + [c.get(col, "-") for col in columns]) + " |"
              for method, c in cells.items()]
    return "\n".join(lines)


def read_curves(run_dir: Path) -> dict[str, np.ndarray]:
    """``step`` and every ``eval/`` column of a run's metrics.csv, over the rows that have an evaluation."""
    with (run_dir / "metrics.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if any(r[k] for k in r if k.startswith("eval/"))]
    keys = [k for k in rows[0] if k == "step" or k.startswith("eval/")]
    return {k: np.array([float(r[k]) if r[k] else np.nan for r in rows]) for k in keys}


def plot_curves(path: Path, title: str, curves: dict[str, list[dict[str, np.ndarray]]], metrics: TaskSetMetrics,
                tasks: list[str], reps: int) -> None:
    """One panel per headline metric, the per-task metric over all tasks and each task: every method's IQM
    over its runs at each evaluation's env step, with the CI band (on the panels of the tasks it was evaluated on;
    "all tasks": its own)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter, MaxNLocator

    per_task = metrics.per_task_metric
    panels = [(m, [f"eval/{m}"]) for m in metrics.headline_metrics]
    panels += [(f"{per_task} (all tasks)", [f"eval/{per_task}_{t}" for t in tasks])]
    panels += [(f"{per_task} {t}", [f"eval/{per_task}_{t}"]) for t in tasks]
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows + 0.4), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for method, runs in curves.items():
        rng = np.random.default_rng(0)
        for ax, (label, keys) in zip(axes.flat, panels):
            keys = [k for k in keys if all(k in r for r in runs)]
            if not keys:
                continue
            steps, (mid, low, high) = curve_bands(runs, keys, reps, rng)
            ax.plot(steps, mid, label=method)
            ax.fill_between(steps, low, high, alpha=0.2)
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("env steps")
            ax.xaxis.set_major_locator(MaxNLocator(5))  # 100k, 1M: full numbers ran into each other
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"{title}: IQM and 95% stratified-bootstrap CI over seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def method_grids(spec: GridSpec, task_set: str) -> dict[str, Path]:
    """Method -> the grid folder holding its cells on ``task_set``: this grid's methods, then those of
    ``spec.compare_with``."""
    sources = {m: spec.grid_dir for m in spec.methods}
    for other in spec.compare_with:
        other_dir = spec.results_root / other
        for method in sorted(p.parent.name for p in (other_dir / "runs").glob(f"*/{task_set}")):
            if method in sources:
                raise ValueError(f"compare_with: method {method!r} is in {sources[method]} and in {other_dir}")
            sources[method] = other_dir
    return sources


def summarize(spec: GridSpec) -> str:
    """Aggregate the grid's finished cells (and compared grids') into results.json, results.csv, table.md and
    curves PNGs; returns table.md. A method's rows take its finished seeds; the table names the cells not finished
    yet, so a grid filled over several sessions reports what it has."""
    grid_dir = spec.grid_dir
    all_cells: list[dict] = []
    all_aggregates: list[dict] = []
    all_unfinished: list[dict] = []
    results = {"grid": spec.describe(), "command": spec.command(), "cells": all_cells, "aggregates": all_aggregates,
               "unfinished": all_unfinished}
    sections = []
    for task_set in spec.task_set:
        metrics = task_set_metrics(task_set)
        cells, unfinished = {}, {}
        for m, source in method_grids(spec, task_set).items():
            runs = [(s, Cell(m, task_set, s).dir(source)) for s in spec.seed]
            unfinished[m] = [s for s, d in runs if not (d / "cell.json").is_file()]
            if finished := [(s, d) for s, d in runs if s not in unfinished[m]]:
                cells[m] = finished
        if not cells:
            raise RuntimeError(f"{grid_dir}: no finished cell on {task_set}")
        finals = {m: [json.loads((d / "eval.json").read_text()) for _, d in runs] for m, runs in cells.items()}
        all_cells += [{"method": m, "task_set": task_set, "seed": s, "eval": e}
                      for m, runs in cells.items() for (s, _), e in zip(runs, finals[m])]
        all_unfinished += [{"method": m, "task_set": task_set, "seed": s}
                           for m, seeds in unfinished.items() for s in seeds]
        rows = [{"task_set": task_set, **r} for r in aggregate(finals, metrics, spec.bootstrap_reps)]
        all_aggregates += rows
        tasks = list(dict.fromkeys(t for runs in finals.values() for e in runs
                                   for t in task_names(e, metrics.per_task_metric)))
        curves = {m: [read_curves(d) for _, d in runs] for m, runs in cells.items()}
        plot_curves(grid_dir / f"curves_{task_set}.png", f"{spec.name} / {task_set}", curves, metrics, tasks,
                    max(spec.bootstrap_reps // 5, 1))
        compared = [m for m in finals if m not in spec.methods]
        missing = "; ".join(f"{m} seed {', '.join(map(str, seeds))}" for m, seeds in unfinished.items() if seeds)
        n_done, n_unfinished = sum(map(len, cells.values())), sum(map(len, unfinished.values()))
        sections.append(f"**{task_set}** ({spec.budget_steps} env steps per run; IQM [95% stratified-bootstrap "
                        f"CI] over seeds {', '.join(map(str, spec.seed))}; \"all tasks\": over seeds x tasks"
                        + (f"; {', '.join(compared)}: the cells of {', '.join(spec.compare_with)}" if compared else "")
                        + (f"; **{n_done} of {n_done + n_unfinished} cells finished**, not yet: {missing}"
                           if n_unfinished else "")
                        + f")\n\n{markdown_table(rows)}")
    table = "\n\n".join(sections) + f"\n\nReproduce: `{spec.command()}`\n"
    (grid_dir / "table.md").write_text(table)
    (grid_dir / "results.json").write_text(strict_json(results, indent=2))
    with (grid_dir / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, list(all_aggregates[0]))
        writer.writeheader()
        writer.writerows(all_aggregates)
    if spec.readme is not None:
        spec.readme.write_text(replace_block(spec.readme.read_text(), spec.name, table))
    return table
