"""The ik planner with avoid_collisions: a robot whose fastest IK solutions may put it into itself (GR1's arms and
torso) gets a goal configuration free of collision where one converged."""

import numpy as np

from mtpolicy.kinematics import Kinematics, sample_free_configurations, self_collisions
from mtpolicy.planner import GoalConfigurationPlanner, PlannerConfig
from mtpolicy.robots import load_robot


def test_the_planner_prefers_goal_configurations_free_of_collision():
    kin = Kinematics(load_robot("gr1"))  # its meshes come from robosuite, which make setup installs
    rng = np.random.default_rng(5)
    starts = sample_free_configurations(kin, rng, 30)
    goals = kin.ee_positions_batch(sample_free_configurations(kin, rng, 30, around=starts, joint_range=1.0))
    fastest = GoalConfigurationPlanner(kin, PlannerConfig(restarts=8))
    free = GoalConfigurationPlanner(kin, PlannerConfig(restarts=8, avoid_collisions=True))
    plans = {name: [p.plan(q, g) for q, g in zip(starts, goals)] for name, p in (("fastest", fastest), ("free", free))}
    collide = {name: self_collisions(kin, np.stack([q for q, _ in ps])) for name, ps in plans.items()}
    assert collide["fastest"].any() and not collide["free"].any()
    assert max(worst for _, worst in plans["free"]) < 1e-3  # still solutions
