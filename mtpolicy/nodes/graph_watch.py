"""What the ROS graph tells the controller node: goals that never reach it, other publishers of its command topic."""

from __future__ import annotations

from rclpy.node import Node

from mtpolicy.nodes.interfaces import goal_topic
from mtpolicy.robots import RobotSpec

GOAL_TYPE = "geometry_msgs/msg/PointStamped"
GOALS_PREFIX = goal_topic("")


def dropped_goal_topics(node: Node, spec: RobotSpec) -> dict[str, str]:
    """Goal topics (``/goals/<name>``) with publishers whose messages never reach ``node``, each with why: the
    robot has no end effector ``<name>``, or a publisher's type is not PointStamped (DDS does not match it).

    Cheap enough for every housekeeping round (0.1 s), so that a publisher living briefly is seen: one query of
    the graph's topics, and the publishers asked for only on a goal topic of another name or another type."""
    dropped = {}
    for topic, types in node.get_topic_names_and_types():
        name = topic.removeprefix(GOALS_PREFIX)
        if name == topic or "/" in name or (name in spec.end_effectors and types == [GOAL_TYPE]):
            continue
        if not (publishers := node.get_publishers_info_by_topic(topic)):
            continue
        if name not in spec.end_effectors:
            dropped[topic] = (f"goals on {topic} are dropped: robot {spec.name!r} has no end effector {name!r} "
                              f"(its end effectors: {list(spec.end_effectors)})")
        elif types := sorted({info.topic_type for info in publishers} - {GOAL_TYPE}):
            dropped[topic] = f"goals on {topic} of type(s) {types} are dropped: the controller takes {GOAL_TYPE}"
    return dropped


class GraphWatch:
    """Looks at the ROS graph (``check``, every housekeeping round) for what no callback of the node sees.

    ``dropped``: goal topics whose goals never reach the node (``dropped_goal_topics``), each with why, said once
    per topic (WARN). ``rivals``: how many other nodes publish on the command topic, said (ERROR) whenever it grows:
    two controllers would command the same joints.
    """

    def __init__(self, node: Node, spec: RobotSpec, command_topic: str):
        self._node, self._spec, self._command_topic = node, spec, command_topic
        self.dropped: dict[str, str] = {}  # goal topic -> why its messages never reach this node
        self.rivals = 0

    def check(self) -> None:
        dropped = dropped_goal_topics(self._node, self._spec)
        for topic in dropped.keys() - self.dropped.keys():
            self._node.get_logger().warning(dropped[topic])
        self.dropped = dropped
        rivals = self._node.count_publishers(self._command_topic) - 1
        if rivals > self.rivals:
            self._node.get_logger().error(f"{self._command_topic} has another publisher ({rivals} besides this "
                                          "controller): two controllers command the same joints")
        self.rivals = rivals
