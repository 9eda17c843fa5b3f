"""The figures of a reach table's rows, pooled over goal sets and seeds: held success with its interval, time to
reach and its ratios to the time-optimal bound (entering and settling) and to the dynamic optimum; the bound and the
optimum as rows (``ship/reach_table.py``)."""

from __future__ import annotations

import math

import numpy as np

from mtpolicy_training.envs.dynamic_optimum import OptimumTable
from mtpolicy_training.envs.reach_evaluation import wilson_interval


def pooled_times(per_set: dict[str, np.ndarray]) -> dict[str, float]:
    """Time to reach (median), its ratio to the bound and the time to settle's (median, p90) over the held goal
    sets of ``per_set`` (``evaluate_reach(..., per_set=True)['per_set']``, or several concatenated; a row without
    ``settle_ratio``, the bound's or the optimum's, settles when it reaches)."""
    held = per_set["held"]
    times = per_set["time_to_reach"][held]
    out = {"time_to_reach_median": float(np.median(times)) if len(times) else math.nan}
    for name in ("time_ratio", "settle_ratio"):
        ratios = per_set.get(name, per_set["time_ratio"])[held]
        out |= percentiles(name, ratios[~np.isnan(ratios)])
    return out


def percentiles(name: str, values: np.ndarray) -> dict[str, float]:
    """``<name>_median`` and ``<name>_p90`` of ``values`` (NaN if empty)."""
    return {f"{name}_median": float(np.median(values)) if len(values) else math.nan,
            f"{name}_p90": float(np.percentile(values, 90)) if len(values) else math.nan}


def concatenated(per_sets: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-set figures of several evaluations as one set of arrays."""
    return {k: np.concatenate([p[k] for p in per_sets]) for k in per_sets[0]}


def summary(per_seed: list[dict], goal_sets: int) -> dict[str, float]:
    """Pooled held success with its interval; where the evaluations carry their ``per_set`` figures, time to
    reach and its and the time to settle's ratios to the bound over their held goal sets pooled (``pooled_times``);
    the evaluations' means of the other figures."""
    held = sum(r["success_rate"] * goal_sets for r in per_seed)
    low, high = wilson_interval(held, goal_sets * len(per_seed))
    figures = [{k: v for k, v in r.items() if k != "per_set"} for r in per_seed]
    mean = {k: float(np.nanmean([r[k] for r in figures])) for k in figures[0]}
    if all("per_set" in r for r in per_seed):
        mean |= pooled_times(concatenated([r["per_set"] for r in per_seed]))
    return {**mean, "success_rate": held / (goal_sets * len(per_seed)), "success_low": low, "success_high": high}


def bound_result(bounds: dict[int, np.ndarray], goal_sets: int) -> dict:
    """The bound as a row: on each goal set it solved, time to reach = the bound (ratio 1 where it is > 0)."""
    bound = np.concatenate([bounds[seed] for seed in bounds])
    solved = bound >= 0
    ratio = np.where(bound > 0, 1.0, math.nan)
    per_set = {"held": solved, "time_to_reach": np.where(solved, bound, math.nan), "time_ratio": ratio}
    return {"controller": "time-optimal bound", "seeds": list(bounds), "goal_sets_per_seed": goal_sets,
            "summary": {"solved_rate": float(solved.mean()), **pooled_times(per_set)},
            "per_set": {k: v.tolist() for k, v in per_set.items() if k != "time_ratio"}}


def optimum_result(optima: dict[int, OptimumTable], goal_sets: int) -> dict:
    """The dynamic optimum as a row: on each goal set it found, time to reach = its settle time, ratio to the
    velocity bound where that is > 0."""
    periods = np.concatenate([optima[seed].periods for seed in optima])
    found = periods >= 0
    bound = np.concatenate([optima[seed].bound_periods for seed in optima])
    per_set = {"held": found, "time_to_reach": np.concatenate([optima[seed].seconds for seed in optima]),
               "time_ratio": np.where(found & (bound > 0), periods / np.maximum(bound, 1), math.nan)}
    cpu = np.concatenate([optima[seed].cpu_seconds for seed in optima])
    return {"controller": "dynamic optimum", "seeds": list(optima), "goal_sets_per_seed": goal_sets,
            "summary": {"solved_rate": float(found.mean()), **pooled_times(per_set),
                        "cpu_seconds_median": float(np.median(cpu))},
            "per_set": {k: v.tolist() for k, v in per_set.items() if k != "time_ratio"}}


def settle_against(result: dict, per_seed: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """Per goal set of a row (controllers x seeds), its time to settle (s, NaN where not held) and the figure of
    ``per_seed`` (an array over each seed's goal sets) for that goal set; None for a row without settle times
    (read back from an earlier results.json)."""
    if "time_to_settle" not in result["per_set"]:
        return None
    settle = np.array(result["per_set"]["time_to_settle"], dtype=float)
    reference = np.concatenate([per_seed[seed] for seed in result["seeds"]])
    return settle, np.tile(reference, len(settle) // len(reference))


def against_optimum(result: dict, optima: dict[int, OptimumTable]) -> tuple[np.ndarray, np.ndarray] | None:
    """``settle_against`` the optimum: the row's settle step per goal set (NaN where not held) and the optimum's
    (periods, -1 where none was found)."""
    if (found := settle_against(result, {seed: table.periods for seed, table in optima.items()})) is None:
        return None
    settle, periods = found
    return np.round(settle / next(iter(optima.values())).key["control_period"]), periods


def beaten(result: dict, optima: dict[int, OptimumTable]) -> np.ndarray | None:
    """Per goal set of a row, whether it held and settled before the dynamic optimum (None: no settle times)."""
    if (found := against_optimum(result, optima)) is None:
        return None
    settle, periods = found
    return np.isfinite(settle) & (periods >= 0) & (np.nan_to_num(settle) < periods)


def settle_over_bound(result: dict, bounds: dict[int, np.ndarray]) -> dict[str, float]:
    """``settle_ratio_median`` and ``_p90``: time to settle / the bound (s per goal set of each seed) over the goal
    sets the row held where the bound is > 0, pooled over its evaluations (controllers x seeds); none for a row
    without settle times."""
    if (found := settle_against(result, bounds)) is None:
        return {}
    settle, bound = found
    timed = np.isfinite(settle) & (bound > 0)
    return percentiles("settle_ratio", settle[timed] / bound[timed])


def settle_over_optimum(result: dict, optima: dict[int, OptimumTable]) -> dict[str, float]:
    """``settle_optimum_median`` and ``_p90``: time to settle / the dynamic optimum over the goal sets the row
    held and the optimum has a time > 0 (none for a row without settle times)."""
    if (found := against_optimum(result, optima)) is None:
        return {}
    settle, periods = found
    both = np.isfinite(settle) & (periods > 0)
    return percentiles("settle_optimum", settle[both] / periods[both])
