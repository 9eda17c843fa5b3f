"""A demo's goal sets replayed in the env: is a goal set the demo did not hold the policy's miss or the loop's?

``mtpolicy demo`` writes ``goal_sets.json``: each goal set's start (the joint angles it was drawn from, the robot at
rest), its goals, and what the demo saw over ROS 2, held meaning within tolerance at every joint-state sample for
``SETTLE`` s after first reaching. This runs the same policy from the same starts in the env (``ReachVectorEnv``, the
task the policy was trained on, at the demo's tolerance) and prints the two side by side, held the same way (within
tolerance at every physics step for ``SETTLE`` s after first entering: ``peak_errors``), with the time to reach and
the largest error after reaching. A goal set the env holds and the demo does not is the loop's (timing, load) or,
if the env holds it only without ``--collision-guard`` (the controller node's guard, at the robot's clearance), the
guard's; one neither holds is the policy's.

    mtpolicy demo --robot humanoid --seed 5 --out-dir out/demo
    python -m benchmarks.demo_replay out/demo/goal_sets.json    # --model: another policy from the same starts
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from mtpolicy.vocabulary import Parser
from mtpolicy_training.envs.reach import ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import Controller, Protocol, guarded_controller, onnx_controller


def held_after_reaching(errors: np.ndarray, tolerance: float, hold: int,
                        peaks: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per goal set, from ``errors`` (steps, goal sets, end effectors; m, at the end of each control step) and
    ``peaks`` (the same, each step's largest over its physics steps; default ``errors``): the first step with every
    end effector within ``tolerance`` (-1: never), whether it is within there and at its peaks over the ``hold`` - 1
    steps after it (held after reaching, the demo's judge), the largest error from it on (NaN: never reached), and
    whether every end effector is within at the peaks of the last ``hold`` steps (held at the end, the evaluator's
    judge: a hand that left the tolerance after reaching and came back to stay)."""
    within = (errors <= tolerance).all(axis=2)
    reached = within.any(axis=0)
    first = np.where(reached, within.argmax(axis=0), -1)
    steps = np.arange(len(errors))[:, None]
    seen = np.where((steps == first)[..., None], errors, errors if peaks is None else peaks)
    after = steps >= first
    window = after & (steps < first + hold)
    held = reached & ((seen <= tolerance).all(axis=2) | ~window).all(axis=0) & (first + hold <= len(errors))
    peak = np.where(reached, np.where(after[..., None], seen, 0.0).max(axis=(0, 2)), np.nan)
    final = np.asarray(((errors if peaks is None else peaks)[-hold:] <= tolerance).all(axis=(0, 2)))
    return {"first": first, "held": held, "peak": peak, "final": final}


def held_in_env(env: ReachVectorEnv, obs: np.ndarray, controller: Controller, steps: int,
                settle: float) -> dict[str, np.ndarray]:
    """``held_after_reaching`` of ``controller`` run ``steps`` control steps in ``env`` (made with ``peak_errors``)
    from its observation ``obs``, held for ``settle`` s."""
    errors, peaks = [], []
    for _ in range(steps):
        obs, _, _, _, info = env.step(np.clip(controller(obs), -1.0, 1.0))
        errors.append(info["errors"])
        peaks.append(info["peak_errors"])
    hold = round(settle / env.config.control_period)
    return held_after_reaching(np.array(errors), env.config.tolerance, hold, np.array(peaks))


def replay(record: dict, model: Path, protocol: Protocol = Protocol(), guarded: bool = False) -> dict[str, np.ndarray]:
    """``held_after_reaching`` of ``model`` (``guarded``: behind the controller node's collision guard) from each of
    the record's starts to its goals in the env, and the time to reach (s, NaN: never)."""
    controller, config = onnx_controller(model)
    config = replace(config, reach_tolerance=record["tolerance"])
    if guarded:
        controller = guarded_controller(controller, config)
    sets = record["goal_sets"]
    env = ReachVectorEnv(len(sets), config, time_limit=False, peak_errors=True)
    obs, _ = env.reset(options={"q": np.array([s["start"] for s in sets]),
                                "goals": np.array([s["goals"] for s in sets])})
    out = held_in_env(env, obs, controller, protocol.steps(config.control_period)[0], record["settle"])
    out["seconds"] = np.where(out["first"] >= 0, (out["first"] + 1) * config.control_period, np.nan)
    return out


def table(record: dict, env: dict[str, np.ndarray]) -> str:
    """The demo's outcome and the env's, a goal set a line."""
    lines = ["goal set  demo: held  reached (s)  peak after (mm)   env: held  reached (s)  peak after (mm)"]
    for i, seen in enumerate(record["goal_sets"]):
        demo_time = f"{seen['seconds']:.2f}" if seen["reached"] else "-"
        peak = seen["peak_error_after_reaching"]
        demo_peak = "-" if peak is None else f"{1e3 * peak:.1f}"
        env_time = f"{env['seconds'][i]:.2f}" if env["first"][i] >= 0 else "-"
        env_peak = f"{1e3 * env['peak'][i]:.1f}" if env["first"][i] >= 0 else "-"
        lines.append(f"{i + 1:8d}  {'yes' if seen['held'] else 'NO':>10s}  {demo_time:>11s}  {demo_peak:>15s}   "
                     f"{'yes' if env['held'][i] else 'NO':>9s}  {env_time:>11s}  {env_peak:>15s}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = Parser(prog="python -m benchmarks.demo_replay", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("goal_sets", type=Path, help="a demo's goal_sets.json")
    parser.add_argument("--model", type=Path, help="the policy replayed (default: the demo's)")
    parser.add_argument("--collision-guard", action="store_true",
                        help="behind the controller node's collision guard, at the robot's clearance")
    ns = parser.parse_args(argv)
    try:
        record = json.loads(ns.goal_sets.read_text())
        model = ns.model or Path(record["model"])
        env = replay(record, model, guarded=ns.collision_guard)
    except (OSError, ValueError, KeyError) as e:
        parser.error(f"{ns.goal_sets}: {e}")
    demo_held = np.array([s["held"] for s in record["goal_sets"]])
    print(f"{model}: the goal sets of {ns.goal_sets} in the env{' behind the collision guard' * ns.collision_guard}, "
          f"tolerance {1e3 * record['tolerance']:.0f} mm")
    print(table(record, env))
    n = len(demo_held)
    print(json.dumps({"goal_sets": n, "held_demo": int(demo_held.sum()), "held_env": int(env["held"].sum()),
                      "missed_by_the_demo_only": [int(i) + 1 for i in np.flatnonzero(env["held"] & ~demo_held)],
                      "missed_by_both": [int(i) + 1 for i in np.flatnonzero(~env["held"] & ~demo_held)]}))


if __name__ == "__main__":
    main()
