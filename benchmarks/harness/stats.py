"""Statistics of a grid's results (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice", as
rliable computes them).

The IQM of a (runs x tasks) score matrix is the 25% trimmed mean of all its
entries (``floor(n/4)`` dropped at each end; with fewer than 4 entries it is
the mean). The 95% interval is the percentile interval of a stratified
bootstrap: each resample draws, for each task separately, as many runs as
there are with replacement. "Per task" rows have one task (runs = seeds);
"all tasks" rows use the seeds x tasks matrix of the task set's per-task
metric.
"""

from __future__ import annotations

import functools

import numpy as np

from mtpolicy_training.envs.taskset import TaskSetMetrics


def iqm_rows(x: np.ndarray) -> np.ndarray:
    """IQM of each row of (R, n): mean of the sorted row without its ``floor(n/4)`` lowest and highest entries."""
    n = x.shape[1]
    cut = n // 4
    return np.sort(x, axis=1)[:, cut:n - cut].mean(axis=1)


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all entries of a (runs x tasks) score matrix (rliable's ``aggregate_iqm``)."""
    return float(iqm_rows(np.asarray(scores, dtype=float).reshape(1, -1))[0])


def stratified_bootstrap_iqms(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """IQMs of ``reps`` stratified resamples of a (runs x tasks) matrix: runs redrawn per task, with replacement."""
    scores = np.asarray(scores, dtype=float)
    runs, tasks = scores.shape
    idx = rng.integers(0, runs, size=(reps, runs, tasks))
    return iqm_rows(scores[idx, np.arange(tasks)].reshape(reps, -1))


def iqm_with_ci(scores: np.ndarray, reps: int, rng: np.random.Generator,
                confidence: float = 0.95) -> tuple[float, float, float]:
    """IQM and the percentile interval of its stratified bootstrap: (iqm, low, high)."""
    boot = stratified_bootstrap_iqms(scores, reps, rng)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(boot, [tail, 100 - tail])
    return iqm(scores), float(low), float(high)


def task_names(evaluation: dict[str, float], per_task_metric: str) -> list[str]:
    """Tasks with a ``<per_task_metric>_<task>`` entry (a ``<per_task_metric>_std_<task>`` spread is not a task)."""
    prefix = per_task_metric + "_"
    return [k.removeprefix(prefix) for k in evaluation if k.startswith(prefix) and not k.startswith(prefix + "std_")]


def score_matrices(runs: list[dict[str, float]], metrics: TaskSetMetrics,
                   tasks: list[str]) -> dict[tuple[str, str], np.ndarray]:
    """(metric, task) -> (runs x tasks) matrix: headline metrics (task ""), all tasks ("all"), each task."""
    per_task = metrics.per_task_metric
    out = {(m, ""): np.array([[r[m]] for r in runs], dtype=float) for m in metrics.headline_metrics}
    out[(per_task, "all")] = np.array([[r[f"{per_task}_{t}"] for t in tasks] for r in runs], dtype=float)
    out.update({(per_task, t): np.array([[r[f"{per_task}_{t}"]] for r in runs], dtype=float) for t in tasks})
    return out


def aggregate(finals: dict[str, list[dict[str, float]]], metrics: TaskSetMetrics, reps: int,
              seed: int = 0) -> list[dict]:
    """One row per (method, metric, task): IQM and 95% CI of a task set's final evaluations (one dict per run), on
    the tasks each method was evaluated on (a fine-tuning run: its pair of the set's tasks)."""
    rows = []
    for method, runs in finals.items():
        rng = np.random.default_rng(seed)
        tasks = task_names(runs[0], metrics.per_task_metric)
        for (metric, task), scores in score_matrices(runs, metrics, tasks).items():
            value, low, high = iqm_with_ci(scores, reps, rng)
            rows.append({"method": method, "metric": metric, "task": task, "iqm": value, "ci_low": low,
                         "ci_high": high, "runs": len(runs)})
    return rows




def curve_bands(runs: list[dict[str, np.ndarray]], keys: list[str], reps: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Steps common to all runs, and (3, steps) IQM / CI low / CI high over the (runs x keys) matrix at each step."""
    steps = functools.reduce(np.intersect1d, [r["step"] for r in runs])
    values = np.stack([np.stack([r[k][np.isin(r["step"], steps)] for k in keys]) for r in runs])  # runs, keys, steps
    return steps, np.array([iqm_with_ci(values[:, :, j], reps, rng) for j in range(len(steps))]).T
