"""The dynamic optimum against the velocity bound and the controllers' time to settle, on validation goal sets.

For a shipped policy's reach task (optionally on another goal distribution): the dynamic optimum of each goal set
(``envs/dynamic_optimum.py``, default config) beside its velocity bound N*, the CPU of its search, and for the
policy, DLS, mink and the closed-loop time-optimal controller on the same goal sets: held sets, settle and enter
steps, settle / optimum (median, max over the held sets) and on how many sets the controller settles in fewer
periods than the optimum (beats it). ``--trace I ...``: for those goal sets, each period's largest end-effector error
and normalized command of the policy and of the optimum's sequence (then its tail), side by side.

    python -m benchmarks.dynamic_optimum models/humanoid_reach.onnx --episodes 12
    python -m benchmarks.dynamic_optimum models/gr1_reach.onnx --trace 1 --cache-dir benchmarks/results/dynamic-optimum
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mtpolicy.vocabulary import Parser
from mtpolicy_training.algos.dagger import DaggerConfig
from mtpolicy_training.envs.dynamic_optimum import OptimumTable, optimum_table, replay_controller
from mtpolicy_training.envs.reach import GOAL_DISTRIBUTIONS, ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import (Controller, dls_controller, evaluate_reach, mink_controller,
                                                     onnx_controller)
from mtpolicy_training.envs.seeds import VALIDATION_SEED, VALIDATION_SEEDS
from mtpolicy_training.envs.time_optimal import TimeOptimalController


def main(argv: list[str] | None = None) -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                    prog="python -m benchmarks.dynamic_optimum")
    parser.add_argument("model", type=Path, help="exported policy (.onnx): its reach task and a controller")
    parser.add_word("seeds", type=int, default=VALIDATION_SEED, choices=VALIDATION_SEEDS,
                    help="validation seed (the test seeds only report)")
    parser.add_word("episode count", type=int, default=10, help="goal sets")
    parser.add_word("goal distribution", choices=GOAL_DISTRIBUTIONS, help="default: the policy's")
    parser.add_argument("--cache-dir", type=Path, help="directory of cached optimum tables")
    parser.add_argument("--trace", type=int, nargs="+", default=[], metavar="SET",
                        help="goal sets (0-based) whose errors and commands are printed period by period")
    args = parser.parse_args(argv)
    if bad := [i for i in args.trace if not 0 <= i < args.episodes]:
        parser.error(f"--trace: no goal set {bad[0]} among {args.episodes}")
    policy, policy_env = onnx_controller(args.model)
    policy_env = replace(policy_env, goal_distribution=args.goal_distribution or policy_env.goal_distribution)
    env = replace(policy_env, planned=False)  # the optimum's and the classical controllers' (no planner observation)
    n, dt = args.episodes, env.control_period
    start = time.perf_counter()
    table = optimum_table(env, n, args.seed, cache_dir=args.cache_dir)
    print(f"{env.robot} {env.goal_distribution}, seed {args.seed}, {n} sets: optimum {table.periods.tolist()}; "
          f"N* {table.bound_periods.tolist()}; CPU per set {np.round(table.cpu_seconds, 1).tolist()} s "
          f"({time.perf_counter() - start:.0f} s wall)", flush=True)
    controllers: dict[str, tuple[Controller, ReachConfig]] = {
        "policy": (policy, policy_env), "dls": (dls_controller(env), env), "mink": (mink_controller(env), env),
        "time-optimal closed loop": (TimeOptimalController(ReachVectorEnv(1, env), DaggerConfig().teacher_gain), env)}
    timed = table.bound_periods > 0
    traces: dict[str, list] = {"policy": [], "optimum": []}
    for name, (controller, controller_env) in controllers.items():
        hook = None if name != "policy" else (lambda t, e, a, info: traces["policy"].append((info["errors"], a)))
        per_set = evaluate_reach(controller, controller_env, n, args.seed, per_set=True, on_step=hook)["per_set"]
        settle, enter = np.round(per_set["time_to_settle"] / dt), np.round(per_set["time_to_reach"] / dt)
        ok = per_set["held"] & timed & (table.periods > 0)
        ratio = settle[ok] / table.periods[ok]
        beats = ok & (settle < table.periods)
        print(f"  {name}: held {per_set['held'].sum()}/{n}; settle {settle.tolist()}; enter {enter.tolist()}; "
              f"settle / optimum median {np.median(ratio) if len(ratio) else np.nan:.2f} max "
              f"{ratio.max() if len(ratio) else np.nan:.2f}; beats the optimum on {beats.sum()}/{timed.sum()}",
              flush=True)
    if args.trace:
        evaluate_reach(replay_controller(table, env), env, n, args.seed,
                       on_step=lambda t, e, a, info: traces["optimum"].append((info["errors"], a)))
        print_traces(traces, args.trace, table)


def print_traces(traces: dict[str, list], sets: list[int], table: OptimumTable) -> None:
    """Per goal set, for the optimum's periods and 3 more, each trace's largest end-effector error (mm) and
    normalized command."""
    for i in sets:
        print(f"set {i}: optimum {table.periods[i]}, N* {table.bound_periods[i]}")
        for t in range(min(max(table.periods[i], 0) + 3, len(traces["policy"]))):
            for name, trace in traces.items():
                errors, command = trace[t]
                print(f"  {t + 1:2d} {name:8s} {1000 * errors[i].max():7.1f} mm  "
                      + " ".join(f"{c:+.2f}" for c in command[i]))


if __name__ == "__main__":
    main()
