"""Goal tool node: publishes reach goal sets, one ``PointStamped`` per end effector.

Goal sets are either drawn at random among reachable ones
(``mtpolicy.reach_task.sample_goal_sets``, seeded) or given as ``xyz`` (3
values per end effector, base frame). Each set is held for ``period``
seconds and republished at ``republish_hz`` meanwhile, so a controller that
starts late, or a lost message, still gets it. With ``until_held`` the next
set follows as soon as the robot held this one (every end effector within the
robot's reach tolerance for ``SETTLE`` s, on ``/joint_states``, as the demo
counts it), ``period`` s at most. The clock of the first set starts when every
goal topic has a subscriber (or after ``wait_for_subscribers`` s). The node
exits after ``episodes`` sets (0: loop).
"""

from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import PointStamped
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import JointState

from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import SETTLE, reach_tolerance, sample_goal_sets
from mtpolicy.nodes.interfaces import GOAL_QOS, JOINT_STATES_TOPIC, STATE_SUB_QOS, goal_message, goal_topic
from mtpolicy.nodes.process import run_node
from mtpolicy.nodes.params import PARAMETER_OPTIONS, Param, ParamSet, Range, StartupError
from mtpolicy.robots import DEFAULT_ROBOT, RobotSpec, load_robot

PARAMS = [
    Param("robot", DEFAULT_ROBOT, "robot name, robot folder or MJCF path", read_only=True),
    Param("end_effectors", [], "end-effector sites (default: the robot.yaml's; every site of an MJCF path), "
          "in goal order", read_only=True),
    Param("seed", 0, "seed of the random goal sets", read_only=True),
    Param("episodes", 1, "goal sets to publish before exiting (0: keep cycling)", Range(0, 10**6), read_only=True),
    Param("period", 5.0, "how long each goal set is held", Range(0.05, 3600.0), read_only=True, unit="s"),
    Param("until_held", False, f"the next goal set as soon as the robot held this one (every end effector within "
          f"the robot's reach tolerance for {SETTLE:g} s), period s at most", read_only=True),
    Param("xyz", [], "one goal set, x y z per end effector in the base frame (empty: random sets)",
          read_only=True, items=float),
    Param("republish_hz", 2.0, "rate at which the current goal set is republished", Range(0.1, 100.0), read_only=True,
          unit="Hz"),
    Param("wait_for_subscribers", 10.0, "how long to wait for a subscriber on every goal topic", Range(0.0, 3600.0),
          read_only=True, unit="s"),
]


def goal_sets(spec: RobotSpec, seed: int, count: int, xyz: list[float]) -> np.ndarray:
    """(count, n_ee, 3): ``xyz`` repeated, or ``count`` random reachable sets from ``seed``."""
    if xyz:
        if len(xyz) != 3 * spec.n_tasks:
            raise StartupError(f"'xyz' needs 3 values per end effector {list(spec.end_effectors)}, got {len(xyz)}")
        return np.repeat(np.array(xyz, dtype=np.float64).reshape(1, spec.n_tasks, 3), max(count, 1), axis=0)
    return sample_goal_sets(Kinematics(spec), np.random.default_rng(seed), max(count, 1))


class GoalPublisher(Node):
    """Publishes ``episodes`` goal sets, ``period`` s apart (or once held: ``until_held``); ``done`` completes when
    finished."""

    def __init__(self) -> None:
        super().__init__("goals", **PARAMETER_OPTIONS)
        self.params = p = ParamSet(self, PARAMS)
        self.spec = load_robot(p.robot, [e for e in p.end_effectors if e] or None)
        self.sets = goal_sets(self.spec, p.seed, p.episodes, p.xyz)
        self.done: Future[int] = Future()
        self._pubs = [self.create_publisher(PointStamped, goal_topic(ee), GOAL_QOS) for ee in self.spec.end_effectors]
        self._created = time.monotonic()
        self._index = -1
        self._since = 0.0
        """When the current set's period began."""
        self._held_since: float | None = None
        """Since when every end effector is within tolerance of the current set (None: not now)."""
        if p.until_held:
            self._kin, self._tolerance = Kinematics(self.spec), reach_tolerance(p.robot)
            self.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_state, STATE_SUB_QOS)
        self.create_timer(1.0 / p.republish_hz, self._on_timer)

    def _on_timer(self) -> None:
        now = time.monotonic()
        if self._index < 0:
            waited = now - self._created
            if any(pub.get_subscription_count() == 0 for pub in self._pubs) and \
                    waited < self.params.wait_for_subscribers:
                return
            if waited >= self.params.wait_for_subscribers:
                self.get_logger().warning("not every goal topic has a subscriber; publishing anyway")
            self._next(now)
        elif now - self._since >= self.params.period:
            self._next(self._since + self.params.period)
        elif not self.done.done():
            self.publish(self.sets[self._index % len(self.sets)])

    def _on_state(self, msg: JointState) -> None:
        positions = dict(zip(msg.name, msg.position))
        if self._index < 0 or not all(j in positions for j in self.spec.joint_names):
            return
        ee = self._kin.ee_positions(np.array([positions[j] for j in self.spec.joint_names]))
        now = time.monotonic()
        if not np.all(np.linalg.norm(ee - self.sets[self._index % len(self.sets)], axis=1) < self._tolerance):
            self._held_since = None
        elif self._held_since is None:
            self._held_since = now
        elif now - self._held_since >= SETTLE:
            self._next(now)

    def _next(self, since: float) -> None:
        """The next goal set, its period begun at ``since``: published, or ``done`` after the last one."""
        count = self.params.episodes
        if self.done.done():
            return
        if count and self._index + 1 >= count:
            self.get_logger().info(f"published {count} goal set(s); done")
            self.done.set_result(0)
            return
        self._index, self._since, self._held_since = self._index + 1, since, None
        goals = self.sets[self._index % len(self.sets)]
        text = ", ".join(f"{ee} ({g[0]:+.3f}, {g[1]:+.3f}, {g[2]:+.3f})"
                         for ee, g in zip(self.spec.end_effectors, goals))
        self.get_logger().info(f"goal set {self._index + 1}{f'/{count}' if count else ''}: {text}")
        self.publish(goals)

    def publish(self, goals: np.ndarray) -> None:
        stamp = self.get_clock().now().to_msg()
        for pub, g in zip(self._pubs, goals):
            pub.publish(goal_message(self.spec.base_body, stamp, g))


def main(args: list[str] | None = None) -> int:
    return run_node(GoalPublisher, args)


if __name__ == "__main__":
    raise SystemExit(main())
