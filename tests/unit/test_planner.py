"""The goal-configuration planner (its planned reach task: tests/training/test_planned_env.py)."""

import numpy as np
import pytest

from benchmarks.planner_fallback import misses
from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import sample_configurations
from mtpolicy.planner import GoalConfigurationPlanner, PlannerConfig
from mtpolicy.robots import load_robot


@pytest.mark.parametrize("robot", ["planar8", "humanoid"])
def test_planner_reaches_workspace_goal_sets_within_the_limits(robot):
    spec = load_robot(robot)
    kin = Kinematics(spec)
    rng = np.random.default_rng(0)
    starts, targets = sample_configurations(spec, rng, 8), sample_configurations(spec, rng, 8)
    planner = GoalConfigurationPlanner(kin)
    for q0, goals in zip(starts, kin.ee_positions_batch(targets)):
        q, worst = planner.plan(q0, goals)
        assert worst < planner.config.tolerance
        assert np.linalg.norm(kin.ee_positions(q) - goals, axis=1).max() == pytest.approx(worst)
        assert (q >= spec.joint_limits[:, 0]).all() and (q <= spec.joint_limits[:, 1]).all()
        assert np.array_equal(planner.plan(q0, goals)[0], q)  # a function of its inputs


def test_planner_keeps_a_start_that_already_solves_the_goal_set():
    spec = load_robot("planar8")
    kin = Kinematics(spec)
    q0 = sample_configurations(spec, np.random.default_rng(1), 1)[0]
    q, worst = GoalConfigurationPlanner(kin).plan(q0, kin.ee_positions(q0))
    assert worst == 0 and np.array_equal(q, q0)


def test_planner_config_refuses_bad_values():
    with pytest.raises(ValueError, match="restarts"):
        PlannerConfig(restarts=-1)
    with pytest.raises(ValueError, match="fallback_restarts"):
        PlannerConfig(fallback_restarts=-1)


def test_fallback_restarts_reach_a_reachable_goal_set_the_restarts_miss():
    """A planar8 goal set (made by a configuration within the limits) that the 24 restarts and the start miss by
    more than 5 cm: the fallback candidates, refined only then, reach it; a set the restarts reach is planned as
    without them (the same q*)."""
    spec = load_robot("planar8")
    kin = Kinematics(spec)
    configurations = sample_configurations(spec, np.random.default_rng(10), 566)
    q0, missed, reached = configurations[0], kin.ee_positions(configurations[565]), kin.ee_positions(configurations[1])
    plain, fallback = (GoalConfigurationPlanner(kin, PlannerConfig(fallback_restarts=n)) for n in (0, 96))
    assert plain.plan(q0, missed)[1] > 0.05
    assert fallback.plan(q0, missed)[1] < fallback.config.tolerance
    assert np.array_equal(plain.plan(q0, reached)[0], fallback.plan(q0, reached)[0])
    counted = [misses(p, q0[None], np.stack([missed, reached])) for p in (plain, fallback)]  # the benchmark counts
    assert [c["misses"] for c in counted] == [1, 0] and counted[0]["largest_miss_mm"] > 50, counted


def test_a_timed_refinement_lands_as_close_and_moves_the_slow_joint_less():
    """Tiago's torso lift (0.07 m/s against 1.5 rad/s for the arm joints): weighting the damped Newton steps by the
    velocity limits squared lands on the goals as the plain steps do, in less time at the limits."""
    spec = load_robot("tiago")
    kin = Kinematics(spec)
    planner = GoalConfigurationPlanner(kin, PlannerConfig(tolerance=1e-4))
    rng = np.random.default_rng(3)
    starts = sample_configurations(spec, rng, 10)
    goals = kin.ee_positions_batch(np.clip(starts + rng.uniform(-0.1, 0.1, starts.shape), planner.low, planner.high))
    seconds = {}
    for timed in (False, True):
        ends = [planner.refine(q, g, timed=timed) for q, g in zip(starts, goals)]
        assert max(worst for _, worst in ends) < 1e-4
        seconds[timed] = np.array([np.max(np.abs(q - q0) / spec.velocity_limits) for (q, _), q0 in zip(ends, starts)])
    assert seconds[True].mean() < 0.5 * seconds[False].mean(), seconds


def test_the_finish_takes_over_inside_the_tolerance_or_once_the_joints_arrive_at_the_target():
    config = PlannerConfig(algorithm="time_optimal", finish_at_goal=True, reach_tolerance=0.02, control_period=0.05)
    errors = np.array([[0.01, 0.019], [0.01, 0.021], [0.01, 0.021], [0.03, 0.03]])
    travel = np.array([1.0, 1.0, 0.025, 0.026])  # s at the velocity limits: the last two within and past dt / 2
    assert config.finishes(errors, travel).tolist() == [True, False, True, False]
    assert not PlannerConfig(algorithm="time_optimal", reach_tolerance=0.02, control_period=0.05).finishes(
        errors, travel).any()  # without finish_at_goal, q* stays the target
