"""The refined-target student: torch kinematics against MuJoCo's, the small SPD solve, the refinement's target
on the goals' depth spheres, zero at the goal, and ONNX parity of the whole graph."""

import numpy as np
import pytest
import torch

from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import sample_configurations
from mtpolicy.observation import ObservationLayout, observe
from mtpolicy.policy import OnnxPolicy
from mtpolicy.safety import rate_limit
from mtpolicy.robots import load_robot, shipped_robots
from mtpolicy_training.algos.dagger import DaggerConfig, ErrorGainActor, Teacher
from mtpolicy_training.algos.refined_target import RefinedTargetActor, TargetRefinement, solve_spd
from mtpolicy_training.core.networks import Normalizer
from mtpolicy_training.core.torch_kinematics import TorchKinematics
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.ship.export import export_policy, parity


@pytest.mark.parametrize("robot", sorted(shipped_robots()))
def test_torch_kinematics_is_mujocos_in_the_base_frame(robot):
    spec = load_robot(robot)
    kin = Kinematics(spec)
    q = sample_configurations(spec, np.random.default_rng(0), 16)
    ee, jac = TorchKinematics(kin)(torch.as_tensor(q, dtype=torch.float32))
    for i, qi in enumerate(q):
        ee_ref, jac_ref = kin.ee_positions_and_jacobians(qi)
        np.testing.assert_allclose(ee[i].numpy(), ee_ref, atol=1e-5)
        np.testing.assert_allclose(jac[i].numpy(), jac_ref, atol=1e-5)


