"""Where a reach policy fails, and whether DLS recovers from there: a probe of the evaluator's episodes.

Runs the policy on ``--goal-sets`` goal sets of a validation seed, and again
with control handed to the damped-least-squares controller after each of
``--handover`` seconds. Prints held success of the policy, of DLS alone and
of each handover, and per goal set the policy fails: whether it ever reached,
its final and smallest error (the largest over end effectors), the largest
command and how many joints sit within 0.02 rad of a position limit at the
end. If DLS cannot recover from where the policy ends, DAgger's labels there
(DLS's commands) cannot teach the policy a way out.

    python -m benchmarks.reach_handover models/planar8_reach.onnx --seed 20240519
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from mtpolicy_training.envs.reach import ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import (VALIDATION_SEEDS, Controller, Protocol, dls_controller,
                                                     onnx_controller)

LIMIT_BAND = 0.02
"""rad: a joint this close to a position limit counts as at the limit."""


def rollout(controller: Controller, config, n: int, seed: int, handover_step: int | None = None,
            protocol: Protocol = Protocol()) -> dict[str, np.ndarray]:
    """One evaluator episode per goal set; ``controller`` drives until ``handover_step``, DLS after it.
    Returns per goal set: held, reached, final and smallest largest-error (m), largest final |command|,
    joints at a limit at the end."""
    env = ReachVectorEnv(n, config, time_limit=False)
    obs, info = env.reset(seed=seed)
    steps, hold = protocol.steps(config.control_period)
    dls = dls_controller(config)
    held, reached = np.ones(n, bool), np.zeros(n, bool)
    smallest = np.full(n, np.inf)
    action = np.zeros((n, env.spec.n_joints))
    for t in range(steps):
        action = np.clip((controller if handover_step is None or t < handover_step else dls)(obs), -1.0, 1.0)
        obs, _, _, _, info = env.step(action)
        worst = info["errors"].max(axis=1)
        within = worst <= config.reach_tolerance
        reached |= within
        smallest = np.minimum(smallest, worst)
        if t >= steps - hold:
            held &= within
    q, limits = env.joint_positions(), env.spec.joint_limits
    at_limit = ((q <= limits[:, 0] + LIMIT_BAND) | (q >= limits[:, 1] - LIMIT_BAND)).sum(axis=1)
    return {"held": held, "reached": reached, "final": info["errors"].max(axis=1), "smallest": smallest,
            "command": np.abs(action).max(axis=1), "at_limit": at_limit}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("model", help="exported policy (.onnx)")
    parser.add_argument("--seed", type=int, default=VALIDATION_SEEDS[2], choices=VALIDATION_SEEDS,
                        help="validation seed of the goal sets")
    parser.add_argument("--goal-sets", type=int, default=500)
    parser.add_argument("--goal-distribution", choices=("local", "workspace"), default="local")
    parser.add_argument("--handover", type=float, nargs="*", default=[2.0, 3.0], help="seconds before DLS takes over")
    args = parser.parse_args(argv)
    policy, config = onnx_controller(args.model)
    config = replace(config, goal_distribution=args.goal_distribution)
    own = rollout(policy, config, args.goal_sets, args.seed)
    print(f"policy held {own['held'].mean():.3f}; DLS alone "
          f"{rollout(dls_controller(config), config, args.goal_sets, args.seed)['held'].mean():.3f}")
    for seconds in args.handover:
        step = round(seconds / config.control_period)
        print(f"DLS after {seconds:g} s: held {rollout(policy, config, args.goal_sets, args.seed, step)['held'].mean():.3f}")
    print("failed goal sets: index, reached, final / smallest error (mm), largest final command, joints at a limit")
    for i in np.flatnonzero(~own["held"]):
        print(f"{i:4d} {bool(own['reached'][i])!s:5} {own['final'][i] * 1e3:6.1f} / {own['smallest'][i] * 1e3:6.1f} "
              f"{own['command'][i]:.2f} {own['at_limit'][i]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
