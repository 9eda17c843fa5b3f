"""Acceleration limits, without ROS: the manifest's, the supervisor's ramp, and each command interface's output.

Every command the controller sends goes through ``CommandRamp``; these tests
feed it adversarial sequences (bang-bang targets, NaN-free random jumps,
irregular and zero intervals, holds, limits approached at full speed) and check
that no command, of any interface, changes faster than a_max.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import REPO
from mtpolicy import safety
from mtpolicy.commands import ANCHOR_TOLERANCE, CommandShaper, trajectory_points
from mtpolicy.robots import RobotSpecError, load_robot
from mtpolicy.robots.manifest import RobotManifest
from mtpolicy.supervisor import CommandRamp

A = np.array([4.0, 10.0, np.inf])
"""Acceleration limits of three joints, one unlimited."""
LIMITS = np.array([[-1.0, 1.0], [-2.0, 2.0], [-np.inf, np.inf]])
PERIOD = 0.05
EPS = 1e-12


def write_manifest(folder, limits: str):  # noqa: ANN001, ANN201
    folder.mkdir()
    (folder / "robot.xml").write_text((REPO / "tests/fixtures/robots/arm3/robot.xml").read_text())
    (folder / "robot.yaml").write_text(f"mjcf: robot.xml\nend_effectors: [tool]\nreach_tolerance: 0.05\n"
                                       f"home: ready\nlimits:\n{limits}")
    return folder


def test_acceleration_limits_come_from_the_manifest_and_default_to_unlimited(tmp_path):
    folder = write_manifest(tmp_path / "arm", "  shoulder: {acceleration: 5}\n  elbow: {velocity: 1.5, "
                                              "acceleration: 7.5}\n")
    spec = load_robot(folder)
    assert spec.acceleration_limits.tolist() == [np.inf, 5.0, 7.5]
    assert spec.velocity_limits.tolist() == [2.0, 2.0, 1.5]
    assert np.isinf(load_robot("planar8").acceleration_limits).all()
    assert np.isinf(load_robot(REPO / "tests/fixtures/robots/arm3").acceleration_limits).all()
    for bad in ("0", "-3", "fast", "true"):
        with pytest.raises(RobotSpecError, match="acceleration of 'elbow': > 0"):
            RobotManifest.read(write_manifest(tmp_path / f"bad{bad}", f"  elbow: {{acceleration: {bad}}}\n"))


def test_rate_limit_bounds_each_step_and_leaves_unlimited_joints_alone():
    limited, count = safety.rate_limit(np.array([5.0, -5.0, 100.0]), np.zeros(3), A, 0.05)
    assert limited.tolist() == [0.2, -0.5, 100.0] and count == 2
    assert safety.rate_limit(np.array([1.0, 1.0, 1.0]), np.zeros(3), A, 0.0)[0].tolist() == [0, 0, 1]
    unlimited = np.full(3, np.inf)
    assert safety.rate_limit(np.array([5.0, -5, 1]), np.zeros(3), unlimited, 0.0)[0].tolist() == [5, -5, 1]


def adversarial_ticks(rng: np.random.Generator, n: int = 3000):  # noqa: ANN201
    """(target, dt) pairs: bang-bang between the velocity limits, random jumps, zeros (holds), long runs of one
    target; intervals regular, jittered, zero, and late."""
    for k in range(n):
        kind = k // 200 % 4
        target = [np.array([3.0, -3.0, 3.0]) * (-1) ** k, rng.uniform(-3, 3, 3), np.zeros(3),
                  np.array([3.0, 3.0, -3.0])][kind]
        dt = [PERIOD, rng.uniform(0, 3 * PERIOD), 0.0, 1.0][rng.integers(4) if k % 7 == 0 else 0]
        yield target, dt


@pytest.mark.parametrize("interface", ["velocity", "position", "trajectory"])
def test_no_command_of_any_interface_steps_faster_than_the_acceleration_limits(interface):
    rng = np.random.default_rng(0)
    ramp = CommandRamp(A, LIMITS, PERIOD)
    shaper = CommandShaper(interface, ramp, horizon=2 * PERIOD)
    q, now, previous = np.zeros(3), 0.0, None
    for target, dt in adversarial_ticks(rng):
        now += dt
        step_dt = ramp.dt(now)
        assert step_dt == pytest.approx(min(dt, ramp.max_dt)) or previous is None
        allowed = safety.step_bounds(A, step_dt) + EPS
        command = shaper(target, q, now)
        if previous is not None:
            assert np.all(np.abs(command.velocity - previous.velocity) <= allowed)
            if interface != "velocity":  # the position moves by exactly the limited velocity times the period
                np.testing.assert_allclose(command.position, np.clip(previous.position + command.velocity * PERIOD,
                                                                     LIMITS[:, 0], LIMITS[:, 1]), atol=1e-12)
        if interface == "trajectory":
            check_trajectory(command.trajectory, command.velocity)
        q = command.position if command.position is not None else np.clip(q + command.velocity * PERIOD, *LIMITS.T)
        previous = command


def check_trajectory(points, velocity) -> None:  # noqa: ANN001
    """Times increase; the first point has the command's velocity; it ends at rest; no segment between points
    decelerates faster than a_max; positions within the limits."""
    times = [p.time for p in points]
    assert times[0] == pytest.approx(PERIOD) and all(b > a for a, b in zip(times, times[1:]))
    assert np.array_equal(points[0].velocities, velocity) and not points[-1].velocities.any()
    for a, b in zip(points, points[1:]):
        assert np.all(np.abs(b.velocities - a.velocities) <= A * (b.time - a.time) + 1e-9)
    assert all(np.all((p.positions >= LIMITS[:, 0]) & (p.positions <= LIMITS[:, 1])) for p in points)


def test_a_hold_ramps_down_at_the_acceleration_limits():
    ramp = CommandRamp(A, LIMITS, PERIOD)
    for k in range(40):  # up to speed
        ramp(np.array([2.0, 2.0, 2.0]), np.zeros(3), k * PERIOD)
    assert ramp.velocity.tolist() == [2.0, 2.0, 2.0]
    assert ramp.stop_time() == pytest.approx(0.5)
    ticks = []
    for k in range(40, 60):
        ticks.append(ramp(np.zeros(3), np.zeros(3), k * PERIOD)[0])
    # joint 0 (4 rad/s^2) needs 10 periods, joint 1 (10 rad/s^2) 4, the unlimited joint stops at once
    assert [round(v[0], 9) for v in ticks[:11]] == [round(2.0 - 0.2 * (k + 1), 9) for k in range(10)] + [0.0]
    assert [round(v[1], 9) for v in ticks[:5]] == [1.5, 1.0, 0.5, 0.0, 0.0]
    assert all(v[2] == 0.0 for v in ticks) and ramp.at_rest


def test_a_late_command_steps_no_further_than_two_periods_allow():
    ramp = CommandRamp(A, LIMITS, PERIOD)
    ramp(np.zeros(3), np.zeros(3), 0.0)
    velocity, dt = ramp(np.array([3.0, 3.0, 3.0]), np.zeros(3), 5.0)
    assert dt == 2 * PERIOD and velocity.tolist() == pytest.approx([0.4, 1.0, 3.0])


def test_a_joint_driven_at_a_position_limit_brakes_in_time():
    """The policy asks for full speed towards the upper limit all along: the ramp brakes the joint so that it
    stops at the limit (less the margin), never past it, without a step above a_max dt."""
    a = np.array([4.0])
    ramp = CommandRamp(a, np.array([[-1.0, 1.0]]), PERIOD)
    q, previous, peak = np.array([-1.0]), 0.0, 0.0
    for k in range(200):
        velocity, dt = ramp(np.array([3.0]), q, k * PERIOD, margin=0.02)
        assert abs(velocity[0] - previous) <= 4.0 * PERIOD + EPS
        q, previous, peak = q + velocity * dt, velocity[0], max(peak, velocity[0])
        assert q[0] <= 1.0 - 0.02 + 1e-9
    assert q[0] > 0.95 and peak > 2.0 and velocity[0] == pytest.approx(0.0, abs=1e-6)


def test_position_commands_start_from_the_measured_state_and_hold_still_on_a_hold():
    ramp = CommandRamp(A, LIMITS, PERIOD)
    shaper = CommandShaper("position", ramp)
    measured = np.array([0.3, -0.2, 0.1])
    first = shaper(np.array([1.0, 1.0, 1.0]), measured, 0.0)
    np.testing.assert_allclose(first.position, measured + first.velocity * PERIOD)
    positions = [shaper(np.zeros(3), measured, PERIOD * k).position for k in range(1, 20)]
    assert ramp.at_rest and np.array_equal(positions[-1], positions[-2])  # held where the ramp ended
    # a restart from rest within the tracking tolerance resumes from the held command: the setpoint does not step
    held = positions[-1]
    settling = held + 0.5 * ANCHOR_TOLERANCE
    resumed = shaper(np.array([1.0, 0.0, 0.0]), settling, PERIOD * 20)
    np.testing.assert_allclose(resumed.position, held + resumed.velocity * PERIOD)
    for k in range(21, 40):
        shaper(np.zeros(3), resumed.position, PERIOD * k)
    # one from a robot moved away from it is anchored at the robot's measured angles again
    moved = np.array([0.0, 0.5, -0.5])
    again = shaper(np.array([1.0, 0.0, 0.0]), moved, PERIOD * 40)
    np.testing.assert_allclose(again.position, moved + again.velocity * PERIOD)


def test_a_trajectory_keeps_the_velocity_for_the_horizon_then_stops_at_the_limits():
    v = np.array([2.0, -1.0, 3.0])
    points = trajectory_points(np.zeros(3), v, A, LIMITS, PERIOD, horizon=0.12)
    assert [round(p.time, 9) for p in points] == [0.05, 0.1, 0.15, 0.65]  # 3 periods at speed, 2/4 s to stop
    np.testing.assert_allclose(points[2].positions, v * 2 * PERIOD)
    np.testing.assert_allclose(points[-1].positions, v * 2 * PERIOD + v * 0.25)
    # unlimited joints stop over one period; at rest: one point holding the position
    unlimited = trajectory_points(np.zeros(3), v, np.full(3, np.inf), LIMITS, PERIOD, 0.0)
    assert [p.time for p in unlimited] == pytest.approx([0.05, 0.1])
    rest = trajectory_points(np.ones(3) * 0.5, np.zeros(3), A, LIMITS, PERIOD, 0.1)
    assert len(rest) == 1 and rest[0].positions.tolist() == [0.5, 0.5, 0.5]


def test_unlimited_robots_command_as_before():
    """No acceleration limits (the shipped robots): the command is the target, a hold's zeros at once."""
    ramp = CommandRamp(np.full(3, np.inf), LIMITS, PERIOD)
    assert ramp(np.array([3.0, -3.0, 1.0]), np.zeros(3), 0.0)[0].tolist() == [3.0, -3.0, 1.0]
    assert ramp(np.zeros(3), np.zeros(3), 0.001)[0].tolist() == [0.0, 0.0, 0.0]


