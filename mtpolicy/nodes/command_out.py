"""The controller's command publisher: one of the interfaces of ``mtpolicy.commands`` as ROS 2 messages.

* ``velocity``: ``std_msgs/Float64MultiArray`` of joint velocities (ros2_control's forward velocity controller);
* ``position``: ``std_msgs/Float64MultiArray`` of joint positions (a forward position controller);
* ``trajectory``: ``trajectory_msgs/JointTrajectory`` (JointTrajectoryController), stamped zero (start on
  arrival), ``joint_names`` in command order, each point with positions, velocities and ``time_from_start``.

Values are in the order of the controller's ``joints`` parameter. The command is shaped just before it is
published, with the time read then, and the ramp counts the next command's interval from the moment this one has
left (read after ``publish`` returns): a process preempted between shaping and publishing delays the command it
holds, so the interval its acceleration limit allows is never longer than the one between the two publications.
"""

from __future__ import annotations

import time

import numpy as np
from builtin_interfaces.msg import Duration as DurationMsg
from rclpy.duration import Duration
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from mtpolicy.commands import DEFAULT_TOPICS, Command, CommandShaper
from mtpolicy.nodes.interfaces import COMMAND_QOS
from mtpolicy.supervisor import CommandRamp

STOP_RAMP_MAX = 2.0
"""s the velocity and position interfaces may spend ramping to rest on the way out before the last command."""


def duration_msg(seconds: float) -> DurationMsg:
    nanoseconds = int(round(seconds * 1e9))
    return DurationMsg(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


class CommandOutput:
    """Shapes (``CommandShaper``) and publishes each tick's velocity decision on the interface's topic."""

    def __init__(self, node: Node, interface: str, topic: str, joints: list[str], order: np.ndarray,
                 ramp: CommandRamp, horizon: float, fixed_period: bool = True):
        self.interface, self.topic = interface, topic or DEFAULT_TOPICS[interface]
        self.joints, self.order, self.ramp = list(joints), order, ramp
        self.shaper = CommandShaper(interface, ramp, horizon, fixed_period)
        msg_type = JointTrajectory if interface == "trajectory" else Float64MultiArray
        self.publisher = node.create_publisher(msg_type, self.topic, COMMAND_QOS)
        self._array = Float64MultiArray()

    def publish(self, target: np.ndarray, q: np.ndarray | None, margin: float) -> Command | None:
        """Shape ``target`` (joint velocities, robot joint order) at joint angles ``q`` and publish it. ``q`` None:
        a joint's angle is not known yet; then the position and trajectory interfaces, which start from the
        measured angles, publish nothing (the velocity interface publishes the ramp, here zeros)."""
        if q is None:
            if self.shaper.position is None and self.interface != "velocity":
                return None
            q = self.shaper.position if self.shaper.position is not None else np.zeros_like(target)
        command = self.shaper(target, q, time.monotonic(), margin)
        self._send(command)
        self.ramp.time = time.monotonic()
        return command

    def _send(self, command: Command) -> None:
        if self.interface == "trajectory":
            self.publisher.publish(self.trajectory(command))
            return
        values = command.velocity if self.interface == "velocity" else command.position
        assert values is not None, "a position command carries positions"
        self._array.data = values[self.order].tolist()
        self.publisher.publish(self._array)

    def trajectory(self, command: Command) -> JointTrajectory:
        msg = JointTrajectory(joint_names=self.joints)
        msg.points = [JointTrajectoryPoint(positions=p.positions[self.order].tolist(),
                                           velocities=p.velocities[self.order].tolist(),
                                           time_from_start=duration_msg(p.time)) for p in command.trajectory]
        return msg

    def stop(self, q: np.ndarray, margin: float, ack_timeout: float) -> str:
        """On the way out: leave the robot at rest, at the acceleration limits. Velocity and position: ramp to
        zero velocity a period at a time (up to ``STOP_RAMP_MAX`` s), then one last command (zeros, or the
        position reached). Trajectory: one trajectory that ramps to rest, which the driver runs out after this
        process is gone. Nothing where no position command was sent yet (no joint angles known). Returns what it
        sent, for the log."""
        if self.interface != "velocity" and self.shaper.position is None:
            return "nothing (no position command yet)"
        if self.interface == "trajectory":
            self._send(self.shaper.stop(q, time.monotonic(), margin))
            what = "a trajectory to rest"
        else:
            deadline = time.monotonic() + STOP_RAMP_MAX  # the ramp takes stop_time() and some periods late
            while self.ramp.stop_time() > 0 and time.monotonic() < deadline:
                time.sleep(self.ramp.period)
                self.publish(np.zeros_like(self.ramp.velocity), q, margin)
            if not self.ramp.at_rest:  # out of time: the robot's own limits take the rest
                self.ramp.velocity = np.zeros_like(self.ramp.velocity)
            self._send(Command(self.ramp.velocity, self.shaper.position if self.shaper.position is not None else q))
            what = "one zero command" if self.interface == "velocity" else "the position reached"
        self.publisher.wait_for_all_acked(Duration(seconds=ack_timeout))
        return what
