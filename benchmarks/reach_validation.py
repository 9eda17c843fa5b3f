"""Exported reach policies side by side on validation goal sets, with the time-optimal bound.

For each policy and seed: held success, time to reach (median and mean, s), its ratio to the bound of the same goal set
(median and p90, ``envs/time_optimal.py``) and the share of goal sets whose end effectors left the tolerance after
first entering it (``evaluate_reach``'s ``left_after_entering_rate``) and the ratio to the bound of the time from
which they stay within it (``settle_ratio``), and each end effector's final error (m, median and p90:
``error_median_<ee>``, ``error_p90_<ee>``) and the share of goal sets on which a sampled state (one per control period)
put the robot into self-penetration (``self_collision_rate``, ``kinematics.self_collisions``); with ``--teacher``,
the same for the classical teacher each DAgger policy learned from (``ship/reach_table.teacher_controller``: the
teacher of this checkout's code, with the policy's recorded settings); with ``--collision-guard``, the same for each
of those behind the controller node's collision guard (``reach_evaluation.guarded_controller``); with
``--goal-distribution``, on that distribution of the robot's goal sets instead of each policy's own. The defaults are a
DAgger run's own
validations: 200 goal sets of ``VALIDATION_SEED``, 500 of ``HELD_OUT_SEED``.

    python -m benchmarks.reach_validation models/panda_reach.onnx runs/panda/sync-ramp/policy.onnx \\
        --bound-cache runs/panda/sync-ramp/bound
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from mtpolicy.kinematics import self_collisions
from mtpolicy.vocabulary import Parser
from mtpolicy_training.envs.reach import GOAL_DISTRIBUTIONS, ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import Controller, evaluate_reach, guarded_controller, onnx_controller
from mtpolicy_training.envs.seeds import HELD_OUT_SEED, VALIDATION_SEED, VALIDATION_SEEDS
from mtpolicy_training.envs.time_optimal import bound_table
from mtpolicy_training.ship.reach_table import Row, goal_set_config, teacher_controller

SHOWN = ("success_rate", "time_to_reach_median", "time_to_reach_mean", "time_ratio_median", "time_ratio_p90",
         "left_after_entering_rate", "settle_ratio_median", "settle_ratio_p90")


def controllers(model: Path, teacher: bool, guard: bool, clearance: float = 0.0, distribution: str | None = None) \
        -> dict[str, tuple[Controller, ReachConfig]]:
    """The policy ``model`` on the reach task it was trained on (or its robot's ``distribution`` of goal sets) and
    with ``teacher`` its DAgger teacher, each with ``guard`` also behind the collision guard (its ``clearance``, m)."""
    policy, env = onnx_controller(model)
    env = replace(env, goal_distribution=distribution or env.goal_distribution)
    out = {str(model): (policy, env)}
    if guard:
        out[f"{model} guarded"] = (guarded_controller(policy, env, clearance), env)
    row = Row(env.robot, env.goal_distribution, str(model), (str(model),))
    if teacher and (taught := teacher_controller(row, env)) is not None:
        label, controller, planned = taught
        out[label] = (controller, planned)
        # behind the guard, a teacher of its own: the time-optimal one warm-starts from its last goal sets' targets
        if guard and (again := teacher_controller(row, env)) is not None:
            out[f"{label} guarded"] = (guarded_controller(again[1], planned, clearance), planned)
    return out


class Bounds:
    """The time-optimal bound of each (goal sets, seed, count), solved once: a policy, its teacher and the other
    policies of the same task share it."""

    def __init__(self, cache_dir: Path | None):
        self.cache_dir = cache_dir
        self.tables: dict[tuple[str, int, int], np.ndarray] = {}

    def __call__(self, env: ReachConfig, seed: int, goal_sets: int) -> np.ndarray:
        key = (json.dumps(goal_set_config(env), sort_keys=True), seed, goal_sets)
        if key not in self.tables:
            self.tables[key] = bound_table(env, goal_sets, seed, cache_dir=self.cache_dir).bound_seconds
        return self.tables[key]


def validate(controller: Controller, env: ReachConfig, seed: int, goal_sets: int, bounds: Bounds) -> dict[str, float]:
    """The figures of ``SHOWN``, the final errors and ``self_collision_rate`` for ``controller`` on ``goal_sets``
    goal sets of ``seed``."""
    penetrated = np.zeros(goal_sets, dtype=bool)

    def record_penetration(step: int, sim: ReachVectorEnv, action: np.ndarray, info: dict) -> None:
        penetrated[:] |= self_collisions(sim.kin, sim.joint_positions())

    metrics = evaluate_reach(controller, env, goal_sets, seed, bound=bounds(env, seed, goal_sets),
                             on_step=record_penetration)
    return {k: round(v, 6 if k.startswith("error_") else 4) for k, v in metrics.items()
            if k in SHOWN or k.startswith("error_")} | {"self_collision_rate": round(float(penetrated.mean()), 4)}


def main(argv: list[str] | None = None) -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                    prog="python -m benchmarks.reach_validation")
    parser.add_argument("models", nargs="+", type=Path, help="exported policies (.onnx)")
    parser.add_word("seeds", type=int, nargs="+", default=[VALIDATION_SEED, HELD_OUT_SEED], choices=VALIDATION_SEEDS,
                    help="validation seeds (the test seeds only report)")
    parser.add_word("episode count", type=int, nargs="+", default=[200, 500], help="goal sets per seed, in its order")
    parser.add_argument("--bound-cache", type=Path, help="directory of cached bound tables (a run's bound/)")
    parser.add_argument("--teacher", action="store_true", help="also each DAgger policy's classical teacher")
    parser.add_word("goal distribution", choices=GOAL_DISTRIBUTIONS, help="default: each policy's own")
    parser.add_argument("--collision-guard", action="store_true",
                        help="also each policy (and teacher) behind the controller node's collision guard")
    parser.add_argument("--collision-clearance", type=float, default=0.0,
                        help="the guard's clearance (m; the controller's collision_clearance): at least the robot's")
    args = parser.parse_args(argv)
    if len(args.episodes) != len(args.seed):
        parser.error("--episodes needs one count per --seed")
    rows = {name: row for model in args.models
            for name, row in controllers(model, args.teacher, args.collision_guard, args.collision_clearance,
                                         args.goal_distribution).items()}
    bounds = Bounds(args.bound_cache)
    print(json.dumps({name: {str(seed): validate(controller, env, seed, n, bounds)
                             for seed, n in zip(args.seed, args.episodes)}
                      for name, (controller, env) in rows.items()}, indent=2))


if __name__ == "__main__":
    main()
