"""Policies with late commands: how much of a loaded control loop's lateness a policy's law survives.

The reach task with ``LateTicks``: on a fraction ``--rate`` of the control steps, a set's new command takes effect
``--delay`` s late and the previous one acts meanwhile, as when the controller's tick comes late and the robot's
servos hold the last command. Each policy on the same validation goal sets for every delay: held (the evaluator's
final second), the sets that left the tolerance after entering it (what the demo over ROS 2 counts as not held) and
the time to settle over the time-optimal bound (median, p90); each delay's row beside the policy's own without late
commands (ratio).

    python -m benchmarks.late_ticks models/humanoid_reach.onnx --episodes 200 --rate 0.2 --delay 0.005 0.01 0.015 \
        --cache-dir runs/bound
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mtpolicy.vocabulary import Parser
from mtpolicy_training.envs.reach import LateTicks
from mtpolicy_training.envs.reach_evaluation import Protocol, evaluate_reach, onnx_controller
from mtpolicy_training.envs.seeds import VALIDATION_SEED, VALIDATION_SEEDS
from mtpolicy_training.envs.time_optimal import bound_table

FIGURES = ("success_rate", "left_after_entering_rate", "settle_ratio_median", "settle_ratio_p90")


def figures(model: Path, episodes: int, seed: int, late_ticks: LateTicks, cache_dir: Path | None) -> dict[str, float]:
    """``FIGURES`` of ``model`` on ``episodes`` goal sets of ``seed`` with ``late_ticks``."""
    controller, config = onnx_controller(model)
    bound = bound_table(config, episodes, seed, cache_dir=cache_dir).bound_seconds
    metrics = evaluate_reach(controller, config, episodes, seed, Protocol(late_ticks=late_ticks), bound)
    return {k: float(metrics[k]) for k in FIGURES}


def main(argv: list[str] | None = None) -> None:
    parser = Parser(prog="python -m benchmarks.late_ticks", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+", help="exported reach policies (.onnx)")
    parser.add_word("seeds", type=int, default=VALIDATION_SEED, choices=VALIDATION_SEEDS,
                    help="validation seed (the test seeds only report)")
    parser.add_word("episode count", type=int, default=200, help="goal sets")
    parser.add_argument("--rate", type=float, default=0.2, help="fraction of the control steps that come late")
    parser.add_argument("--delay", type=float, nargs="+", default=[0.005, 0.01, 0.015], help="how late (s)")
    parser.add_argument("--cache-dir", type=Path, help="directory of cached time-optimal bound tables")
    args = parser.parse_args(argv)
    print(f"{'model':32s} {'delay':>8s} " + " ".join(f"{k:>26s}" for k in FIGURES))
    for model in args.models:
        try:
            baseline = figures(model, args.episodes, args.seed, LateTicks(), args.cache_dir)
            rows = [(0.0, baseline)] + [(delay, figures(model, args.episodes, args.seed,
                                                        LateTicks(args.rate, delay, seed=args.seed), args.cache_dir))
                                        for delay in args.delay]
        except (OSError, ValueError) as e:  # an unreadable model, a delay the task cannot take
            parser.error(f"{model}: {e}")
        for delay, row in rows:
            cells = [f"{row[k]:.3f} ({row[k] / baseline[k]:.2f}x)" if baseline[k] else f"{row[k]:.3f}"
                     for k in FIGURES]
            print(f"{model.name:32s} {1e3 * delay:6.0f}ms " + " ".join(f"{c:>26s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
