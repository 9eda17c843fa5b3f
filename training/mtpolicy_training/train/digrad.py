"""Train a reach policy with DiGrad or DDPG, evaluate it, export it to ONNX.

    python -m mtpolicy_training.train --algo.method digrad --algo.critic single \
        --loop.total-steps 300000 --seed 1 --out-dir runs/planar8/digrad-single-heur/1

Resumes from ``<out-dir>/checkpoint.pt`` when run again with the same
config. Writes ``metrics.csv``, TensorBoard logs, ``eval.json`` (500 held-out
goal sets) and ``policy.onnx`` of the last policy; and ``best_policy.onnx``,
the policy with the best periodic (validation) success so far, exported when
it is found, so a run whose learning later collapses keeps its peak, with
``best.json`` (its validation metrics, updates and the wall seconds into the
training session when it was found) and, at the end, ``best_eval.json``
(its 500 held-out goal sets, with the same two).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mtpolicy_training.algos.digrad import DiGrad, DiGradConfig
from mtpolicy_training.algos.offpolicy import LoopConfig, train_off_policy
from mtpolicy_training.cli import RunConfig, config_dict, train_main, write_eval
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.evaluate import HELD_OUT_SEED, VALIDATION_SEED, evaluate_reach, onnx_controller
from mtpolicy_training.export import export_policy


@dataclass
class TrainConfig:
    """A reach training run."""

    algo: DiGradConfig = field(default_factory=DiGradConfig)
    """Method settings."""
    env: ReachConfig = field(default_factory=ReachConfig)
    """Reach task settings (reward_mode follows the method)."""
    loop: LoopConfig = field(default_factory=LoopConfig)
    """Budget, replay, exploration and bookkeeping."""
    seed: int = 1
    """Seed of networks, exploration and training goal sets."""
    out_dir: Path = Path("runs/planar8/digrad")
    """Where metrics, checkpoints, the evaluation and the ONNX policy go."""
    final_goal_sets: int = 500
    """Held-out goal sets of the final evaluation."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self):
        bad = self.algo.validate() + self.loop.validate()
        if self.final_goal_sets <= 0:
            bad.append("final_goal_sets")
        if bad:
            raise ValueError("invalid config value(s): " + ", ".join(bad))
        reward_mode = "ddpg" if self.algo.method == "ddpg" else "digrad"
        if self.env.reward_mode != reward_mode:
            self.env = dataclasses.replace(self.env, reward_mode=reward_mode)


def when_found(best: dict) -> dict[str, float]:
    """The ``updates`` and ``found_after_session_seconds`` of a ``best.json`` record (those it has)."""
    return {k: best[k] for k in ("updates", "found_after_session_seconds") if k in best}


def run(config: TrainConfig) -> dict[str, float]:
    torch.manual_seed(config.seed)
    probe = ReachVectorEnv(1, config.env)
    mean, std = probe.observation_statistics()
    method = DiGrad(config.algo, probe.spec, mean, std)
    per_task = method.n_rewards > 1
    out = config.out_dir
    best_path, best_record = out / "best_policy.onnx", out / "best.json"
    best = json.loads(best_record.read_text()) if best_record.exists() else {"success_rate": -1.0}

    def reward_of(reward: np.ndarray, info: dict) -> np.ndarray:
        return info["task_rewards"] if per_task else reward[:, None]

    def export(m: DiGrad, metrics: dict[str, float], path: Path) -> None:
        export_policy(m.policy, probe.spec, config.env, method=config.algo.setting,
                      training_config=config_dict(config), metrics=metrics, path=path)

    def validate(m: DiGrad) -> dict[str, float]:
        metrics = evaluate_reach(m.deployed_action, config.env, config.loop.eval_goal_sets, seed=VALIDATION_SEED)
        if metrics["success_rate"] > best["success_rate"]:
            best.update(metrics, updates=m.updates, found_after_session_seconds=time.perf_counter() - t0)
            export(m, metrics, best_path)
            best_record.write_text(json.dumps(best, indent=2))
        return metrics

    t0 = time.perf_counter()
    train_off_policy(method, lambda n: ReachVectorEnv(n, config.env), config.loop, out, config.seed,
                     validate, reward_of, RunConfig.of(config), config.progress)
    train_seconds = time.perf_counter() - t0
    final = write_eval(out / "eval.json", evaluate_reach(method.deployed_action, config.env, config.final_goal_sets,
                                                         seed=HELD_OUT_SEED), train_seconds)
    export(method, final, out / "policy.onnx")
    if best_path.exists():
        metrics = evaluate_reach(onnx_controller(best_path)[0], config.env, config.final_goal_sets, HELD_OUT_SEED)
        write_eval(out / "best_eval.json", {**metrics, **when_found(best)}, train_seconds)
    return final


def main(argv: list[str] | None = None) -> None:
    train_main(TrainConfig, run, argv)


if __name__ == "__main__":
    main()
