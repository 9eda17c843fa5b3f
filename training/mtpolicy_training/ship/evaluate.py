"""Evaluate an exported reach policy next to DLS and mink on the same goal sets (``envs/reach_evaluation.py``).

    python -m mtpolicy_training.ship.evaluate planar8_reach --goal-distribution local --seeds 20240518
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Literal

import tyro

from mtpolicy.integrity import strict_json
from mtpolicy.policy import resolve_model_path
from mtpolicy_training.envs.reach_evaluation import (VALIDATION_SEEDS, dls_controller, evaluate_reach,
                                                     mink_controller, onnx_controller)


@dataclass
class EvaluateConfig:
    """Evaluate an exported ONNX reach policy, DLS and mink on the same goal sets."""

    model: tyro.conf.Positional[str]
    """Shipped model name (models/<name>.onnx), path to an ONNX policy, or a robot (its robot.yaml's default_model)."""
    goal_distribution: Literal["local", "workspace", "trained"] = "trained"
    """Goal distribution of the goal sets ('trained': the one the policy was trained on)."""
    goal_sets: int = 500
    """Goal sets (episodes) per seed."""
    seeds: tuple[int, ...] = VALIDATION_SEEDS[:1]
    """Seeds of start configurations and goal sets (validation seeds: the test seeds are for published figures)."""
    anchors: tuple[Literal["dls", "mink"], ...] = ("dls", "mink")
    """Classical controllers run beside the policy."""


def main(argv: list[str] | None = None) -> None:
    cfg = tyro.cli(EvaluateConfig, args=argv, config=(tyro.conf.FlagConversionOff,))
    try:
        policy, env = onnx_controller(resolve_model_path(cfg.model))
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    if cfg.goal_distribution != "trained":
        env = replace(env, goal_distribution=cfg.goal_distribution)
    anchors = {"dls": dls_controller, "mink": mink_controller}
    controllers = {"policy": policy} | {name: anchors[name](env) for name in cfg.anchors}
    results = {name: {str(seed): {k: round(v, 4) for k, v in evaluate_reach(c, env, cfg.goal_sets, seed).items()}
                      for seed in cfg.seeds} for name, c in controllers.items()}
    print(strict_json(results, indent=2))


if __name__ == "__main__":
    main()
