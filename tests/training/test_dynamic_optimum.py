"""The dynamic optimum: its sequences settle in the evaluator at the step found, never before the velocity bound,
no controller settles sooner on these sets, the shooting solver repairs a sequence that falls short, a
controller's path gives targets the bound's solver misses, and tables are cached by their key."""

import json
from dataclasses import replace

import numpy as np
import pytest

from mtpolicy_training.envs.dynamic_optimum import (ControllerPaths, DynamicOptimumConfig, ShootingProblem,
                                                    optimum_table, replay_controller, resample)
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import dls_controller, evaluate_reach, onnx_controller
from mtpolicy_training.envs.time_optimal import TimeOptimalController

CONFIG = ReachConfig("planar8")
SEED = 4242  # neither a validation nor a test seed
SMALL = DynamicOptimumConfig(max_evaluations=8, extra_periods=4, refine_starts=1)
N_SETS = 4


@pytest.fixture(scope="module")
def table():
    return optimum_table(CONFIG, N_SETS, SEED, config=SMALL)


def test_the_sequences_settle_in_the_evaluator_at_the_optimum_and_never_before_the_bound(table):
    assert (table.periods >= 1).all()
    assert (table.periods >= table.bound_periods).all()
    replayed = evaluate_reach(replay_controller(table, CONFIG), CONFIG, N_SETS, SEED, per_set=True)["per_set"]
    assert replayed["held"].all()
    np.testing.assert_allclose(replayed["time_to_settle"], table.seconds)


def test_no_controller_settles_before_the_optimum(table):
    policy, policy_config = onnx_controller("models/planar8_reach.onnx")
    assert policy_config.reach_tolerance == CONFIG.reach_tolerance
    closed_loop = TimeOptimalController(ReachVectorEnv(1, CONFIG), SMALL.hold_gain)
    for controller in (dls_controller(CONFIG), policy, closed_loop):
        settle = evaluate_reach(controller, CONFIG, N_SETS, SEED, per_set=True)["per_set"]["time_to_settle"]
        held = np.isfinite(settle)
        assert held.sum() >= N_SETS - 1
        assert (np.round(settle[held] / CONFIG.control_period) >= table.periods[held]).all()


def test_shooting_repairs_a_sequence_that_stops_short():
    problem = ShootingProblem(CONFIG, CONFIG.reach_tolerance, DynamicOptimumConfig(tail="zero", max_evaluations=15))
    env = ReachVectorEnv(1, CONFIG, time_limit=False)
    env.reset(seed=SEED)
    q0, goals = env.joint_positions()[0], env.goals[0]
    bound = problem.reference.solve(q0, goals)
    periods = bound.periods + 2
    half = problem._starts(q0, ControllerPaths([], [q0 + (bound.target - q0) / 2]), periods, None)[0]  # half-way

    def cost(commands: np.ndarray) -> float:
        errors = problem.rollout(q0, goals, commands[None], problem.config.tail_periods)
        return float((problem._residuals(errors, periods) ** 2).sum())

    assert cost(half) > 1e-4
    repaired = problem._optimize(q0, goals, half)
    assert np.abs(repaired).max() <= 1.0
    assert cost(repaired) < 1e-3 * cost(half)


def test_a_controllers_path_gives_a_nearer_solution_than_the_bounds_solver_found():
    """planar8 workspace set 3 of 10 of seed 20240518: the bound's solver ends at N* = 32 periods from all its
    starts; mink's path passes a configuration within tolerance 15 periods away at the velocity limits."""
    _, config = onnx_controller("models/planar8_reach.onnx")
    config = replace(config, goal_distribution="workspace")
    env = ReachVectorEnv(10, config, time_limit=False)
    env.reset(seed=20240518)
    q0, goals = env.joint_positions()[3], env.goals[3]
    alone = ShootingProblem(config, config.reach_tolerance, replace(SMALL, controller_starts=())).solve(q0, goals)
    assert alone.periods >= alone.bound_periods == 32
    with_mink = ShootingProblem(config, config.reach_tolerance, replace(SMALL, controller_starts=("mink",)))
    assert with_mink.solve(q0, goals).periods <= 15


def test_resampling_keeps_the_displacement():
    commands = np.array([[0.2, -0.4], [0.6, 0.0], [0.1, 0.3]])
    for periods in (2, 3, 6):
        np.testing.assert_allclose(resample(commands, periods).sum(axis=0), commands.sum(axis=0))
    np.testing.assert_allclose(resample(commands, 3), commands)


def test_tables_are_cached_by_their_key(tmp_path, table):
    first = optimum_table(CONFIG, N_SETS, SEED, config=SMALL, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.json")
    np.testing.assert_array_equal(first.periods, table.periods)
    stored = json.loads(path.read_text())
    stored["periods"] = [99] * N_SETS  # read back, not solved again
    path.write_text(json.dumps(stored))
    again = optimum_table(CONFIG, N_SETS, SEED, config=SMALL, cache_dir=tmp_path)
    assert again.periods.tolist() == [99] * N_SETS
    for a, b in zip(again.commands, table.commands):
        np.testing.assert_array_equal(a, b)
    other = optimum_table(CONFIG, N_SETS, SEED, config=DynamicOptimumConfig(max_evaluations=8, extra_periods=4),
                          cache_dir=tmp_path)  # another key: solved, the file rewritten
    np.testing.assert_array_equal(other.periods, table.periods)
    assert json.loads(path.read_text())["periods"] == table.periods.tolist()


def test_bad_config_is_one_clear_error():
    with pytest.raises(ValueError, match="margin"):
        DynamicOptimumConfig(margin=1.5)
