"""ReachMonitor: a client of a running stack, for the demo, the tests and the benchmark.

It listens to ``/joint_states`` (by joint name), the goal topics and the
command topic, publishes goals, computes end-effector errors with the same
kinematics as the controller, and spins itself while waiting for a condition.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
from geometry_msgs.msg import PointStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from mtpolicy import safety
from mtpolicy.kinematics import Kinematics
from mtpolicy.nodes.interfaces import (DEFAULT_COMMAND_TOPIC, GOAL_QOS, JOINT_STATES_TOPIC, STATE_SUB_QOS, goal_message,
                                       goal_topic)
from mtpolicy.robots import RobotSpec
from mtpolicy_tools.record import RECORD_QOS


class ReachMonitor(Node):
    """Joint states, goals and commands of one robot, as seen on the wire."""

    def __init__(self, spec: RobotSpec, command_topic: str = DEFAULT_COMMAND_TOPIC, name: str = "reach_monitor",
                 **node_kwargs: Any):
        super().__init__(name, **node_kwargs)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self)
        self.spec = spec
        self.kin = Kinematics(spec)
        self._index = {j: i for i, j in enumerate(spec.joint_names)}
        self.q = np.full(spec.n_joints, np.nan)
        self.state_time = -math.inf
        self.states = 0
        self.goals = np.full((spec.n_tasks, 3), np.nan)
        self.goal_frames = [""] * spec.n_tasks
        self.goal_messages = 0
        self.command: np.ndarray | None = None
        self.command_time = -math.inf
        self.commands: list[tuple[float, np.ndarray]] = []
        """(arrival time, command) of every command received."""
        self.on_command: Callable[[float, np.ndarray], None] | None = None
        self.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_state, STATE_SUB_QOS)
        # every command, as a recorder takes them: a driver's depth of 1 keeps only the newest of those that arrive
        # while this thread is busy, and so can lose a single zero between two policy commands
        self.create_subscription(Float64MultiArray, command_topic, self._on_command, RECORD_QOS)
        self._service_clients: dict[str, Any] = {}
        self._goal_pubs = []
        for i, ee in enumerate(spec.end_effectors):
            self.create_subscription(PointStamped, goal_topic(ee), lambda m, i=i: self._on_goal(i, m), GOAL_QOS)
            self._goal_pubs.append(self.create_publisher(PointStamped, goal_topic(ee), GOAL_QOS))

    def _on_state(self, msg: JointState) -> None:
        for name, pos in zip(msg.name, msg.position):
            i = self._index.get(name)
            if i is not None:
                self.q[i] = pos
        self.state_time = time.monotonic()
        self.states += 1

    def _on_command(self, msg: Float64MultiArray) -> None:
        now = time.monotonic()
        self.command = np.array(msg.data)
        self.command_time = now
        self.commands.append((now, self.command))
        if self.on_command is not None:
            self.on_command(now, self.command)

    def _on_goal(self, i: int, msg: PointStamped) -> None:
        point = (msg.point.x, msg.point.y, msg.point.z)
        self.goal_messages += 1
        if safety.goal_rejection(point, msg.header.frame_id, self.spec.base_body) is None:
            self.goals[i] = point
            self.goal_frames[i] = msg.header.frame_id

    def publish_goals(self, goals: np.ndarray, frame_id: str | None = None) -> None:
        """Publish one goal per end effector ((n_ee, 3); rows may be None to skip)."""
        stamp = self.get_clock().now().to_msg()
        for pub, g in zip(self._goal_pubs, goals):
            if g is not None:
                pub.publish(goal_message(self.spec.base_body if frame_id is None else frame_id, stamp, g))

    def goal_readers_matched(self, timeout: float, readers: int = 2) -> bool:
        """Spin until each goal topic has ``readers`` matched subscriptions (this monitor's and a controller's), so
        a goal published once is not lost to discovery; False after ``timeout`` s."""
        return self.wait_until(lambda: all(p.get_subscription_count() >= readers for p in self._goal_pubs), timeout)

    def ee_positions(self) -> np.ndarray:
        return self.kin.ee_positions(self.q)

    def errors(self, goals: np.ndarray | None = None) -> np.ndarray:
        """(n_ee,) distance of each end effector to its goal (NaN while unknown)."""
        goals = self.goals if goals is None else goals
        if not np.all(np.isfinite(self.q)):
            return np.full(self.spec.n_tasks, np.nan)
        return np.linalg.norm(self.ee_positions() - goals, axis=1)

    def spin_for(self, seconds: float) -> None:
        self.wait_until(lambda: False, seconds)

    def wait_until(self, condition: Callable[[], bool], timeout: float, poll: float = 0.01) -> bool:
        """Spin until ``condition()`` holds (True) or ``timeout`` s pass (False)."""
        deadline = time.monotonic() + timeout
        while True:
            if condition():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._executor.spin_once(timeout_sec=min(poll, left))

    def destroy_node(self) -> None:
        self._executor.remove_node(self)
        self._executor.shutdown()
        super().destroy_node()

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 10.0, attempt: float = 2.0) -> Any:
        """Call an (idempotent) service and return its response; raises TimeoutError.

        The request is re-sent every ``attempt`` s: right after discovery a
        first response can be lost before the client's reply reader is matched.
        """
        client = self._service_clients.get(name)
        if client is None:
            client = self._service_clients[name] = self.create_client(srv_type, name)
        deadline = time.monotonic() + timeout
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {name} not available after {timeout} s")
        while (left := deadline - time.monotonic()) > 0:
            future = client.call_async(request)
            if self.wait_until(future.done, min(attempt, left)):
                return future.result()
            client.remove_pending_request(future)
        raise TimeoutError(f"service {name} did not answer within {timeout} s")
