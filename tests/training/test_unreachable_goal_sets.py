"""The shipped default policies of the two-armed robots on goal sets no configuration reaches (hands crossed, or
too far apart), stepped in MuJoCo behind the controller node's collision guard, as the node commands them (issue
62): the policy alone drove a hand into the robot (GR1's planner-conditioned policy before the planner avoided
self-collision: 61-74 of 80 sampled states in self-penetration per crossed goal set; Tiago's local policy, which
has no collision model, 8-48); the stack never penetrates itself and still moves the hands towards the goals."""

import numpy as np
import pytest

from helpers import UNREACHABLE_GOAL_SETS
from mtpolicy.kinematics import self_collisions
from mtpolicy.policy import resolve_model_path
from mtpolicy_training.envs.reach import ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import guarded_controller, onnx_controller

SECONDS = 4.0
"""How long each goal set is driven (one sampled state per control period)."""


@pytest.mark.parametrize("robot", sorted(UNREACHABLE_GOAL_SETS))
def test_the_shipped_policy_behind_the_collision_guard_never_penetrates_itself(robot):
    policy, config = onnx_controller(resolve_model_path(f"{robot}_reach"))
    controller = guarded_controller(policy, config)
    goals = np.stack(UNREACHABLE_GOAL_SETS[robot])
    env = ReachVectorEnv(len(goals), config, time_limit=False)
    obs, _ = env.reset(options={"q": np.tile(env.kin.home, (len(goals), 1)), "goals": goals})
    distance_at_home = np.linalg.norm(env.kin.ee_positions_batch(env.joint_positions()) - goals, axis=2).sum(axis=1)
    penetrating = np.zeros(len(goals), dtype=int)
    for _ in range(round(SECONDS / config.control_period)):
        obs, *_ = env.step(controller(obs))
        penetrating += self_collisions(env.kin, env.joint_positions())
    assert not penetrating.any(), penetrating  # sampled states in self-penetration, per goal set
    distance = np.linalg.norm(env.kin.ee_positions_batch(env.joint_positions()) - goals, axis=2).sum(axis=1)
    assert (distance < distance_at_home - 0.1).all(), distance_at_home - distance  # the hands went towards them
