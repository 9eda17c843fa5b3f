"""Evaluate an exported reach policy next to DLS and mink on the same goal sets (``envs/reach_evaluation.py``).

    python -m mtpolicy_training.ship.evaluate planar8_reach --goal-distribution local --seed 20240518 --episodes 200

Options in the words of every command (``mtpolicy.vocabulary.VOCABULARY``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Literal

import tyro

from mtpolicy.integrity import strict_json
from mtpolicy.policy import resolve_model_path
from mtpolicy_training.core.options import parse_config
from mtpolicy_training.envs.reach_evaluation import dls_controller, evaluate_reach, mink_controller, onnx_controller
from mtpolicy_training.envs.seeds import VALIDATION_SEEDS


@dataclass
class EvaluateConfig:
    """Evaluate an exported ONNX reach policy, DLS and mink on the same goal sets."""

    model: tyro.conf.Positional[str]
    """Shipped model name (models/<name>.onnx), path to an ONNX policy, or a robot (its robot.yaml's default_model)."""
    goal_distribution: Literal["local", "workspace", "trained"] = "trained"
    """Goal distribution of the goal sets ('trained': the one the policy was trained on)."""
    episodes: int = 500
    """Goal sets (one an episode) per seed."""
    seed: tuple[int, ...] = VALIDATION_SEEDS[:1]
    """Seeds of start configurations and goal sets (validation seeds: the test seeds are for published figures)."""
    anchors: tuple[Literal["dls", "mink"], ...] = ("dls", "mink")
    """Classical controllers run beside the policy."""


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(EvaluateConfig, argv, prog="python -m mtpolicy_training.ship.evaluate")
    try:
        policy, env = onnx_controller(resolve_model_path(cfg.model))
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    if cfg.goal_distribution != "trained":
        env = replace(env, goal_distribution=cfg.goal_distribution)
    anchors = {"dls": dls_controller, "mink": mink_controller}
    controllers = {"policy": policy} | {name: anchors[name](env) for name in cfg.anchors}
    results = {name: {str(seed): {k: round(v, 4) for k, v in evaluate_reach(c, env, cfg.episodes, seed).items()}
                      for seed in cfg.seed} for name, c in controllers.items()}
    print(strict_json(results, indent=2))


if __name__ == "__main__":
    main()
