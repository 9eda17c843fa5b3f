"""The planned reach task (training's reach env with the runtime's goal-configuration planner): the planner's
target and its contract, the planned observation."""

import numpy as np
import pytest

from mtpolicy.kinematics import Kinematics
from mtpolicy.observation import ObservationLayout
from mtpolicy.planner import GoalConfigurationPlanner, PlannerConfig
from mtpolicy.robots import load_robot
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv


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
