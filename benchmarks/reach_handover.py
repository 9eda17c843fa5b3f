"""Where a reach policy fails, and whether DLS recovers from there: a probe of the evaluator's episodes.

Runs the policy on ``--episodes`` goal sets of a validation seed, and again
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
import itertools
from dataclasses import replace

import numpy as np

from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import Controller, dls_controller, evaluate_reach, onnx_controller
from mtpolicy_training.envs.seeds import VALIDATION_SEEDS

LIMIT_BAND = 0.02
"""rad: a joint this close to a position limit counts as at the limit."""


def handed_over(first: Controller, then: Controller, step: int) -> Controller:
    """``first`` for the first ``step`` calls, ``then`` after: one evaluator episode (it calls its controller once
    per control step) with control handed over at ``step``."""
    calls = itertools.count()
    return lambda obs: (first if next(calls) < step else then)(obs)


class Probe:
    """An evaluator step hook (``StepHook``): per goal set, the smallest largest-error over the episode, and the
    last step's largest error, commands and env."""

    def __init__(self) -> None:
        self.smallest: np.ndarray | float = np.inf
        self.final: np.ndarray | None = None
        self.action: np.ndarray | None = None
        self.env: ReachVectorEnv | None = None

    def __call__(self, t: int, env: ReachVectorEnv, action: np.ndarray, info: dict) -> None:
        self.final = info["errors"].max(axis=1)
        self.smallest = np.minimum(self.smallest, self.final)
        self.action, self.env = action, env


def rollout(controller: Controller, config: ReachConfig, n: int, seed: int,
            handover_step: int | None = None) -> dict[str, np.ndarray]:
    """The evaluator's episodes on ``n`` goal sets of ``seed``; ``controller`` drives until ``handover_step``, DLS
    after it. Returns per goal set: held, reached, final and smallest largest-error (m), largest final |command|,
    joints at a limit at the end."""
    if handover_step is not None:
        controller = handed_over(controller, dls_controller(config), handover_step)
    probe = Probe()
    per_set = evaluate_reach(controller, config, n, seed, per_set=True, on_step=probe)["per_set"]
    if probe.env is None or probe.final is None or probe.action is None:
        raise RuntimeError("the evaluator took no step")
    q, limits = probe.env.joint_positions(), probe.env.spec.joint_limits
    at_limit = ((q <= limits[:, 0] + LIMIT_BAND) | (q >= limits[:, 1] - LIMIT_BAND)).sum(axis=1)
    return {"held": per_set["held"], "reached": np.isfinite(per_set["time_to_reach"]), "final": probe.final,
            "smallest": probe.smallest, "command": np.abs(probe.action).max(axis=1), "at_limit": at_limit}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("model", help="exported policy (.onnx)")
    parser.add_argument("--seed", type=int, default=VALIDATION_SEEDS[2], choices=VALIDATION_SEEDS,
                        help="validation seed of the goal sets")
    parser.add_argument("--episodes", type=int, default=500, help="goal sets to run (one an episode)")
    parser.add_argument("--goal-distribution", choices=("local", "workspace"), default="local")
    parser.add_argument("--handover", type=float, nargs="*", default=[2.0, 3.0], help="seconds before DLS takes over")
    args = parser.parse_args(argv)
    policy, config = onnx_controller(args.model)
    config = replace(config, goal_distribution=args.goal_distribution)
    own = rollout(policy, config, args.episodes, args.seed)
    print(f"policy held {own['held'].mean():.3f}; DLS alone "
          f"{rollout(dls_controller(config), config, args.episodes, args.seed)['held'].mean():.3f}")
    for seconds in args.handover:
        step = round(seconds / config.control_period)
        handed = rollout(policy, config, args.episodes, args.seed, step)
        print(f"DLS after {seconds:g} s: held {handed['held'].mean():.3f}")
    print("failed goal sets: index, reached, final / smallest error (mm), largest final command, joints at a limit")
    for i in np.flatnonzero(~own["held"]):
        print(f"{i:4d} {bool(own['reached'][i])!s:5} {own['final'][i] * 1e3:6.1f} / {own['smallest'][i] * 1e3:6.1f} "
              f"{own['command'][i]:.2f} {own['at_limit'][i]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
