"""RViz sphere markers for end effectors and goals (positions in the robot's base frame)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mujoco
import numpy as np
from builtin_interfaces.msg import Time
from visualization_msgs.msg import Marker, MarkerArray

from mtpolicy.nodes.interfaces import MARKER_QOS
from mtpolicy.robots import RobotSpec

if TYPE_CHECKING:  # the controller's parts: the sim and the tools draw markers without them
    from rclpy.node import Node

    from mtpolicy.kinematics import Kinematics
    from mtpolicy.nodes.goal_intake import GoalIntake
    from mtpolicy.state_intake import JointStateIntake


def ee_colors(model: mujoco.MjModel, spec: RobotSpec) -> np.ndarray:
    """(n_ee, 4) RGBA of each end-effector site, so markers match the MJCF colours."""
    return np.array([model.site_rgba[model.site(s).id] for s in spec.end_effectors], dtype=np.float64)


def sphere_markers(frame_id: str, ns: str, positions: np.ndarray, colors: np.ndarray, stamp: Time,
                   radius: float, visible: np.ndarray | None = None) -> MarkerArray:
    """One sphere per row of ``positions``; rows not ``visible`` (or non-finite) are deleted."""
    out = MarkerArray()
    for i, (pos, rgba) in enumerate(zip(positions, colors)):
        m = Marker(ns=ns, id=i, type=Marker.SPHERE)
        m.header.frame_id, m.header.stamp = frame_id, stamp
        shown = bool(np.all(np.isfinite(pos))) and (visible is None or bool(visible[i]))
        m.action = Marker.ADD if shown else Marker.DELETE
        if shown:
            m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in pos)
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = m.scale.z = 2 * radius
        m.color.r, m.color.g, m.color.b, m.color.a = (float(v) for v in rgba)
        out.markers.append(m)
    return out


class ControllerMarkers:
    """The controller's ``~/markers`` (``publish``, on the node's marker timer): a sphere at each end effector, at the
    newest measured joint angles, and a half-transparent one at each goal received, in the robot's base frame and
    the colours of the end-effector sites."""

    def __init__(self, node: Node, kin: Kinematics, states: JointStateIntake, goals: GoalIntake):
        self._node, self._kin, self._states, self._goals = node, kin, states, goals
        self._colors = ee_colors(kin.model, kin.spec)
        self._pub = node.create_publisher(MarkerArray, "~/markers", MARKER_QOS)

    def publish(self) -> None:
        stamp = self._node.get_clock().now().to_msg()
        frame, goals = self._kin.spec.base_body, self._goals
        markers = sphere_markers(frame, "end_effectors", self._kin.ee_positions(self._states.q), self._colors, stamp,
                                 radius=0.02)
        markers.markers += sphere_markers(frame, "goals", goals.positions, self._colors * [1, 1, 1, 0.5], stamp,
                                          radius=0.03, visible=np.isfinite(goals.stamps)).markers
        self._pub.publish(markers)
