"""The planner never chooses a configuration in self-collision: of the ik planner's converged candidates
(avoid_collisions) the fastest free one, else the closest free one with a free joint-space line from the start,
else it rejects the goal set; the time-optimal planner's target likewise (GR1's arms and Tiago's meet)."""

import math
from dataclasses import replace

import numpy as np
import pytest

from helpers import UNREACHABLE_GOAL_SETS
from mtpolicy.kinematics import Kinematics, self_collisions
from mtpolicy.reach_task import sample_free_configurations
from mtpolicy.planner import GoalConfigurationPlanner, PlannerConfig
from mtpolicy.policy import OnnxPolicy, resolve_model_path
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
    collision, and none short of its goals is free with a free line to it (the set is rejected: before issue 62 a
    solution in collision was taken): its goals lie near q0, and so does a free solution, which ``local_restarts``
    candidates find."""
    kin = Kinematics(load_robot("gr1"))
    q0 = np.array([0.738563, 0.535146, -0.634431, 2.371031, -1.796016, -1.83216, -1.655549, -1.633822, 0.596256,
                   -1.361259, 0.56053, 0.849705, -1.069288, -2.212651, -0.296441, 0.13536, 1.223543])
    goals = np.array([[0.35065, -0.21224, 0.221552], [0.235511, 0.298183, 0.197616]])
    rejected, worst = GoalConfigurationPlanner(kin, PlannerConfig(avoid_collisions=True)).plan(q0, goals)
    assert worst == math.inf and np.array_equal(rejected, q0)
    q, worst = GoalConfigurationPlanner(kin, PlannerConfig(avoid_collisions=True, local_restarts=24)).plan(q0, goals)
    assert worst < 1e-3 and not self_collisions(kin, q)[0]


@pytest.mark.parametrize("robot", sorted(UNREACHABLE_GOAL_SETS))
def test_on_unreachable_goal_sets_the_planner_takes_the_closest_configuration_free_of_self_collision(robot):
    """Issue 62: with nothing converged, the closest candidate was taken unchecked, and GR1 drove a hand into its
    head. Now it is the closest free one whose joint moves from the start are free too (one GR1 crossed set's
    closest free candidates all had their line through the other arm: the arms met on the way and stuck)."""
    kin = Kinematics(load_robot(robot))
    config = PlannerConfig(**OnnxPolicy(resolve_model_path(f"{robot}_reach")).contract.planner)
    planner = GoalConfigurationPlanner(kin, config)
    for goals in UNREACHABLE_GOAL_SETS[robot]:
        q, worst = planner.plan(kin.home, goals)
        assert config.tolerance < worst < math.inf, goals  # unreachable, and not rejected
        assert not self_collisions(kin, np.vstack([q, planner.moves(kin.home, q)])).any(), goals


def test_a_goal_set_with_no_candidate_free_of_self_collision_is_rejected():
    kin = Kinematics(load_robot("gr1"))
    config = PlannerConfig(restarts=0, avoid_collisions=True)  # one candidate: the start, refined into the arms
    q, worst = GoalConfigurationPlanner(kin, config).plan(kin.home, UNREACHABLE_GOAL_SETS["gr1"][1])
    assert worst == math.inf and np.array_equal(q, kin.home)
    assert config.rejection == "every candidate configuration, or a joint move to it from the start, is in " \
                               "self-collision"


def test_the_time_optimal_planner_avoiding_collisions_takes_the_ik_plan_where_its_target_collides():
    """A local GR1 goal set whose program target (the program has no collision constraint) puts the arms into
    each other: the planner answers the ``ik`` planner's q*, free of self-collision on the way and at the end."""
    kin = Kinematics(load_robot("gr1"))
    q0 = np.array([-0.48, -0.038, 0.147, -0.739, -0.448, 1.221, -2.084, -2.598, -0.382, 0.537, 1.816, 1.773, 1.621,
                   -0.491, -1.912, 0.199, 1.27])
    goals = np.array([[0.079, -0.112, -0.079], [-0.348, 0.105, 0.762]])
    config = PlannerConfig(algorithm="time_optimal", reach_tolerance=0.02, control_period=0.05)
    target, worst = GoalConfigurationPlanner(kin, config).plan(q0, goals)
    assert worst <= 0.02 and self_collisions(kin, target)[0]
    planner = GoalConfigurationPlanner(kin, replace(config, avoid_collisions=True, finish_at_goal=True))
    q, worst = planner.plan(q0, goals)
    assert worst < planner.config.tolerance and not self_collisions(kin, np.vstack([q, planner.moves(q0, q)])).any()
    assert np.array_equal(q, planner._ik(q0, goals)[0])
    finish, finish_worst = planner.finish(q0, goals)
    assert finish_worst <= worst and not self_collisions(kin, finish)[0]
