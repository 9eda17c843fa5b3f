"""A robot's acceleration limits in training and evaluation: the reach env ramps its commands at a_max as the
controller node does, and the time-optimal bound is the least time under the same limits."""

from pathlib import Path

import numpy as np

from mtpolicy.planner import TimeOptimalReference
from mtpolicy_training.algos.dagger import DaggerConfig, Teacher
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import dls_controller, evaluate_reach
from mtpolicy_training.envs.time_optimal import bound_table

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "robots"
LIMITED = ReachConfig(robot=str(FIXTURES / "arm3_limited"))
UNLIMITED = ReachConfig(robot=str(FIXTURES / "arm3"))
SEED = 4243  # neither a validation nor a test seed


def test_the_env_sends_commands_ramped_at_the_acceleration_limits_from_rest():
    env = ReachVectorEnv(3, LIMITED, time_limit=False)
    env.reset(seed=SEED)
    a_dt = env.spec.acceleration_limits * LIMITED.control_period
    rng = np.random.default_rng(0)
    previous = np.zeros((3, env.spec.n_joints))
    for t in range(12):
        action = np.ones((3, env.spec.n_joints)) if t < 6 else rng.uniform(-1, 1, (3, env.spec.n_joints))
        env.step(action)
        assert np.all(np.abs(env.commands - previous) <= a_dt + 1e-12)
        previous = env.commands.copy()
    assert np.any(np.abs(env.commands) > 0)
    env.reset()
    assert np.array_equal(env.commands, np.zeros_like(env.commands))


def test_the_bound_counts_the_ramp_and_no_controller_beats_it():
    n = 8
    limited, unlimited = bound_table(LIMITED, n, SEED), bound_table(UNLIMITED, n, SEED)
    assert limited.key["acceleration_limits"] != unlimited.key["acceleration_limits"]
    assert np.all(limited.periods >= unlimited.periods) and np.any(limited.periods > unlimited.periods)
    result = evaluate_reach(dls_controller(LIMITED), LIMITED, n, SEED, bound=limited.bound_seconds, per_set=True)
    ratios = result["per_set"]["time_ratio"]
    assert result["success_rate"] >= 0.5 and np.nanmin(ratios) >= 1.0


def test_the_solution_lies_in_the_ramped_box():
    env = ReachVectorEnv(4, LIMITED, time_limit=False)
    env.reset(seed=SEED)
    reference = TimeOptimalReference(env.kin, LIMITED.control_period, LIMITED.reach_tolerance)
    for q0, goals in zip(env.joint_positions(), env.goals):
        opt = reference.solve(q0, goals)
        reach = reference.travel.distance(opt.periods * LIMITED.control_period)
        assert np.all(np.abs(opt.target - q0) <= reach + 1e-9)
        assert reference.seconds_to(opt.q, q0) <= opt.seconds + 1e-9


def test_the_servo_teacher_brakes_in_time_for_the_ramp_and_never_leaves_a_goal_it_reached():
    env = ReachVectorEnv(16, LIMITED, time_limit=False)
    obs, info = env.reset(seed=SEED)
    teacher = Teacher(DaggerConfig(teacher="servo", saturation="clip"), env)
    reached = np.zeros(16, dtype=bool)
    for _ in range(80):
        obs, _, _, _, info = env.step(teacher(obs))
        within = (info["errors"] <= LIMITED.reach_tolerance).all(axis=1)
        assert not np.any(reached & ~within)  # an overshoot out of the tolerance after reaching
        reached |= within
    assert reached.mean() >= 0.9
