"""How the sim follows position commands and trajectories (``mtpolicy.sim_commands``), without ROS processes."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from mtpolicy.commands import CommandShaper
from mtpolicy.nodes.sim import _trajectory_rejection
from mtpolicy.sim_commands import CommandFollower
from mtpolicy.supervisor import CommandRamp

LIMITS = np.array([2.0, 2.0])
POSITION_LIMITS = np.array([[-3.0, 3.0]] * 2)
STEP = 0.002


def run(follower: CommandFollower, q: np.ndarray, start: float, seconds: float) -> tuple[np.ndarray, float]:
    """Integrate q' = ctrl (a perfect velocity servo) for ``seconds``."""
    t = start
    for _ in range(int(round(seconds / STEP))):
        q = q + follower.ctrl(q, t)[0] * STEP
        t += STEP
    return q, t


def test_a_position_command_is_reached_through_the_velocity_servos_within_their_limits():
    follower = CommandFollower("position", LIMITS, POSITION_LIMITS, 0.05, STEP)
    assert follower.ctrl(np.zeros(2), 0.0)[0].tolist() == [0.0, 0.0]  # no command yet: still
    follower.position = np.array([1.0, -0.01])
    assert follower.ctrl(np.zeros(2), 0.0)[0].tolist() == pytest.approx([2.0, -0.2])  # clipped to the limit
    q, _ = run(follower, np.zeros(2), 0.0, 1.5)
    np.testing.assert_allclose(q, [1.0, -0.01], atol=1e-4)


def test_a_trajectory_is_followed_by_time_and_ends_at_its_last_point():
    ramp = CommandRamp(np.array([4.0, 4.0]), np.array([[-3.0, 3.0]] * 2), 0.05)
    shaper = CommandShaper("trajectory", ramp, horizon=0.1)
    for k in range(20):  # up to 1 rad/s, the command the trajectory starts from
        command = shaper(np.array([1.0, -0.5]), np.zeros(2), 0.05 * k)
    points = command.trajectory
    follower = CommandFollower("trajectory", LIMITS, POSITION_LIMITS, 0.05, STEP)
    q0 = command.position - command.velocity * 0.05  # where the robot should be now
    follower.follow_trajectory(10.0, q0, command.velocity, np.array([p.time for p in points]),
                               np.array([p.positions for p in points]), np.array([p.velocities for p in points]))
    for p in points:
        q_ref, v_ref = follower.reference(10.0 + p.time)
        np.testing.assert_allclose(q_ref, p.positions, atol=1e-12)
        np.testing.assert_allclose(v_ref, p.velocities, atol=1e-12)
    q, t = run(follower, q0, 10.0, points[-1].time + 0.5)
    np.testing.assert_allclose(q, points[-1].positions, atol=1e-3)  # came to rest where the trajectory ends
    assert follower.ctrl(q, t)[0] == pytest.approx([0.0, 0.0], abs=0.02)


@pytest.mark.parametrize("interface", ["velocity", "position"])
def test_commands_beyond_the_limits_stop_each_joint_at_its_position_limit_at_most_at_its_velocity_limit(interface):
    """Issue 62: the sim integrated a 1e9 rad/s command to 2.18 rad, past the 2 rad joint limit."""
    follower = CommandFollower(interface, LIMITS, np.array([[-2.0, 2.0], [-1.0, np.inf]]), 0.05, STEP)
    if interface == "velocity":
        follower.velocity = np.array([1e9, -1e9])
    else:
        follower.position = np.array([1e9, -1e9])
    q, t, stopped = np.array([1.9, 0.0]), 0.0, np.zeros(2, dtype=bool)
    for _ in range(1000):
        v, at_limit = follower.ctrl(q, t)
        assert np.all(np.abs(v) <= LIMITS)
        stopped |= at_limit
        q, t = q + v * STEP, t + STEP
        assert -2.0 <= q[0] <= 2.0 and q[1] >= -1.0
    assert q.tolist() == pytest.approx([2.0, -1.0], abs=1e-12)
    assert stopped.tolist() == [True, True]
    assert follower.ctrl(np.array([2.1, -1.0]), t)[0].tolist() == [0.0, 0.0]  # past a limit: no further out
    assert follower.ctrl(np.array([0.0, 5.0]), t)[1].tolist() == [False, False]  # away from the limits: as it is


def trajectory(names, times, positions):  # noqa: ANN001, ANN201
    return JointTrajectory(joint_names=names, points=[
        JointTrajectoryPoint(positions=p, velocities=[0.0] * len(p), time_from_start=Duration(nanosec=int(t * 1e9)))
        for t, p in zip(times, positions)])


def test_the_sim_rejects_trajectories_it_cannot_follow():
    joints = ["a", "b"]
    assert _trajectory_rejection(trajectory(["b", "a"], [0.1, 0.2], [[0, 0], [1, 1]]), joints) is None
    assert "expected ['a', 'b']" in _trajectory_rejection(trajectory(["a"], [0.1], [[0]]), joints)
    assert "no points" in _trajectory_rejection(trajectory(joints, [], []), joints)
    assert "do not increase" in _trajectory_rejection(trajectory(joints, [0.2, 0.1], [[0, 0], [1, 1]]), joints)
    assert "non-finite" in _trajectory_rejection(trajectory(joints, [0.1], [[0, float("nan")]]), joints)
    assert "2 joints" in _trajectory_rejection(trajectory(joints, [0.1], [[0, 0, 0]]), joints)
