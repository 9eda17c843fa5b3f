"""The ik planner with avoid_collisions: a robot whose fastest IK solutions may put it into itself (GR1's arms and
gets a goal configuration free of collision where one converged, and candidates near the start find more."""

import numpy as np

from mtpolicy.kinematics import Kinematics, self_collisions
from mtpolicy.reach_task import sample_free_configurations
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


def test_candidates_near_the_start_find_the_free_solution_the_uniform_ones_miss():
    """A GR1 goal set (validation seed 20240517, set 73 of 2000) whose 24 uniform candidates all converge into
    collision: its goals lie near q0, and so does a free solution, which ``local_restarts`` candidates find."""
    kin = Kinematics(load_robot("gr1"))
    q0 = np.array([0.738563, 0.535146, -0.634431, 2.371031, -1.796016, -1.83216, -1.655549, -1.633822, 0.596256,
                   -1.361259, 0.56053, 0.849705, -1.069288, -2.212651, -0.296441, 0.13536, 1.223543])
    goals = np.array([[0.35065, -0.21224, 0.221552], [0.235511, 0.298183, 0.197616]])
    for local_restarts, collides in ((0, True), (24, False)):
        q, worst = GoalConfigurationPlanner(kin, PlannerConfig(avoid_collisions=True,
                                                               local_restarts=local_restarts)).plan(q0, goals)
        assert worst < 1e-3 and self_collisions(kin, q)[0] == collides