def test_solve_spd_solves_a_batch_of_small_systems():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(5, 6, 6, generator=g, dtype=torch.float64)
    a = m @ m.transpose(1, 2) + 0.1 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(5, 6, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(solve_spd(a, b).numpy(), torch.linalg.solve(a, b).numpy(), rtol=1e-9, atol=1e-9)


def refined(robot: str, refinement: TargetRefinement) -> tuple[RefinedTargetActor, ReachVectorEnv]:
    """A refined student of random weights on ``robot``'s env (observing the previous command for ``deadbeat``)."""
    env = ReachVectorEnv(8, ReachConfig(robot=robot, previous_command=refinement.command == "deadbeat"))
    student = ObservationLayout.for_robot(env.spec.n_joints, env.spec.n_tasks)
    actor = ErrorGainActor(Normalizer(np.zeros(student.size), np.ones(student.size)), student,
                           env.spec.n_joints, (32, 32), "relu", "clip")
    torch.nn.init.normal_(actor.net[-1].weight, std=0.1)
    return RefinedTargetActor(actor, TorchKinematics(env.kin), env.layout, env.spec.velocity_limits,
                              env.spec.joint_limits, env.config.control_period, env.config.reach_tolerance,
                              refinement, env.spec.acceleration_limits).eval(), env


@pytest.mark.parametrize("robot", ["planar8", "humanoid"])
def test_the_steps_move_the_target_onto_the_goals_depth_spheres_and_the_command_is_zero_at_the_goal(robot):
    actor, env = refined(robot, TargetRefinement(steps=8, damping=0.01))
    rng = np.random.default_rng(0)
    q = sample_configurations(env.spec, rng, 8)
    goals = env.kin.ee_positions_batch(sample_configurations(env.spec, rng, 8, around=q, joint_range=0.3))
    obs, _ = observe(env.kin, q, goals)
    low, high = (torch.as_tensor(np.tile(limit, (8, 1)), dtype=torch.float32) for limit in env.spec.joint_limits.T)
    with torch.no_grad():
        target, landed = actor.refine(torch.as_tensor(goals, dtype=torch.float32),
                                      torch.as_tensor(q, dtype=torch.float32), low, high)
        still = actor(torch.as_tensor(observe(env.kin, q, env.kin.ee_positions_batch(q))[0], dtype=torch.float32))
    errors = np.linalg.norm(goals - env.kin.ee_positions_batch(target.numpy().astype(np.float64)), axis=2)
    assert landed.all() and errors.max() <= 0.5 * env.config.reach_tolerance + 1e-3  # on the spheres of depth 0.5
    assert (errors.max(axis=1) >= 0.4 * env.config.reach_tolerance).all()  # not beyond them, to the centre
    assert still.abs().max() == 0.0


@pytest.mark.parametrize("robot", ["planar8", "humanoid"])
def test_the_command_arrives_no_later_than_a_known_solution(robot):
    """Goals put by configurations q_g near q: executed as commanded, the refined policy is within tolerance after
    at most ceil(max_j |q_g - q|_j / (dt v_j)) periods, q_g's own time, whatever the student's guess."""
    actor, env = refined(robot, TargetRefinement())
    rng = np.random.default_rng(1)
    q = sample_configurations(env.spec, rng, 16)
    solution = sample_configurations(env.spec, rng, 16, around=q, joint_range=0.3)
    goals = env.kin.ee_positions_batch(solution)
    step = env.config.control_period * env.spec.velocity_limits
    periods = np.ceil(np.max(np.abs(solution - q) / step, axis=1) - 1e-6)
    arrived = np.full(16, np.inf)
    for t in range(int(periods.max()) + 1):
        obs, ee = observe(env.kin, q, goals)
        arrived[np.isinf(arrived) & (np.linalg.norm(goals - ee, axis=2) <= env.config.reach_tolerance).all(axis=1)] = t
        with torch.no_grad():
            q = np.clip(q + step * actor(torch.as_tensor(obs, dtype=torch.float32)).numpy(), *env.spec.joint_limits.T)
    assert (arrived <= periods).all(), (arrived, periods)


def test_servo_lag_slows_the_command_to_arrive_over_the_period_and_the_lag():
    """Goals within a fraction of one period's motion: the command is unsaturated, and with ``servo_lag`` it is
    dt / (dt + servo_lag) of the kinematic one (the same target)."""
    actor, env = refined("humanoid", TargetRefinement())
    lagged = RefinedTargetActor(actor.actor, actor.kinematics, env.layout, env.spec.velocity_limits,
                                env.spec.joint_limits, env.config.control_period, env.config.reach_tolerance,
                                TargetRefinement(servo_lag=0.02)).eval()
    rng = np.random.default_rng(2)
    q = sample_configurations(env.spec, rng, 8)
    step = env.config.control_period * env.spec.velocity_limits
    goals = env.kin.ee_positions_batch(np.clip(q + 0.6 * step * rng.uniform(-1, 1, q.shape), *env.spec.joint_limits.T))
    obs = torch.as_tensor(observe(env.kin, q, goals)[0], dtype=torch.float32)
    with torch.no_grad():
        kinematic, slowed = actor(obs).numpy(), lagged(obs).numpy()
    outside = (np.linalg.norm(goals - env.kin.ee_positions_batch(q), axis=2) > env.config.reach_tolerance).any(axis=1)
    assert outside.sum() >= 4 and np.abs(kinematic).max() < 1.0
    np.testing.assert_allclose(slowed[outside], kinematic[outside] * 0.05 / 0.07, atol=1e-5)


def test_a_servo_lag_per_joint_is_each_joints_own():
    """``servo_lag`` with one value per joint: each joint's deadbeat command is the one-value graph's of its own lag;
    a count that is neither one nor the joints' is refused."""
    actor, env = refined("humanoid", TargetRefinement(command="deadbeat"))
    n = env.spec.n_joints
    lags = np.where(np.arange(n) < 5, 0.02, 0.01)

    def deadbeat(servo_lag: tuple[float, ...]) -> np.ndarray:
        graph = RefinedTargetActor(actor.actor, actor.kinematics, env.layout, env.spec.velocity_limits,
                                   env.spec.joint_limits, env.config.control_period, env.config.reach_tolerance,
                                   TargetRefinement(command="deadbeat", servo_lag=servo_lag)).eval()
        rng = np.random.default_rng(4)
        dq, sent = rng.uniform(-0.2, 0.2, (16, n)), rng.uniform(-1, 1, (16, n)) * env.spec.velocity_limits
        with torch.no_grad():
            return graph.deadbeat(torch.as_tensor(dq, dtype=torch.float32),
                                  torch.as_tensor(sent, dtype=torch.float32)).numpy()

    per_joint = deadbeat(tuple(lags))
    for lag in (0.01, 0.02):
        np.testing.assert_allclose(per_joint[:, lags == lag], deadbeat((lag,))[:, lags == lag], atol=1e-6)
    assert not np.allclose(deadbeat((0.01,)), deadbeat((0.02,)))
    with pytest.raises(ValueError, match="servo_lag has 2 values"):
        deadbeat((0.01, 0.02))


def test_the_exported_graph_is_the_torch_module(tmp_path):
    actor, env = refined("humanoid", TargetRefinement())
    obs, _ = env.reset(seed=1)
    path = export_policy(actor, env.spec, env.config, "dagger-time_optimal-refined", {"refine": {"steps": 3}}, {},
                         tmp_path / "refined.onnx")
    assert parity(actor, env.spec, path, obs.astype(np.float32)) <= 1e-4  # rad/s


def test_the_servo_command_is_the_dagger_servo_teachers_braking_at_the_acceleration_limits(tmp_path):
    """``command='servo'`` on Panda (acceleration limits): for any q_T - q the graph's command is
    ``Teacher.synchronised`` of ``Teacher.servo_speed`` at the same gain; within tolerance it heads for the goals
    themselves (zero at them); the graph exports with it."""
    servo, env = refined("panda", TargetRefinement(command="servo", servo_gain=12.0))
    teacher = Teacher(DaggerConfig(teacher="servo", servo_profile="synchronised", teacher_gain=12.0), env)
    assert np.isfinite(env.spec.acceleration_limits).all()
    dq = np.random.default_rng(3).uniform(-1.5, 1.5, (64, env.spec.n_joints)) * np.geomspace(1e-3, 1, 64)[:, None]
    expected = teacher.synchronised(dq, np.minimum(teacher.servo_speed(np.abs(dq)), env.spec.velocity_limits))
    with torch.no_grad():
        np.testing.assert_allclose(servo.servo(torch.as_tensor(dq, dtype=torch.float32)).numpy(), expected,
                                   atol=1e-5)
    q = sample_configurations(env.spec, np.random.default_rng(4), 8)
    near = env.kin.ee_positions_batch(q) + np.array([0.004, -0.003, 0.002])  # within tolerance: to the goals
    with torch.no_grad():
        at_goal, to_goal = (servo(torch.as_tensor(observe(env.kin, q, g)[0], dtype=torch.float32)).numpy()
                            for g in (env.kin.ee_positions_batch(q), near))
    assert np.abs(at_goal).max() < 1e-4
    moved = env.kin.ee_positions_batch(q + 0.01 * to_goal * env.spec.velocity_limits)
    assert (np.linalg.norm(near - moved, axis=2) < np.linalg.norm(near - env.kin.ee_positions_batch(q), axis=2)).all()
    obs, _ = env.reset(seed=1)
    path = export_policy(servo, env.spec, env.config, "dagger-time_optimal-refined", {"refine": {"command": "servo"}},
                         {}, tmp_path / "servo.onnx")
    assert parity(servo, env.spec, path, obs.astype(np.float32)) <= 1e-4  # rad/s


def test_the_deadbeat_command_stops_every_joint_at_its_target_under_the_ramp(tmp_path):
    """``command='deadbeat'`` on Panda: joints that move as commanded and ramped (a_j dt per period) from rest end at
    q_T - q exactly, never pass it, within two periods of the ramp's least rest-to-rest time; the env observes the
    ramped command it sent, and the graph exports with the layout's ``previous_command`` in its contract."""
    actor, env = refined("panda", TargetRefinement(command="deadbeat"))
    dt, v, a = env.config.control_period, env.spec.velocity_limits, env.spec.acceleration_limits
    dq = np.random.default_rng(5).uniform(-1.5, 1.5, (64, env.spec.n_joints)) * np.geomspace(1e-3, 1, 64)[:, None]
    moved, sent = np.zeros_like(dq), np.zeros_like(dq)
    least = np.where(np.abs(dq) <= v ** 2 / a, 2 * np.sqrt(np.abs(dq) / a), np.abs(dq) / v + v / a)
    periods = int(np.ceil(least.max() / dt)) + 2
    for t in range(periods + 1):
        with torch.no_grad():
            command = actor.deadbeat(torch.as_tensor(dq - moved, dtype=torch.float32),
                                     torch.as_tensor(sent, dtype=torch.float32)).numpy().astype(np.float64)
        sent = rate_limit(command * v, sent, a, dt)[0]
        moved += sent * dt
        assert (moved * np.sign(dq) <= np.abs(dq) + 1e-5).all(), t  # never past the target
        arrived = np.abs(moved - dq) < 1e-5
        assert arrived[np.ceil(least / dt) + 2 <= t].all(), t
    assert np.abs(moved - dq).max() < 1e-5
    obs, _ = env.reset(seed=1)
    obs, *_ = env.step(np.ones((8, env.spec.n_joints)))
    np.testing.assert_allclose(obs[:, env.layout.slice("previous_command")], np.tile(a * dt, (8, 1)), rtol=1e-6)
    path = export_policy(actor, env.spec, env.config, "dagger-time_optimal-refined",
                         {"refine": {"command": "deadbeat"}}, {}, tmp_path / "deadbeat.onnx")
    assert parity(actor, env.spec, path, obs.astype(np.float32)) <= 1e-4  # rad/s
    contract = OnnxPolicy(path).contract
    assert contract.observation_layout.names[-1] == "previous_command" and not contract.mismatches(env.spec)
    assert "previous_command" in contract.observation_doc()


def test_the_arriving_deadbeat_command_puts_a_lagging_joint_on_its_target_at_the_periods_end():
    """``arrival_lag`` tau, outside tolerance: a joint whose servo lags its command by tau (v' = (u - v) / tau,
    integrated exactly over the period from the velocity u0 it was sent before) ends the period on its target;
    within tolerance, and with no arrival lag, the command stops there instead, short of it at the period's end by
    tau u. An arrival lag of a period or more is refused."""
    tau = 0.005
    actor, env = refined("planar8", TargetRefinement(command="deadbeat", servo_lag=tau, arrival_lag=tau))
    dt, v = env.config.control_period, env.spec.velocity_limits
    rng = np.random.default_rng(3)
    u0 = rng.uniform(-0.5, 0.5, (64, env.spec.n_joints)) * v
    dq = rng.choice([-1.0, 1.0], u0.shape) * rng.uniform(0.1, 0.5, u0.shape) * v * dt
    outside = torch.as_tensor(np.arange(64) % 2 == 0)
    with torch.no_grad():
        u = actor.deadbeat(torch.as_tensor(dq, dtype=torch.float32), torch.as_tensor(u0, dtype=torch.float32),
                           outside).numpy().astype(np.float64) * v
    travel = u * dt - tau * (u - u0) * (1 - np.exp(-dt / tau))
    on = outside.numpy()
    np.testing.assert_allclose(travel[on], dq[on], atol=1e-5)
    np.testing.assert_allclose(travel[~on], dq[~on] - tau * u[~on], atol=1e-5)
    with pytest.raises(ValueError, match="arrival_lag"):
        refined("planar8", TargetRefinement(command="deadbeat", arrival_lag=dt))
