"""A robot's acceleration limits in training and evaluation: the reach env ramps its commands at a_max as the
controller node does, and the time-optimal bound is the least time under the same limits."""

from dataclasses import replace
from pathlib import Path

import numpy as np

from mtpolicy.observation import observe
from mtpolicy.time_optimal_program import SolverConfig, TimeOptimalReference
from mtpolicy.safety import rate_limit
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


def test_the_rest_to_rest_bound_also_stops_the_joints():
    n, stop = 8, SolverConfig(rest_to_rest=True)
    through, rest_to_rest = bound_table(LIMITED, n, SEED), bound_table(LIMITED, n, SEED, solver=stop)
    assert rest_to_rest.key["solver"]["rest_to_rest"] and "rest_to_rest" not in through.key["solver"]
    assert np.all(rest_to_rest.seconds >= through.seconds - 1e-6) and np.any(rest_to_rest.periods > through.periods)
    env = ReachVectorEnv(n, LIMITED, time_limit=False)
    env.reset(seed=SEED)
    reference = TimeOptimalReference(env.kin, LIMITED.control_period, LIMITED.reach_tolerance, stop)
    a, v = env.spec.acceleration_limits, env.spec.velocity_limits
    for q0, goals, seconds in zip(env.joint_positions(), env.goals, rest_to_rest.seconds):
        q = reference.solve(q0, goals).q
        d = np.abs(q - q0)  # the least rest-to-rest time of a triangle or a trapezoid, by hand
        least = np.where(d <= v ** 2 / a, 2 * np.sqrt(d / a), d / v + v / a)
        assert np.isclose(least.max(), seconds)


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


def test_the_servo_teachers_commands_ramped_at_the_acceleration_limits_stop_at_q_star_from_any_distance():
    """Both servo profiles, from 0.01 to 1.5 rad from q* on one line: commands ramped by a_max dt per period and
    integrated exactly (q += v dt) arrive at q* with no joint passing its coordinate of q* by more than 1e-9 rad,
    and no command slowing a joint asks for more than a_max dt below the previous one (``Teacher.servo_speed``)."""
    env = ReachVectorEnv(1, replace(LIMITED, planned=True), time_limit=False)
    env.reset(seed=SEED)
    dt, a = LIMITED.control_period, env.spec.acceleration_limits
    distances = np.geomspace(0.01, 1.5, 8)[:, None]
    q0 = np.repeat(env.joint_positions(), len(distances), axis=0)
    q_star = q0 + distances * np.array([1.0, 0.5, -0.7])
    goals = env.kin.ee_positions_batch(q_star)
    for profile in ("per_joint", "synchronised"):
        teacher = Teacher(DaggerConfig(teacher="servo", saturation="clip", servo_profile=profile), env)
        q, v = q0.copy(), np.zeros_like(q0)
        past = np.zeros_like(q0)
        for _ in range(100):
            command = teacher(observe(env.kin, q, goals, q_star)[0]) * env.spec.velocity_limits
            slowing = np.abs(command) < np.abs(v)
            assert np.all(np.abs(command - v)[slowing] <= (1 + 1e-5) * (a * dt)[np.nonzero(slowing)[1]])  # float32 obs
            v = rate_limit(command, v, a, dt)[0]
            q = q + v * dt
            past = np.maximum(past, np.sign(q_star - q0) * (q - q_star))
        assert past.max() <= 1e-9, (profile, past.max(axis=1))
        np.testing.assert_allclose(q, q_star, atol=1e-6)


def test_the_synchronised_servo_teacher_moves_every_joint_on_the_line_to_q_star_and_they_arrive_together():
    """u = dq / max_j tau_j: parallel to dq, k dq near q*, exactly zero there; in closed loop under the ramp, the
    joints that move (> 0.1 rad) come within 2 % of their distance to q* within one period of each other, where
    each joint at its own speed (``per_joint``) spreads them over several periods (issue 52)."""
    config = replace(LIMITED, planned=True)
    spread = {}
    for profile in ("per_joint", "synchronised"):
        env = ReachVectorEnv(16, config, time_limit=False)
        obs, _ = env.reset(seed=SEED)
        teacher = Teacher(DaggerConfig(teacher="servo", saturation="clip", servo_profile=profile), env)
        q, q_star = env.joint_positions(), env.goal_configs
        start = np.abs(q_star - q)
        if profile == "synchronised":
            u = teacher.unsaturated(obs) * env.spec.velocity_limits
            np.testing.assert_allclose(u * start.max(axis=1, keepdims=True), (q_star - q) * np.abs(u).max(
                axis=1, keepdims=True), atol=1e-9)  # parallel to dq
            near = q_star - 1e-3 * (q_star - q)
            near_obs, _ = observe(env.kin, near, env.goals, q_star)
            np.testing.assert_allclose(teacher.unsaturated(near_obs) * env.spec.velocity_limits,
                                       12.0 * (q_star - near), rtol=1e-4)
            at_goal, _ = observe(env.kin, q_star, env.goals, q_star)
            assert np.all(teacher.unsaturated(at_goal) == 0.0)
        arrived = np.full(start.shape, -1)
        for t in range(80):
            obs, *_ = env.step(teacher(obs))
            arrived[(arrived < 0) & (np.abs(q_star - env.joint_positions()) <= 0.02 * start)] = t + 1
        assert np.all(arrived > 0)
        spread[profile] = max(np.ptp(a[m]) for a, m in zip(arrived, start > 0.1) if m.any())
    assert spread["synchronised"] <= 1 < spread["per_joint"]


def test_the_servo_teacher_to_the_time_optimal_target_brakes_for_the_ramp_and_reaches_sooner_than_to_local_ik():
    """``servo_target='time_optimal'``: the servo's q_g is the closed-loop time-optimal controller's target
    re-solved from q (its q_IK within tolerance), so the arm heads for the nearest configuration within tolerance
    rather than the exact solution, braking at a_max as the servo does."""
    n = 16
    to_target = Teacher(DaggerConfig(teacher="servo", saturation="clip", servo_profile="synchronised",
                                     servo_target="time_optimal"), ReachVectorEnv(1, LIMITED))
    env = ReachVectorEnv(n, LIMITED, time_limit=False)
    obs, _ = env.reset(seed=SEED)
    q, targets, _ = to_target.time_optimal.targets(obs)
    dq = targets - q
    servo = to_target.synchronised(dq, np.minimum(to_target.servo_speed(np.abs(dq)), to_target.limits))
    np.testing.assert_allclose(to_target.unsaturated(obs), servo, atol=1e-3)  # re-solved, warm-started
    to_ik = Teacher(DaggerConfig(teacher="servo", saturation="clip", servo_profile="synchronised"),
                    ReachVectorEnv(1, LIMITED))
    bound = bound_table(LIMITED, n, SEED).bound_seconds
    fast, exact = (evaluate_reach(t, LIMITED, n, SEED, bound=bound) for t in (to_target, to_ik))
    assert fast["success_rate"] == exact["success_rate"] == 1.0
    assert fast["time_to_reach_mean"] < exact["time_to_reach_mean"]
    assert fast["time_ratio_median"] >= 1.0
