"""The ROS interfaces of the nodes: topic names, the goal message, and the QoS of each topic family
(the table of DESIGN.md, "ROS 2 interfaces")."""

from __future__ import annotations

from typing import Sequence

from builtin_interfaces.msg import Time
from geometry_msgs.msg import PointStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

DEFAULT_COMMAND_TOPIC = "/velocity_controller/commands"
JOINT_STATES_TOPIC = "/joint_states"


def goal_topic(end_effector: str) -> str:
    return f"/goals/{end_effector}"


def goal_message(frame_id: str, stamp: Time, point: Sequence[float]) -> PointStamped:
    """A reach goal: ``point`` (x, y, z) in ``frame_id`` (the robot's base frame)."""
    msg = PointStamped()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.point.x, msg.point.y, msg.point.z = (float(v) for v in point)
    return msg


# Commands and joint states: only the newest sample matters. Publishers are
# reliable (what ros2_control, RViz and `ros2 topic echo` expect); the
# controller subscribes best-effort to joint states, which matches either kind
# of publisher (a real joint_state_broadcaster is reliable, many drivers are not).
COMMAND_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
STATE_PUB_QOS = COMMAND_QOS
STATE_SUB_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT,
                           durability=DurabilityPolicy.VOLATILE)
# Goals are events a user sends (`ros2 topic pub` defaults: reliable, volatile).
GOAL_QOS = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
MARKER_QOS = COMMAND_QOS
DIAGNOSTICS_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.VOLATILE)
