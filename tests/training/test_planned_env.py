"""The planned reach task (training's reach env with the runtime's goal-configuration planner): the planner's
target and its contract, the planned observation."""

from dataclasses import replace

import numpy as np
import pytest

from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import sample_configurations
from mtpolicy.observation import ObservationLayout
from mtpolicy.planner import GoalConfigurationPlanner, PlannerConfig
from mtpolicy.robots import load_robot
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv


def test_time_optimal_planner_is_the_programs_target_and_travels_in_the_contract(tmp_path):
    """Issue 50, item 4: the planner ``time_optimal`` plans the time-optimal program's target (within the reach
    tolerance, inside the bound's box); the reach task fills in its tolerance and period, and the contract carries
    them and says what the planner computes, so a client rebuilds the same planner from the metadata alone."""
    from mtpolicy.policy import PolicyContract
    from mtpolicy.time_optimal_program import TimeOptimalReference

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


def test_finish_at_goal_enters_as_soon_and_ends_at_the_goals():
    """Issue 65: the time-optimal program's target lies inside the tolerance (target_depth of it), so a servo to it
    ends there. With ``finish_at_goal`` q* is that target until the end effectors enter the tolerance or the joints
    arrive within half a period of it, then its finish, refined onto the goals: the servo enters no later (here,
    where its slow tail arrives outside the tolerance, sooner) and ends at the goals."""
    dt = 0.05

    def run(finish: bool) -> tuple[np.ndarray, np.ndarray, ReachVectorEnv, np.ndarray]:
        planner = PlannerConfig(algorithm="time_optimal", finish_at_goal=finish)
        env = ReachVectorEnv(4, ReachConfig(goal_distribution="workspace", planned=True, planner=planner),
                             time_limit=False)
        obs, info = env.reset(seed=5)
        targets, entered = env.goal_configs.copy(), np.full(4, -1)
        v, error = env.spec.velocity_limits, env.layout.slice("goal_config_error")
        for t in range(80):  # the servo to q*, at full speed where it is far
            obs, _, _, _, info = env.step(np.clip(obs[:, error] / (2 * dt * v), -1.0, 1.0))
            entered[(entered < 0) & (info["errors"] <= env.config.reach_tolerance).all(axis=1)] = t
        return entered, info["errors"], env, targets

    entered, errors, env, targets = run(False)
    finish_entered, finish_errors, finish_env, finish_targets = run(True)
    assert np.array_equal(finish_targets, targets) and (entered >= 0).all()  # the program's target first
    assert (finish_entered <= entered).all() and (finish_entered < entered).any(), (finish_entered, entered)
    assert errors.max() > 5e-3 and finish_errors.max() < 1e-3
    assert np.array_equal(finish_env.goal_configs, finish_env.finish_configs)
    goals = finish_env.goals
    assert (np.linalg.norm(finish_env.kin.ee_positions_batch(finish_env.finish_configs) - goals, axis=-1) < 1e-3).all()


def test_finish_restarts_land_where_the_targets_branch_reaches_the_goals_only_within_tolerance():
    """Issue 65: on a goal set (seed 23, set 4) where the damped Newton steps from the program's target stop 4 mm
    from the goals, the ``finish_restarts`` refinements from offsets of the target find a finish on the goals whose
    joint-space line from the target stays within the reach tolerance; the planner refuses a negative count."""
    env = ReachVectorEnv(8, ReachConfig(goal_distribution="workspace"), time_limit=False)
    env.reset(seed=23)
    q0, goals = env.joint_positions()[4], env.goals[4]
    config = PlannerConfig(algorithm="time_optimal", reach_tolerance=0.02, control_period=0.05, finish_at_goal=True,
                           tolerance=1e-4)
    single = GoalConfigurationPlanner(env.kin, config)
    planner = GoalConfigurationPlanner(env.kin, replace(config, finish_restarts=32))
    target, target_worst = planner.plan(q0, goals)
    assert single.finish(q0, goals)[1] > 1e-3 and target_worst <= 0.02
    finish, worst = planner.finish(q0, goals)
    assert worst < 1e-4 and np.linalg.norm(env.kin.ee_positions(finish) - goals, axis=1).max() == pytest.approx(worst)
    line = target + np.linspace(0.0, 1.0, 50)[:, None] * (finish - target)
    assert np.linalg.norm(env.kin.ee_positions_batch(line) - goals, axis=-1).max() <= 0.02
    assert np.array_equal(planner.finish(q0, goals)[0], finish)  # a function of its inputs
    with pytest.raises(ValueError, match="finish_restarts"):
        replace(config, finish_restarts=-1)


def test_a_goal_set_within_tolerance_at_the_start_observes_its_finish_at_once():
    planner = PlannerConfig(algorithm="time_optimal", finish_at_goal=True)
    env = ReachVectorEnv(2, ReachConfig(goal_distribution="workspace", planned=True, planner=planner),
                         time_limit=False)
    q0 = sample_configurations(env.spec, np.random.default_rng(2), 2)
    goals = env.kin.ee_positions_batch(q0) + np.array([0.012, 0.0, 0.0])  # 12 mm off: within the 20 mm tolerance
    obs, _ = env.reset(options={"q": q0, "goals": goals})
    assert not np.array_equal(env.goal_configs, q0)  # the program's q* = q0, finished at once
    np.testing.assert_allclose(obs[:, env.layout.slice("goal_config_error")], env.goal_configs - q0, atol=1e-6)
    assert (np.linalg.norm(env.kin.ee_positions_batch(env.goal_configs) - goals, axis=-1) < 1e-3).all()


def test_replan_changes_the_planner_of_a_model_and_nothing_else(tmp_path):
    from mtpolicy.policy import MODELS_DIR, OnnxPolicy
    from mtpolicy_training.envs.reach_evaluation import onnx_controller
    from mtpolicy_training.ship.replan import replan

    model, out = MODELS_DIR / "planar8_reach_workspace.onnx", tmp_path / "flipped.onnx"
    before = OnnxPolicy(model)
    flipped = not before.contract.planner.get("finish_at_goal", False)  # the shipped model's, turned over
    replan(model, {"finish_at_goal": flipped}, out)
    after = OnnxPolicy(out)  # loading verifies the checksum
    assert after.contract.planner["finish_at_goal"] is flipped
    assert after.contract.training_config["replan"]["finish_at_goal"] is flipped
    assert onnx_controller(out)[1].planner.finish_at_goal is flipped  # the evaluator's env plans as the contract says
    obs = np.random.default_rng(0).normal(size=(5, after.contract.observation_layout.size)).astype(np.float32)
    assert np.array_equal(before(obs), after(obs))
    for changes, message in (({"exact": True}, "exact"), ({"damping": -1.0}, "damping")):
        with pytest.raises(ValueError, match=message):
            replan(model, changes, tmp_path / "bad.onnx")
    with pytest.raises(ValueError, match="replace the model"):
        replan(out, {"finish_at_goal": False}, out)
    with pytest.raises(ValueError, match="not a planner-conditioned"):
        replan(MODELS_DIR / "planar8_reach.onnx", {"finish_at_goal": True}, tmp_path / "local.onnx")