def test_a_controller_ticking_on_states_integrates_positions_over_the_measured_interval():
    """tick_on_state: commands come at the joint states' rate, not the timer's, so the position moves by the
    velocity times the time since the previous command (at most 2 periods)."""
    shaper = CommandShaper("position", CommandRamp(np.full(3, np.inf), LIMITS, PERIOD), fixed_period=False)
    first = shaper(np.array([1.0, 0.0, 0.0]), np.zeros(3), 0.0)
    assert first.position[0] == pytest.approx(PERIOD)  # the first command: one period
    assert shaper(np.array([1.0, 0.0, 0.0]), np.zeros(3), 0.01).position[0] == pytest.approx(PERIOD + 0.01)
    assert shaper(np.array([1.0, 0.0, 0.0]), np.zeros(3), 5.0).position[0] == pytest.approx(PERIOD + 0.11)


def test_a_non_finite_policy_output_and_the_e_stop_ramp_down_like_any_hold():
    """Decided: no immediate zero. The last command was checked when it was sent; a step to zero would be refused
    by the drivers the limits exist for, so the fastest stop they accept is the ramp (docs/real_robot.md)."""
    from mtpolicy.supervisor import NON_FINITE, Supervisor, SupervisedRobot

    class Settings:
        limit_margin = 0.0

    supervisor = Supervisor(SupervisedRobot(["a", "b", "c"], ["ee"], ["/goals/ee"], "/joint_states"), Settings(),
                            np.full(3, 3.0), LIMITS)
    ramp = CommandRamp(A, LIMITS, PERIOD)
    for k in range(40):
        ramp(supervisor.command(np.zeros(3), np.array([2.0, -2.0, 2.0]))[0], np.zeros(3), k * PERIOD)
    velocity, hold = supervisor.command(np.zeros(3), np.array([np.nan, 1.0, 1.0]))
    assert hold is NON_FINITE and not velocity.any()
    sent = ramp(velocity, np.zeros(3), 40 * PERIOD)[0]
    assert sent.tolist() == pytest.approx([1.8, -1.5, 0.0])  # a_max dt below the last command; unlimited: at once


def test_the_last_trajectory_on_the_way_out_ramps_to_rest_without_a_horizon_at_speed():
    ramp = CommandRamp(A, LIMITS, PERIOD)
    shaper = CommandShaper("trajectory", ramp, horizon=0.5)
    for k in range(20):
        before = shaper(np.array([1.0, -1.0, 1.0]), np.zeros(3), k * PERIOD)
    last = shaper.stop(np.zeros(3), 20 * PERIOD)
    assert [round(p.time, 9) for p in last.trajectory] == [0.05, 0.25]  # one period, then 0.8 / 4 s of ramp
    assert last.velocity.tolist() == pytest.approx([0.8, -0.5, 0.0])  # a_max dt below the previous command
    np.testing.assert_allclose(last.position, before.position + last.velocity * PERIOD)
    check_trajectory(last.trajectory, last.velocity)
    assert shaper.horizon == 0.5
