"""Does the error-gain student generalize the time-optimal command across goal sets? A probe.

Draws ``--train-sets`` and ``--held-out-sets`` starts and goal sets of the training distribution (different
seeds), labels points on each one's straight line to the time-optimal teacher's target
(``TimeOptimalController.line_demonstrations``: one solve per goal set), fits the DAgger student
(``Student``, ``loss='relative'``) on the first for ``--rounds`` rounds of ``updates_per_iteration``
updates, and prints after each round the relative loss on the training and the held-out states, and the
cosine between the student's and the teacher's saturated commands on held-out states where an end effector
is still out of tolerance (the direction that decides the time to reach).

    python -m benchmarks.time_optimal_generalization --robot planar8 --train-sets 4000
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np
import torch

from mtpolicy_training.algos.dagger import DaggerConfig, Student
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.time_optimal import saturate
from mtpolicy_training.train.dagger import line_demonstrations

HELD_OUT_SEED = 999
"""Seed of the held-out goal sets (neither a validation nor a test seed of the evaluator)."""


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of the uniformly saturated commands a and b."""
    a, b = saturate(a, "uniform"), saturate(b, "uniform")
    return (a * b).sum(axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robot", default="planar8")
    parser.add_argument("--train-sets", type=int, default=4000)
    parser.add_argument("--held-out-sets", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="processes drawing the demonstrations")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    env_config = ReachConfig(robot=args.robot)
    algo = DaggerConfig(teacher="time_optimal", saturation="uniform", loss="relative")
    sizes = [len(c) for c in np.array_split(np.arange(args.train_sets), 4 * args.workers) if len(c)]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        parts = list(pool.map(partial(line_demonstrations, algo, env_config), sizes, range(100, 100 + len(sizes))))
        held_out = line_demonstrations(algo, env_config, args.held_out_sets, HELD_OUT_SEED)
    print(f"demonstrations: {time.perf_counter() - start:.0f} s", flush=True)
    obs = torch.as_tensor(np.concatenate([p[0] for p in parts]), dtype=torch.float32)
    target = torch.as_tensor(np.concatenate([p[1] for p in parts]), dtype=torch.float32)
    held_obs = torch.as_tensor(held_out[0], dtype=torch.float32)
    held_target = torch.as_tensor(held_out[1], dtype=torch.float32)
    far = np.abs(held_out[1]).max(axis=1) > 1  # more than one period from the target: moving at full speed
    env = ReachVectorEnv(1, env_config)
    student = Student(algo, env.layout, env.spec.n_joints, *env.observation_statistics())
    generator = torch.Generator().manual_seed(0)
    for k in range(args.rounds):
        train_loss = student.fit(obs, target, generator)
        with torch.no_grad():
            held_loss = float(student.loss(held_obs, held_target))
            command = student.policy.unsaturated(held_obs).numpy()
        print(f"{args.robot}, {args.train_sets} training goal sets, round {k + 1} ({student.updates} updates): "
              f"relative loss train {train_loss:.4f}, held-out {held_loss:.4f}; command cosine on held-out states "
              f"out of tolerance: median {np.median(cosine(command[far], held_out[1][far])):.3f}", flush=True)


if __name__ == "__main__":
    main()
