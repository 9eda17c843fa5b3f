"""How often the ``ik`` planner misses a reachable goal set, without and with ``PlannerConfig.fallback_restarts``.

Goal sets made by configurations drawn within the joint limits (so each is reachable), each planned from a few
starts drawn the same way; a miss is a plan whose largest end-effector error is at or above the planner's
tolerance. Prints misses, their largest error and the planning time (mean, largest) side by side, and the ratios.

    python -m benchmarks.planner_fallback --robot planar8 --episodes 200 --starts 4 --seed 10 --fallback 96
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mtpolicy.kinematics import Kinematics
from mtpolicy.planner import GoalConfigurationPlanner, PlannerConfig
from mtpolicy.reach_task import sample_configurations
from mtpolicy.robots import load_robot
from mtpolicy.vocabulary import Parser


def misses(planner: GoalConfigurationPlanner, starts: np.ndarray, goal_sets: np.ndarray) -> dict[str, float]:
    """Plans of every goal set (G, n_ee, 3) from every start (S, n_joints): misses, largest error, seconds."""
    worst, seconds = [], []
    for goals in goal_sets:
        for q0 in starts:
            begin = time.perf_counter()
            worst.append(planner.plan(q0, goals)[1])
            seconds.append(time.perf_counter() - begin)
    missed = np.array(worst) >= planner.config.tolerance
    return {"plans": len(worst), "misses": int(missed.sum()), "largest_miss_mm": 1e3 * max(worst),
            "mean_ms": 1e3 * float(np.mean(seconds)), "max_ms": 1e3 * max(seconds)}


def main(argv: list[str] | None = None) -> None:
    parser = Parser(prog="python -m benchmarks.planner_fallback", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_word("robot", default="planar8")
    parser.add_word("episode count", type=int, default=200, help="goal sets")
    parser.add_argument("--starts", type=int, default=4, help="starts each goal set is planned from")
    parser.add_word("seeds", type=int, default=10)
    parser.add_argument("--fallback", type=int, default=96, help="fallback_restarts of the compared planner")
    args = parser.parse_args(argv)
    kin = Kinematics(load_robot(args.robot))
    rng = np.random.default_rng(args.seed)
    goal_sets = kin.ee_positions_batch(sample_configurations(kin.spec, rng, args.episodes))
    starts = sample_configurations(kin.spec, rng, args.starts)
    rows = {n: misses(GoalConfigurationPlanner(kin, PlannerConfig(fallback_restarts=n)), starts, goal_sets)
            for n in (0, args.fallback)}
    print(f"{'fallback_restarts':>18} " + " ".join(f"{k:>15}" for k in rows[0]))
    for n, row in rows.items():
        print(f"{n:>18} " + " ".join(f"{v:>15.1f}" for v in row.values()))
    print(f"{'ratio':>18} " + " ".join(f"{rows[args.fallback][k] / rows[0][k]:>15.2f}" if rows[0][k] else
                                        f"{'-':>15}" for k in rows[0]))


if __name__ == "__main__":
    main()
