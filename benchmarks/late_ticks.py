"""Policies with late commands: how much of a loaded control loop's lateness a policy's law survives.

The reach task with ``LateTicks``: on a fraction ``--rate`` of the control steps, a goal set's new command takes
effect ``--delay`` s late and the previous one acts meanwhile, as when the controller's tick comes late and the
robot's servos hold the last command. Judged as ``mtpolicy demo`` judges over ROS 2 (``demo_replay``), at every
physics step rather than every control step (a hand that passes through the tolerance and back within a period is
seen): held = every end effector within tolerance for ``SETTLE`` s after first reaching; with the time to reach
(median, p90). Beside it, held at the end as the evaluator judges (within tolerance for the last ``SETTLE`` s of the
protocol's episode, here at every physics step), so that a set the demo misses because the hand left the tolerance
and came back to stay is told from one it does not hold, and how far the sets that left went beyond the tolerance
(mm, p90). Each delay's row beside the policy's own without late commands (ratio).

    python -m benchmarks.late_ticks models/humanoid_reach.onnx --episodes 200 --rate 0.2 --delay 0.004 0.01 0.016
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.demo_replay import held_in_env
from mtpolicy.reach_task import SETTLE
from mtpolicy.vocabulary import Parser
from mtpolicy_training.envs.reach import LateTicks, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import Protocol, onnx_controller
from mtpolicy_training.envs.seeds import VALIDATION_SEED, VALIDATION_SEEDS


COLUMNS = {"held": ("held", True), "reach_median_s": ("reach median", True), "reach_p90_s": ("reach p90", True),
           "held_at_end": ("held at end", True), "left_beyond_mm_p90": ("left by (mm)", False)}
"""Each figure of ``figures``: its column's header, and whether its ratio to the one on time is printed beside it."""


def figures(model: Path, episodes: int, seed: int, late_ticks: LateTicks) -> dict[str, float]:
    """Held after reaching (every physics step), the time to reach (s, median and p90 over the held sets), held at
    the end, and the p90 of how far the sets reached and not held after reaching went beyond the tolerance (mm; 0:
    none) of ``model`` on ``episodes`` goal sets of ``seed`` with ``late_ticks``."""
    controller, config = onnx_controller(model)
    env = ReachVectorEnv(episodes, config, time_limit=False, late_ticks=late_ticks, peak_errors=True)
    obs, _ = env.reset(seed=seed)
    held = held_in_env(env, obs, controller, Protocol().steps(config.control_period)[0], SETTLE)
    seconds = (held["first"][held["held"]] + 1) * config.control_period
    left = (held["first"] >= 0) & ~held["held"]
    beyond = 1e3 * (held["peak"][left] - config.tolerance)
    return {"held": float(held["held"].mean()), "reach_median_s": float(np.median(seconds)),
            "reach_p90_s": float(np.percentile(seconds, 90)), "held_at_end": float(held["final"].mean()),
            "left_beyond_mm_p90": float(np.percentile(beyond, 90)) if left.any() else 0.0}


def cell(key: str, value: float, on_time: float) -> str:
    """A figure, beside its ratio to the one on time where ``COLUMNS`` asks for it."""
    if not COLUMNS[key][1]:
        return f"{value:.1f}"
    return f"{value:.3f} ({value / on_time:.2f}x)" if on_time else f"{value:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = Parser(prog="python -m benchmarks.late_ticks", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+", help="exported reach policies (.onnx)")
    parser.add_word("seeds", type=int, default=VALIDATION_SEED, choices=VALIDATION_SEEDS,
                    help="validation seed (the test seeds only report)")
    parser.add_word("episode count", type=int, default=200, help="goal sets")
    parser.add_argument("--rate", type=float, default=0.2, help="fraction of the control steps that come late")
    parser.add_argument("--delay", type=float, nargs="+", default=[0.004, 0.01, 0.016],
                        help="how late (s; whole MJCF timesteps)")
    args = parser.parse_args(argv)
    print(f"{'model':40s} {'delay':>6s} " + " ".join(f"{header:>14s}" for header, _ in COLUMNS.values()))
    for model in args.models:
        try:
            late = [LateTicks(args.rate, delay, seed=args.seed) for delay in args.delay]
            rows = [figures(model, args.episodes, args.seed, ticks) for ticks in [LateTicks(), *late]]
        except (OSError, ValueError) as e:  # an unreadable model, a delay the task cannot take
            parser.error(f"{model}: {e}")
        for delay, row in zip([0.0, *args.delay], rows):
            cells = [cell(k, row[k], rows[0][k]) for k in row]
            print(f"{model.name:40s} {1e3 * delay:4.0f}ms " + " ".join(f"{c:>14s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
