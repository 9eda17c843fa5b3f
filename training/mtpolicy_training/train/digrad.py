"""Train a reach policy with DiGrad or DDPG, evaluate it, export it to ONNX: ``train digrad``.

    python -m mtpolicy_training.train digrad --algo.method digrad --algo.critic single \
        --budget-steps 300000 --seed 1 --out-dir runs/planar8/digrad-single-heur/1

Resumes from ``<out-dir>/checkpoint.pt`` when run again with the same
config. Writes ``metrics.csv``, TensorBoard logs, ``eval.json``
(``final_eval_episodes`` held-out goal sets) and ``policy.onnx`` of the last
policy; and ``best_policy.onnx``, the policy with the best periodic
(validation) success so far, exported when it is found, so a run whose
learning later collapses keeps its peak, with ``best.json`` (its validation
metrics and when it was found: ``step``, ``updates``,
``found_after_train_seconds``, the schema of ``core/trainer.py``) and, at the
end, ``best_eval.json`` (its held-out goal sets, with the same).

    python -m mtpolicy_training.train digrad --robot humanoid --reach-tolerance 0.03 --algo.no-heuristic ...

For the harness: the five settings of DiGrad's Fig. 4A and the DLS baseline
on the shipped robots.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from mtpolicy.integrity import strict_json
from mtpolicy_training.algos.digrad import DiGrad, DiGradConfig
from mtpolicy_training.core.offpolicy import LoopConfig, train_off_policy
from mtpolicy_training.core.run_record import RunConfig, config_dict
from mtpolicy_training.core.trainer import BestRun, Trainer, reach_key, run_trainer
from mtpolicy_training.envs.reach import ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import dls_controller, evaluate_reach, onnx_controller
from mtpolicy_training.envs.seeds import HELD_OUT_SEED, VALIDATION_SEED
from mtpolicy_training.ship.export import check_finite, export_policy
from mtpolicy_training.train.family import REACH_TASK_SETS, CellMethod, Family, GridCell, ReachOptions, TrainSettings


@dataclass(kw_only=True)
class DiGradTrainConfig(TrainSettings):
    """DiGrad or DDPG on a reach robot (``--robot``): validated during training, evaluated on held-out goal sets
    and exported to ONNX at the end."""

    budget_steps: int = 300_000
    out_dir: Path = Path("runs/planar8/digrad")
    periodic_eval_episodes: int = 100
    final_eval_episodes: int = 500
    algo: DiGradConfig = field(default_factory=DiGradConfig)
    """Method settings."""
    env: ReachOptions = field(default_factory=ReachOptions)
    """Reach task settings: the robot, its rewards (reward_mode follows the method) and goals."""
    loop: LoopConfig = field(default_factory=LoopConfig)
    """Parallel envs, replay, exploration and bookkeeping."""

    COMMAND: ClassVar[str] = "train digrad"

    def __post_init__(self):
        bad = self.validate_settings() + self.algo.validate() + self.loop.validate()
        if bad:
            raise ValueError("invalid config value(s): " + ", ".join(bad))
        reward_mode = "ddpg" if self.algo.method == "ddpg" else "digrad"
        if self.env.reward_mode != reward_mode:
            self.env = dataclasses.replace(self.env, reward_mode=reward_mode)


def run(config: DiGradTrainConfig) -> dict[str, float]:
    torch.manual_seed(config.seed)
    probe = ReachVectorEnv(1, config.env)
    mean, std = probe.observation_statistics()
    method = DiGrad(config.algo, probe.spec, mean, std, probe.layout)
    per_task = method.n_rewards > 1
    out = config.out_dir

    def reward_of(reward: np.ndarray, info: dict) -> np.ndarray:
        return info["task_rewards"] if per_task else reward[:, None]

    def export(metrics: dict[str, float], path: Path) -> None:
        export_policy(method.policy, probe.spec, config.env, method=config.algo.setting,
                      training_config=config_dict(config), metrics=metrics, path=path)

    def validate(m: DiGrad) -> dict[str, float]:
        return evaluate_reach(m.deployed_action, config.env, config.periodic_eval_episodes, seed=VALIDATION_SEED)

    best = BestRun(out, export, key=reach_key, extra=lambda: {"updates": method.updates})

    def train() -> None:
        train_off_policy(method, lambda n: ReachVectorEnv(n, config.env), config.loop, config, validate, reward_of,
                         RunConfig.of(config), best=best)

    def final_evaluation() -> dict[str, float]:
        print(f"final evaluation: {config.final_eval_episodes} goal sets of seed {HELD_OUT_SEED}...", flush=True)
        return evaluate_reach(method.deployed_action, config.env, config.final_eval_episodes, seed=HELD_OUT_SEED)

    return run_trainer(Trainer(
        out, train, final_evaluation, export, best,
        evaluate_best=lambda path: evaluate_reach(onnx_controller(path)[0], config.env, config.final_eval_episodes,
                                                  HELD_OUT_SEED),
        check=lambda: check_finite(method.policy, out / "policy.onnx")))  # a diverged run: refused before evaluation


SETTINGS = {
    "digrad-single-heur": ["--algo.method", "digrad", "--algo.critic", "single", "--algo.heuristic"],
    "digrad-single": ["--algo.method", "digrad", "--algo.critic", "single", "--algo.no-heuristic"],
    "digrad-multi-heur": ["--algo.method", "digrad", "--algo.critic", "multi", "--algo.heuristic"],
    "digrad-multi": ["--algo.method", "digrad", "--algo.critic", "multi", "--algo.no-heuristic"],
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
