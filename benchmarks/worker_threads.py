"""The time-optimal teacher's line demonstrations on a process pool, its workers' BLAS on 2 threads (OpenBLAS's
default on a 2-core machine, what the workers ran with before ``row_workers.single_threaded_children``) against 1,
run after run: wall seconds of each and the ratio.

    python -m benchmarks.worker_threads --robot gr1 --line-sets 128 --chunks 4 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import time

from mtpolicy.vocabulary import Parser
from mtpolicy_training.algos.dagger import DaggerConfig
from mtpolicy_training.core.row_workers import SINGLE_THREADED, process_pool
from mtpolicy_training.envs.reach import ReachConfig
from mtpolicy_training.train.dagger import line_demonstrations


def pooled_seconds(algo: DaggerConfig, env: ReachConfig, line_sets: int, chunks: int, workers: int) -> float:
    """Wall seconds of ``chunks`` line-demonstration chunks of ``line_sets`` goal sets on a pool of ``workers``."""
    start = time.perf_counter()
    with process_pool(workers) as pool:
        list(pool.map(line_demonstrations, [algo] * chunks, [env] * chunks, [line_sets] * chunks, range(chunks)))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                    prog="python -m benchmarks.worker_threads")
    parser.add_word("robot", default="gr1", help="the reach task's robot (local goal sets)")
    parser.add_argument("--line-sets", type=int, default=128, help="goal sets per chunk")
    parser.add_argument("--chunks", type=int, default=4, help="chunks, spread over the workers")
    parser.add_argument("--workers", type=int, default=2, help="pool processes")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, alternating")
    args = parser.parse_args(argv)
    algo = DaggerConfig(teacher="time_optimal", saturation="clip", loss="relative")
    env = ReachConfig(robot=args.robot, goal_distribution="local")
    for _ in range(args.repeat):
        seconds = {}
        for threads in ("2", "1"):  # set before the pool starts: its workers inherit it
            os.environ.update({name: threads for name in SINGLE_THREADED})
            seconds[threads] = pooled_seconds(algo, env, args.line_sets, args.chunks, args.workers)
        print(f"BLAS threads per worker 2: {seconds['2']:.1f} s, 1: {seconds['1']:.1f} s, "
              f"ratio {seconds['2'] / seconds['1']:.2f}", flush=True)


if __name__ == "__main__":
    main()
