"""A cheap screen of DAgger students: refit a finished run's dataset with other student settings, validate.

Reads the aggregated dataset D of a DAgger run's checkpoint (the teacher's
labels on every state it collected), fits a new student on it with the run's
settings changed by the options given (saturation, widths, gradient steps,
loss, learning rate), and prints the evaluator's figures on validation goal
sets of one seed, with the time-optimal bound where the run has one. What it
screens is the student alone: the same data, no new teacher solves (the
expensive part of a time-optimal run).

    python -m benchmarks.dagger_refit runs/humanoid/dagger-time-optimal --hidden 512 512 512 --updates 48000
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from mtpolicy_training.algos.dagger import DaggerConfig, Student
from mtpolicy_training.core.run_record import load_checkpoint
from mtpolicy_training.envs.reach import ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import evaluate_reach, onnx_controller
from mtpolicy_training.envs.seeds import VALIDATION_SEED
from mtpolicy_training.envs.time_optimal import bound_table

SHOWN = ("success_rate", "time_to_reach_median", "time_ratio_median", "time_ratio_p90", "dither_sign_changes",
         "left_after_reach_rate")


def refit(run: Path, changes: dict, goal_sets: int, seed: int) -> dict:
    """The validation figures of a student fitted on ``run``'s dataset with its DAgger settings ``changes``d."""
    algo = replace(DaggerConfig.from_record(json.loads((run / "config.json").read_text())["algo"]), **changes)
    _, env_config = onnx_controller(run / "policy.onnx")
    data = load_checkpoint(run / "checkpoint.pt")["data"]
    target = data["target"].clamp(-1.0, 1.0) if algo.loss == "action" else data["target"]
    env = ReachVectorEnv(1, env_config, time_limit=False)
    student = Student(algo, env.layout, env.spec.n_joints, *env.observation_statistics())
    start = time.perf_counter()
    loss = student.fit(data["obs"], target, torch.Generator().manual_seed(1))
    fit_seconds = time.perf_counter() - start
    bound = bound_table(env_config, goal_sets, seed, cache_dir=run / "bound").bound_seconds \
        if (run / "bound").is_dir() else None
    metrics = evaluate_reach(student.act, env_config, goal_sets, seed, bound=bound)
    return {"states": len(target), "loss": loss, "fit_seconds": fit_seconds, **{k: metrics[k] for k in SHOWN
                                                                                 if k in metrics}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a DAgger run directory (config.json, checkpoint.pt, policy.onnx)")
    parser.add_argument("--saturation", choices=("uniform", "clip"))
    parser.add_argument("--hidden", type=int, nargs="+")
    parser.add_argument("--updates", type=int, help="gradient steps (the run's updates_per_iteration otherwise)")
    parser.add_argument("--loss", choices=("action", "relative"))
    parser.add_argument("--lr", type=float)
    parser.add_argument("--episodes", type=int, default=200, help="goal sets to evaluate on (one an episode)")
    parser.add_argument("--seed", type=int, default=VALIDATION_SEED, help="a validation seed")
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(1)
    changes = {k: v for k, v in {"saturation": args.saturation, "loss": args.loss, "lr": args.lr,
                                 "hidden": tuple(args.hidden) if args.hidden else None,
                                 "updates_per_iteration": args.updates}.items() if v is not None}
    figures = refit(args.run, changes, args.episodes, args.seed)
    print(json.dumps({"changes": changes, **{k: round(v, 4) for k, v in figures.items()}}))


if __name__ == "__main__":
    main()
