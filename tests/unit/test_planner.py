"""The goal-configuration planner and planned observations."""

import numpy as np
import pytest

from mtpolicy.kinematics import Kinematics, sample_configurations
from mtpolicy.observation import ObservationLayout
from mtpolicy.planner import GoalConfigurationPlanner, PlannerConfig
from mtpolicy.robots import load_robot
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv


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


def test_time_optimal_planner_is_the_programs_target_and_travels_in_the_contract(tmp_path):
    """Issue 50, item 4: the planner ``time_optimal`` plans the time-optimal program's target (within the reach
    tolerance, inside the bound's box); the reach task fills in its tolerance and period, and the contract carries
    them and says what the planner computes, so a client rebuilds the same planner from the metadata alone."""
    from mtpolicy.policy import PolicyContract
    from mtpolicy.planner import TimeOptimalReference

    config = ReachConfig(goal_distribution="workspace", planned=True, planner=PlannerConfig(algorithm="time_optimal"))
    assert (config.planner.reach_tolerance, config.planner.control_period) == (config.reach_tolerance,
                                                                               config.control_period)
    with pytest.raises(ValueError, match="reach_tolerance and control_period"):
        GoalConfigurationPlanner(Kinematics(load_robot("planar8")), PlannerConfig(algorithm="time_optimal"))
    env = ReachVectorEnv(3, config, time_limit=False)
    env.reset(seed=5)
    reference = TimeOptimalReference(env.kin, config.control_period, config.reach_tolerance)
    v = env.spec.velocity_limits
    for q0, goals, planned in zip(env.joint_positions(), env.goals, env.goal_configs):
        optimum = reference.solve(q0, goals)
        assert np.array_equal(planned, optimum.target)
        assert np.linalg.norm(env.kin.ee_positions(planned) - goals, axis=1).max() <= config.reach_tolerance
        assert np.max(np.abs(planned - q0) / v) <= optimum.periods * config.control_period + 1e-9
    contract = PolicyContract.for_robot(env.spec, config.control_period, "test", {}, planner=config.planner.to_dict())
    meta = contract.to_metadata()
    read = PolicyContract.from_metadata(meta)
    assert PlannerConfig(**read.planner) == config.planner
    assert "time_optimal, the time-optimal program" in meta["observation_doc"]


def test_planned_env_observes_the_planned_goal_configuration():
    env = ReachVectorEnv(4, ReachConfig(goal_distribution="workspace", planned=True))
    obs, info = env.reset(seed=3)
    layout = env.layout
    assert layout == ObservationLayout.for_robot(8, 3, planned=True) and layout.planned
    q = obs[:, layout.slice("joint_pos")]
    np.testing.assert_allclose(obs[:, layout.slice("goal_config_error")], env.goal_configs - q, atol=1e-6)
    reached = env.kin.ee_positions_batch(env.goal_configs)
    assert np.linalg.norm(reached - env.goals, axis=-1).max() < 2e-3
