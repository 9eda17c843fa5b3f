"""Train a reach policy with DiGrad or DDPG, evaluate it, export it to ONNX: ``train digrad``.

    python -m mtpolicy_training.train digrad --algo.method digrad --algo.critic single \
        --budget-steps 300000 --seed 1 --out-dir runs/planar8/digrad-single-heur/1

Resumes from ``<out-dir>/checkpoint.pt`` when run again with the same
config. Writes ``metrics.csv``, TensorBoard logs, ``eval.json``
(``final_eval_episodes`` held-out goal sets) and ``policy.onnx`` of the last
policy; and ``best_policy.onnx``, the policy with the best periodic
(validation) success so far, exported when it is found, so a run whose
learning later collapses keeps its peak, with ``best.json`` (its validation
metrics, updates and the wall seconds into the training session when it was
found) and, at the end, ``best_eval.json`` (its held-out goal sets, with the
same two).

For the harness: the five settings of DiGrad's Fig. 4A and the DLS baseline
on the shipped robots.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from mtpolicy.integrity import strict_json
from mtpolicy_training.algos.digrad import DiGrad, DiGradConfig
from mtpolicy_training.core.files import write_atomically
from mtpolicy_training.core.offpolicy import LoopConfig, train_off_policy
from mtpolicy_training.core.run_record import RunConfig, config_dict, publish_final, write_eval
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import (HELD_OUT_SEED, VALIDATION_SEED, dls_controller, evaluate_reach,
                                                     onnx_controller)
from mtpolicy_training.ship.export import check_finite, export_policy
from mtpolicy_training.train.family import REACH_TASK_SETS, CellMethod, Family, GridCell, TrainSettings


@dataclass(kw_only=True)
class DiGradTrainConfig(TrainSettings):
    """DiGrad or DDPG on a reach robot (``--env.robot``): validated during training, evaluated on held-out goal sets
    and exported to ONNX at the end."""

    budget_steps: int = 300_000
    out_dir: Path = Path("runs/planar8/digrad")
    periodic_eval_episodes: int = 100
    final_eval_episodes: int = 500
    algo: DiGradConfig = field(default_factory=DiGradConfig)
    """Method settings."""
    env: ReachConfig = field(default_factory=ReachConfig)
    """Reach task settings: the robot, its rewards (reward_mode follows the method) and goals."""
    loop: LoopConfig = field(default_factory=LoopConfig)
    """Parallel envs, replay, exploration and bookkeeping."""

    RENAMED: ClassVar[dict[str, str]] = {"loop.total_steps": "budget_steps",
                                         "loop.eval_goal_sets": "periodic_eval_episodes",
                                         "final_goal_sets": "final_eval_episodes"}

    def __post_init__(self):
        bad = self.validate_settings() + self.algo.validate() + self.loop.validate()
        if bad:
            raise ValueError("invalid config value(s): " + ", ".join(bad))
        reward_mode = "ddpg" if self.algo.method == "ddpg" else "digrad"
        if self.env.reward_mode != reward_mode:
            self.env = dataclasses.replace(self.env, reward_mode=reward_mode)


def when_found(best: dict) -> dict[str, float]:
    """The ``updates`` and ``found_after_session_seconds`` of a ``best.json`` record (those it has)."""
    return {k: best[k] for k in ("updates", "found_after_session_seconds") if k in best}


def run(config: DiGradTrainConfig) -> dict[str, float]:
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
        metrics = evaluate_reach(m.deployed_action, config.env, config.periodic_eval_episodes, seed=VALIDATION_SEED)
        if metrics["success_rate"] > best["success_rate"]:
            best.update(metrics, updates=m.updates, found_after_session_seconds=time.perf_counter() - t0)
            export(m, metrics, best_path)
            write_atomically(best_record, strict_json(best, indent=2))
        return metrics

    t0 = time.perf_counter()
    train_off_policy(method, lambda n: ReachVectorEnv(n, config.env), config.loop, config, validate, reward_of,
                     RunConfig.of(config))
    train_seconds = time.perf_counter() - t0
    check_finite(method.policy, out / "policy.onnx")  # a diverged run is refused before its evaluation
    print(f"final evaluation: {config.final_eval_episodes} goal sets of seed {HELD_OUT_SEED}...", flush=True)
    final = publish_final(out, evaluate_reach(method.deployed_action, config.env, config.final_eval_episodes,
                                              seed=HELD_OUT_SEED), train_seconds,
                          lambda record, path: export(method, record, path))
    if best_path.exists():
        metrics = evaluate_reach(onnx_controller(best_path)[0], config.env, config.final_eval_episodes,
                                 HELD_OUT_SEED)
        write_eval(out / "best_eval.json", {**metrics, **when_found(best)}, train_seconds)
    return final


SETTINGS = {
    "digrad-single-heur": ["--algo.method", "digrad", "--algo.critic", "single", "--algo.heuristic", "True"],
    "digrad-single": ["--algo.method", "digrad", "--algo.critic", "single", "--algo.heuristic", "False"],
    "digrad-multi-heur": ["--algo.method", "digrad", "--algo.critic", "multi", "--algo.heuristic", "True"],
    "digrad-multi": ["--algo.method", "digrad", "--algo.critic", "multi", "--algo.heuristic", "False"],
    "ddpg": ["--algo.method", "ddpg"],
}
"""The five settings of DiGrad's Fig. 4A, as harness methods."""


def evaluate_dls(cell: GridCell) -> None:
    """The damped-least-squares baseline: nothing to train and seed-independent (validation goal sets).

    One evaluation on ``final_eval_episodes`` goal sets, logged at step 0 and
    at the budget, so its curve is a flat reference line.
    """
    config = cell.config([])
    final = evaluate_reach(dls_controller(config.env), config.env, config.final_eval_episodes)
    cell.out_dir.mkdir(parents=True, exist_ok=True)
    with (cell.out_dir / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["step", *(f"eval/{k}" for k in final)])
        writer.writeheader()
        writer.writerows({"step": step, **{f"eval/{k}": v for k, v in final.items()}}
                         for step in (0, cell.budget_steps))
    (cell.out_dir / "eval.json").write_text(strict_json(final, indent=2))


FAMILY = Family("digrad", DiGradTrainConfig, run, settings=SETTINGS, cells={"dls": CellMethod(evaluate_dls)},
                task_sets=REACH_TASK_SETS,
                fixed=frozenset({"env.robot", "algo.method", "algo.critic", "algo.heuristic"}))
"""The reach trainer; its harness task sets are the shipped robots."""
