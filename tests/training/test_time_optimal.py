"""The time-optimal reference: its solution satisfies the program, no controller beats the bound, the
closed-loop teacher attains it on planar8 and commands zero at the goal, tables are cached by their key, and
the row workers that label with it keep each row's state."""

import json
import math
from dataclasses import replace
from functools import partial

import numpy as np
import pytest

from mtpolicy.kinematics import path_collides
from mtpolicy.time_optimal_program import SolverConfig, TimeOptimalReference
from mtpolicy_training.core.row_workers import RowWorkers
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import evaluate_reach, mink_controller
from mtpolicy_training.envs.time_optimal import TimeOptimalController, bound_table

CONFIG = ReachConfig()
SEED = 4242  # neither a validation nor a test seed


def test_the_solution_satisfies_the_program_and_rounds_up_to_whole_periods():
    env = ReachVectorEnv(6, CONFIG, time_limit=False)
    env.reset(seed=SEED)
    reference = TimeOptimalReference(env.kin, CONFIG.control_period, CONFIG.reach_tolerance)
    v, dt, tol = env.spec.velocity_limits, CONFIG.control_period, CONFIG.reach_tolerance
    for q0, goals in zip(env.joint_positions(), env.goals):
        opt = reference.solve(q0, goals)
        assert opt.periods == math.ceil(opt.seconds / dt - 1e-9) >= 1
        assert np.linalg.norm(goals - env.kin.ee_positions(opt.q), axis=1).max() <= tol * (1 + 1e-5)
        assert np.max(np.abs(opt.q - q0) / v) <= opt.seconds + 1e-9
        # the teacher's target: within the bound's box, every end effector within tolerance
        assert np.all(np.abs(opt.target - q0) <= opt.periods * dt * v + 1e-9)
        assert opt.worst_error <= tol * (1 + 1e-5)


def test_no_controller_reaches_sooner_than_the_bound_and_the_teacher_attains_it():
    n = 12
    bound = bound_table(CONFIG, n, SEED).bound_seconds
    mink = evaluate_reach(mink_controller(CONFIG), CONFIG, n, SEED, bound=bound)
    teacher = evaluate_reach(TimeOptimalController(ReachVectorEnv(1, CONFIG), hold_gain=12.0), CONFIG, n, SEED,
                             bound=bound)
    assert mink["success_rate"] >= 0.8 and mink["time_ratio_median"] >= 1.0
    assert teacher["success_rate"] == 1.0 and teacher["time_ratio_median"] == 1.0
    assert teacher["dither_sign_changes"] == 0.0


def test_the_teacher_commands_exactly_zero_at_the_goal():
    env = ReachVectorEnv(4, CONFIG, time_limit=False)
    env.reset(seed=SEED)
    q = env.joint_positions()
    obs, _ = env.reset(options={"q": q, "goals": env.kin.ee_positions_batch(q)})
    assert np.array_equal(TimeOptimalController(env, hold_gain=12.0)(obs), np.zeros_like(q))


def test_the_free_line_teacher_takes_a_target_as_fast_whose_straight_line_is_free():
    """GR1, whose arms reach its body: on a goal set where the fastest target's straight line from the start puts
    the robot into a new self-collision (goal set 19 of 64 drawn from seed SEED + 2), the teacher with
    ``free_line_starts`` takes one in as many periods whose line is free, and draws ``free_samples`` states on it;
    on planar8, none of whose geoms can touch, it never looks."""
    config = ReachConfig(robot="gr1", goal_distribution="local")
    env = ReachVectorEnv(64, config, time_limit=False)
    env.reset(seed=SEED + 2)
    q0, goals = env.joint_positions()[19], env.goals[19]
    solver = SolverConfig(local_starts=8, global_starts=0, refine_starts=3)
    fastest = TimeOptimalController(ReachVectorEnv(1, config), 12.0, solver).solve(q0, goals)
    teacher = TimeOptimalController(ReachVectorEnv(1, config), 12.0, solver, free_line_starts=24)
    free = teacher.solve(q0, goals)
    assert path_collides(env.kin, q0, fastest.target - q0)
    assert not path_collides(env.kin, q0, free.target - q0)
    assert free.periods == fastest.periods
    assert np.linalg.norm(goals - env.kin.ee_positions(free.target), axis=1).max() <= config.tolerance * (1 + 1e-5)
    # its line demonstrations: free_samples states on that line, each labelled towards the free target
    obs, labels = teacher.line_demonstrations(q0[None], goals[None], 4, np.random.default_rng(0), free_samples=12)
    q = obs[:, teacher.layout.slice("joint_pos")].astype(np.float64)
    assert len(labels) == 12
    assert np.allclose(q + labels * config.control_period * env.spec.velocity_limits, free.target, atol=1e-5)
    assert TimeOptimalController(ReachVectorEnv(1, CONFIG), 12.0, solver, 24).free_line_reference is None


def test_bound_tables_are_cached_by_their_key(tmp_path):
    first = bound_table(CONFIG, 3, SEED, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.json")
    stored = json.loads(path.read_text())
    stored["periods"] = [99, 99, 99]  # what is read back is the file's
    path.write_text(json.dumps(stored))
    assert list(bound_table(CONFIG, 3, SEED, cache_dir=tmp_path).periods) == [99, 99, 99]
    other = bound_table(replace(CONFIG, reach_tolerance=0.03), 3, SEED, cache_dir=tmp_path)  # another key
    assert list(other.periods) != [99, 99, 99] and np.all(other.periods <= first.periods)


class _RunningSum:
    """A stateful row function: each row's running sum of what it was given."""

    def __init__(self):
        self.total = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if np.any(batch < 0):
            raise ValueError("negative input")
        self.total = batch.copy() if self.total is None else self.total + batch
        return self.total


def test_row_workers_keep_each_rows_state_and_raise_a_workers_error():
    batches = [np.arange(10.0).reshape(5, 2) * k for k in (1, 2, 3)]
    local, pooled = RowWorkers(partial(_RunningSum)), RowWorkers(partial(_RunningSum), workers=2)
    try:
        for batch in batches:
            np.testing.assert_array_equal(pooled(batch), local(batch))
        with pytest.raises(ValueError, match="negative input"):
            pooled(-np.ones((5, 2)))
    finally:
        pooled.close()
