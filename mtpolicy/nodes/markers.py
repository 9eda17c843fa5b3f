"""RViz sphere markers for end effectors and goals (positions in the robot's base frame)."""

from __future__ import annotations

import mujoco
import numpy as np
from builtin_interfaces.msg import Time
from visualization_msgs.msg import Marker, MarkerArray

from mtpolicy.robots import RobotSpec


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
