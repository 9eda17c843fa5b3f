"""The reach evaluator: one protocol for learned policies and the DLS baseline.

Every controller is a function from a batch of observations to normalized
joint velocities in [-1, 1]. It runs on ``n_goal_sets`` episodes whose start
configurations and goal sets come from a held-out seed, for the env's full
episode length. Success: every end effector within ``tolerance`` of its goal
at the end of the episode. Time to reach: the first step at which all end
effectors are within tolerance, in seconds, over successful episodes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from mtpolicy.dls import DampedLeastSquares
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv

HELD_OUT_SEED = 20_240_517
"""Seed of the final evaluation's goal sets; training never draws from it, nor selects on it."""
VALIDATION_SEED = 20_240_518
"""Seed of the periodic evaluations during training, on which the best policy of a run is selected."""

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
    for t in range(config.max_episode_steps):
        obs, _, _, _, info = env.step(controller(obs))
        reached = (info["errors"] <= tolerance).all(axis=1)
        first_reach[(first_reach < 0) & reached] = t + 1
    errors = info["errors"]
    success = (errors <= tolerance).all(axis=1)
    times = first_reach[success] * config.control_period
    out = {"success_rate": float(success.mean()),
           "mean_score": float(np.mean(-np.log(np.maximum(errors, 1e-6)))),
           "time_to_reach_median": float(np.median(times)) if len(times) else float("nan"),
           "time_to_reach_mean": float(np.mean(times)) if len(times) else float("nan")}
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
