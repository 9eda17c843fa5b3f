"""The reach evaluator: one protocol for learned policies and the DLS baseline.

Every controller is a function from a batch of observations to normalized
joint velocities in [-1, 1]. It runs on ``n_goal_sets`` episodes whose start
configurations and goal sets come from a held-out seed, for the env's full
episode length. Success: every end effector within ``tolerance`` of its goal
at the end of the episode. Time to reach: the first step at which all end
effectors are within tolerance, in seconds, over successful episodes.

Settling, for the failure mode of a policy that reaches and then dithers out:
``left_after_reach_rate`` is the share of goal sets that had every end effector
within tolerance at some step but not at the end; ``action_sign_change_rate``
the share of (step, goal set, joint) over the last ``SETTLE_STEPS`` steps whose
action has the other sign than one step before; ``settled_action_abs_mean``
the mean |action| (fraction of the velocity limit) over the last
``SETTLE_STEPS // 2`` steps of the successful goal sets.

Evaluate an exported policy (shipped name or path), with the DLS baseline on
the same goal sets::

    python -m mtpolicy_training.evaluate planar8_digrad
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import tyro

from mtpolicy.dls import DampedLeastSquares
from mtpolicy.policy import OnnxPolicy, resolve_model_path
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv

HELD_OUT_SEED = 20_240_517
"""Seed of the final evaluation's goal sets; training never draws from it, nor selects on it."""
VALIDATION_SEED = 20_240_518
"""Seed of the periodic evaluations during training, on which the best policy of a run is selected."""

SETTLE_STEPS = 20
"""Steps at the end of an episode over which the settling metrics are taken."""

Controller = Callable[[np.ndarray], np.ndarray]


def evaluate_reach(controller: Controller, config: ReachConfig, n_goal_sets: int = 500,
                   seed: int = HELD_OUT_SEED, tolerance: float | None = None) -> dict[str, float]:
    """Success rate, per-end-effector median / p90 final error, mean score and time to reach.

    ``tolerance`` (m) defaults to the env's ``reach_tolerance``.
    """
    tolerance = config.reach_tolerance if tolerance is None else tolerance
    env = ReachVectorEnv(n_goal_sets, config, time_limit=False)
    obs, info = env.reset(seed=seed)
    first_reach = np.full(n_goal_sets, -1)
    last_actions = []
    for t in range(config.max_episode_steps):
        action = controller(obs)
        if t >= config.max_episode_steps - SETTLE_STEPS:
            last_actions.append(action)
        obs, _, _, _, info = env.step(action)
        reached = (info["errors"] <= tolerance).all(axis=1)
        first_reach[(first_reach < 0) & reached] = t + 1
    errors = info["errors"]
    success = (errors <= tolerance).all(axis=1)
    times = first_reach[success] * config.control_period
    last_actions = np.asarray(last_actions)
    last = np.sign(last_actions)
    settled = np.abs(last_actions[-(SETTLE_STEPS // 2):, success])
    out = {"success_rate": float(success.mean()),
           "mean_score": float(np.mean(-np.log(np.maximum(errors, 1e-6)))),
           "time_to_reach_median": float(np.median(times)) if len(times) else float("nan"),
           "time_to_reach_mean": float(np.mean(times)) if len(times) else float("nan"),
           "left_after_reach_rate": float(np.mean((first_reach > 0) & ~success)),
           "action_sign_change_rate": float(np.mean(last[1:] != last[:-1])) if len(last) > 1 else float("nan"),
           "settled_action_abs_mean": float(settled.mean()) if settled.size else float("nan")}
    for i, ee in enumerate(env.spec.end_effectors):
        out[f"error_median_{ee}"] = float(np.median(errors[:, i]))
        out[f"error_p90_{ee}"] = float(np.percentile(errors[:, i], 90))
        out[f"score_{ee}"] = float(np.mean(-np.log(np.maximum(errors[:, i], 1e-6))))
    return out


def dls_controller(env_config: ReachConfig) -> Controller:
    """The damped-least-squares baseline as a normalized-action controller."""
    env = ReachVectorEnv(1, env_config)
    dls = DampedLeastSquares(env.kin, env.layout)
    return lambda obs: dls(obs) / env.spec.velocity_limits


@dataclass
class EvaluateConfig:
    """Evaluate an exported ONNX reach policy and the DLS baseline on the same held-out goal sets."""

    model: tyro.conf.Positional[str]
    """Shipped model name (models/<name>.onnx) or path to an ONNX policy."""
    goal_sets: int = 500
    """Goal sets (episodes)."""
    seed: int = HELD_OUT_SEED
    """Seed of start configurations and goal sets (default: the held-out seed of the model cards)."""


def onnx_controller(path: str | Path) -> tuple[Controller, ReachConfig]:
    """An exported ONNX policy as a normalized-action controller, and the reach task it was trained on."""
    policy = OnnxPolicy(path)
    limits = np.asarray(policy.contract.velocity_limits)
    return (lambda obs: policy(obs) / limits), ReachConfig(**policy.contract.training_config["env"])


def main(argv: list[str] | None = None) -> None:
    cfg = tyro.cli(EvaluateConfig, args=argv)
    policy, env = onnx_controller(resolve_model_path(cfg.model))
    results = {name: evaluate_reach(controller, env, cfg.goal_sets, cfg.seed)
               for name, controller in (("policy", policy), ("dls", dls_controller(env)))}
    print(json.dumps({name: {k: round(v, 4) for k, v in r.items()} for name, r in results.items()}, indent=2))


if __name__ == "__main__":
    main()
