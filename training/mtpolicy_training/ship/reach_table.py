"""Policies against the classical controllers on the test seeds: the README's reach table.

For each (robot, goal distribution) of the rows it runs the damped-least-squares
baseline and mink's differential IK once, and each row's exported policy,
through ``reach_evaluation.evaluate_reach`` on the same goal sets: ``goal_sets`` per seed of
``reach_evaluation.TEST_SEEDS`` (never used for a choice). Held success is pooled over
the seeds with a 95 % Wilson interval; time to reach is the median over the
held goal sets; dithering the mean sign changes per joint in the final second.

    python -m mtpolicy_training.ship.reach_table \
        --rows planar8:local:planar8_reach planar8:workspace:planar8_reach_workspace \
               humanoid:local:humanoid_reach humanoid:workspace:humanoid_reach_workspace

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
from mtpolicy_training.envs.reach_evaluation import (TEST_SEEDS, dls_controller, evaluate_reach, mink_controller,
                                                     onnx_controller, wilson_interval)


@dataclass
class TableConfig:
    """Which policies to hold against DLS and mink, on which goal sets."""

    rows: tuple[str, ...]
    """robot:distribution:model triples (model: a shipped name or an ONNX path)."""
    goal_sets: int = 500
    """Goal sets per seed."""
    seeds: tuple[int, ...] = TEST_SEEDS
    """Seeds of the goal sets (the test seeds: report only)."""
    out: Path = Path("benchmarks/results/reach-table")
    """Folder of table.md and results.json."""


def summary(per_seed: list[dict[str, float]], goal_sets: int) -> dict[str, float]:
    """Pooled held success with its interval, and the seeds' means of the other figures."""
    held = sum(r["success_rate"] * goal_sets for r in per_seed)
    low, high = wilson_interval(held, goal_sets * len(per_seed))
    mean = {k: float(np.nanmean([r[k] for r in per_seed])) for k in per_seed[0]}
    return {**mean, "success_rate": held / (goal_sets * len(per_seed)), "success_low": low, "success_high": high}


def main(argv: list[str] | None = None) -> None:
    cfg = tyro.cli(TableConfig, args=argv)
    groups: dict[tuple[str, str], list[str]] = {}
    for row in cfg.rows:
        robot, distribution, model = row.split(":")
        groups.setdefault((robot, distribution), []).append(model)
    results, lines = [], ["| robot | goals | controller | held success [95% CI] | reached | time to reach (s) | "
                          "dithering (sign changes/joint/s) |", "|---|---|---|---|---|---|---|"]
    for (robot, distribution), models in groups.items():
        controllers = {}
        for model in models:
            policy, env = onnx_controller(resolve_model_path(model))
            if env.robot != robot:
                raise SystemExit(f"error: model {model} is for robot {env.robot!r}, not {robot!r}")
            controllers[model] = (policy, replace(env, goal_distribution=distribution))
        anchor_env = replace(next(iter(controllers.values()))[1], planned=False)
        controllers |= {"DLS": (dls_controller(anchor_env), anchor_env),
                        "mink": (mink_controller(anchor_env), anchor_env)}
        for name, (controller, env) in controllers.items():
            start = time.perf_counter()
            per_seed = [evaluate_reach(controller, env, cfg.goal_sets, seed) for seed in cfg.seeds]
            s = summary(per_seed, cfg.goal_sets)
            results.append({"robot": robot, "goal_distribution": distribution, "controller": name,
                            "seeds": list(cfg.seeds), "goal_sets_per_seed": cfg.goal_sets, "summary": s,
                            "per_seed": per_seed, "seconds": time.perf_counter() - start})
            lines.append(f"| {robot} | {distribution} | {name} | {s['success_rate']:.3f} [{s['success_low']:.3f}, "
                         f"{s['success_high']:.3f}] | {s['reached_rate']:.3f} | {s['time_to_reach_median']:.2f} | "
                         f"{s['dither_sign_changes']:.3f} |")
            print(lines[-1], flush=True)
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "results.json").write_text(strict_json(results, indent=2))
    (cfg.out / "table.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
