"""The shipped GR1 policy on goal sets no configuration reaches, stepped in MuJoCo (issue 62): the planner's
closest configuration was in self-collision and the policy drove a hand into the robot (61-74 of 80 sampled states
in self-penetration per crossed goal set); now it folds to the closest configuration free of it, and moves there
without touching itself."""

import numpy as np

from helpers import UNREACHABLE_GOAL_SETS
from mtpolicy.kinematics import self_collisions
from mtpolicy.policy import resolve_model_path
from mtpolicy_training.envs.reach import ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import onnx_controller

SECONDS = 4.0
"""How long each goal set is driven (one sampled state per control period)."""


def test_the_shipped_gr1_policy_never_penetrates_itself_on_unreachable_goal_sets():
    controller, config = onnx_controller(resolve_model_path("gr1_reach"))
    goals = np.stack(UNREACHABLE_GOAL_SETS["gr1"])
    env = ReachVectorEnv(len(goals), config, time_limit=False)
    obs, _ = env.reset(options={"q": np.tile(env.kin.home, (len(goals), 1)), "goals": goals})
    penetrating = np.zeros(len(goals), dtype=int)
    for _ in range(round(SECONDS / config.control_period)):
        obs, *_ = env.step(controller(obs))
        penetrating += self_collisions(env.kin, env.joint_positions())
    assert not penetrating.any(), penetrating  # sampled states in self-penetration, per goal set
    assert np.abs(env.joint_positions() - env.goal_configs).max() < 0.05  # it went there: q* is not the start
    assert np.abs(env.goal_configs - env.kin.home).max(axis=1).min() > 0.5
