"""The humanoid's two-hand reach env, its trainer's defaults and the DLS baseline on it (the robot model and chains:
tests/unit/test_humanoid.py; bring-up over DDS: tests/ros/test_humanoid_bringup.py)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mtpolicy_training.envs  # noqa: F401  (registers the env ids)
from mtpolicy.observation import ObservationLayout
from mtpolicy_training.envs.reach import ReachConfig
from mtpolicy_training.envs.reach_evaluation import dls_controller, evaluate_reach
from mtpolicy_training.train.digrad import DiGradTrainConfig as TrainConfig

TOLERANCE = 0.03


def test_env_is_registered_checked_deterministic_and_uses_3_cm():
    env = gym.make("mtpolicy/HumanoidTwoHandReach-v0")
    assert env.unwrapped.config.reach_tolerance == TOLERANCE and env.spec.max_episode_steps == 60
    with pytest.warns(UserWarning):  # unbounded Box warnings only
        check_env(env.unwrapped, skip_render_check=True)
    assert env.action_space.shape == (13,)

    actions = np.random.default_rng(0).uniform(-1, 1, (20, 13))
    rollouts = {seed: [env.reset(seed=seed)[0]] + [env.step(a)[0] for a in actions] for seed in (4, 5)}
    np.testing.assert_array_equal(rollouts[4], [env.reset(seed=4)[0]] + [env.step(a)[0] for a in actions])
    assert not np.array_equal(rollouts[4], rollouts[5])


def test_train_cli_picks_the_humanoid_defaults():
    import tyro

    config = tyro.cli(TrainConfig, args=["--robot", "humanoid", "--algo.method", "ddpg"])
    assert config.env.reach_tolerance == TOLERANCE and config.env.reward_mode == "ddpg"
    assert config.env.goal_joint_range == 1.0
    custom = tyro.cli(TrainConfig, args=["--robot", "humanoid", "--reach-tolerance", "0.05"])
    assert custom.env.reach_tolerance == 0.05
    assert tyro.cli(TrainConfig, args=[]).env.reach_tolerance == ReachConfig().reach_tolerance == 0.02  # planar8


def test_evaluator_success_follows_the_env_reach_tolerance():
    config = ReachConfig(robot="humanoid")
    dls = dls_controller(config)
    error = ObservationLayout.for_robot(13, 2).slice("goal_error")

    def stop_25_mm_short(obs: np.ndarray) -> np.ndarray:
        """DLS towards each goal moved 25 mm along -x: the hands settle 25 mm from their goals."""
        shifted = obs.copy()
        shifted[:, error] -= np.tile([0.025, 0.0, 0.0], 2)
        return dls(shifted)
    assert evaluate_reach(stop_25_mm_short, config, 8)["success_rate"] >= 0.75
    assert evaluate_reach(stop_25_mm_short, dataclasses.replace(config, reach_tolerance=0.02), 8)["success_rate"] == 0


def test_dls_reaches_held_out_goal_sets(humanoid):
    config = ReachConfig(robot="humanoid")
    result = evaluate_reach(dls_controller(config), config, 40)
    assert result["success_rate"] >= 0.95, result  # 0.998 on 500 sets (docs/humanoid.md)
    assert result["time_to_reach_median"] <= 1.5, result
