"""MuJoCo simulation node: velocity-servoed robot behind the same topics as a real one.

Subscribes the controller's command topic, of the kind ``command_interface``
names (``mtpolicy.sim_commands``), and drives the velocity actuators'
``ctrl`` (rad/s) from it, from its arrival on (the physics is first stepped
up to then): ``velocity`` (``std_msgs/Float64MultiArray``, one
value per joint in the order of the ``joints`` parameter) as it is;
``position`` (the same, of positions, as a forward position controller takes)
through a position loop v = (q_cmd - q) / ``position_time_constant``;
``trajectory`` (``trajectory_msgs/JointTrajectory``, as JointTrajectoryController
takes) followed by time from its arrival, from the current state through its
points (velocities interpolated, positions tracked), holding the last point's
positions after it. Actuated joints not in ``joints`` (a humanoid's legs and
head, which its reach policy does not drive) are held at velocity 0. Publishes
``/joint_states`` of every actuated joint at ``publish_rate_hz`` with the
simulation paced to ``real_time_factor`` times wall-clock time. Wrong-length or
non-finite commands are rejected with a warning and the robot holds still
(zero velocity); so it does when no velocity command arrived for
``command_timeout`` (a position command holds its last position, a trajectory
ends at rest by itself). As a driver does, the sim clips what the servos track
to the velocity limits and never drives a joint past its position limits,
warning (at most every 2 s) when it clips a command.

Services: ``~/reset`` (std_srvs/Trigger: home keyframe or ``initial_q``),
``~/render`` (std_srvs/Trigger: offscreen PNG to ``render_path``, goals drawn
as spheres). ``~/markers``: end effectors, for RViz.
"""

from __future__ import annotations

import os

# The node renders offscreen on ~/render: EGL unless the user chose a backend, set before mujoco is first imported
# (it picks its GL backend then). A process that imports this module is a sim node.
os.environ.setdefault("MUJOCO_GL", "egl")

import math
import time
from pathlib import Path

import mujoco
import numpy as np
from geometry_msgs.msg import PointStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from mtpolicy import safety
from mtpolicy.commands import DEFAULT_TOPICS, INTERFACES
from mtpolicy.kinematics import Kinematics
from mtpolicy.nodes.interfaces import COMMAND_QOS, GOAL_QOS, JOINT_STATES_TOPIC, MARKER_QOS, STATE_PUB_QOS, goal_topic
from mtpolicy.nodes.process import run_node, take_realtime_priority
from mtpolicy.nodes.markers import ee_colors, sphere_markers
from mtpolicy.nodes.params import (PARAMETER_OPTIONS, REALTIME_PRIORITY, Param, ParamSet, Range,
                                   StartupError)
from mtpolicy.nodes.reporting import ReasonLog, ThrottledLog
from mtpolicy.offscreen import render_png
from mtpolicy.robots import DEFAULT_ROBOT, load_robot
from mtpolicy.sim_commands import CommandFollower

MAX_LAG = 0.25
"""Seconds of simulated time the sim may fall behind, beyond one publication period, before it stops catching up."""

PARAMS = [
    Param("robot", DEFAULT_ROBOT, "robot name, robot folder or MJCF path", read_only=True),
    Param("end_effectors", [], "end-effector sites (default: the robot.yaml's; every site of an MJCF path), "
          "for goals and markers", read_only=True),
    Param("joints", [], "the commanded joints, in command order (default: the robot's reach joints in actuator "
          "order); other actuated joints are held", read_only=True),
    Param("command_interface", "velocity", "the commands taken: velocity, position (Float64MultiArray) or "
          "trajectory (JointTrajectory)", lambda v: None if v in INTERFACES else
          f"must be one of {', '.join(INTERFACES)}", read_only=True),
    Param("command_topic", "", "command topic (empty: the interface's, as the controller's)", read_only=True),
    Param("position_time_constant", 0.05, "the position and trajectory interfaces' position loop, "
          "v = (q_cmd - q) / this (clipped to the velocity limits)", Range(0.001, 10.0), read_only=True, unit="s"),
    Param("publish_rate_hz", 100.0, "/joint_states rate (wall clock)", Range(1.0, 1000.0), read_only=True,
          unit="Hz"),
    Param("real_time_factor", 1.0, "simulated seconds per wall-clock second", Range(0.01, 100.0)),
    Param("command_timeout", 0.5, "no velocity command for this long => zero velocity; 0: hold the last one",
          Range(0.001, 3600.0, or_zero=True), unit="s"),
    Param("initial_q", [], "joint angles after a reset, in robot joint order (empty: the home keyframe)",
          items=float),
    Param("render_path", "sim.png", "PNG written by ~/render"),
    Param("render_size", [640, 640], "width and height of ~/render images", lambda v: None if len(v) == 2 and all(
          isinstance(x, int) and 16 <= x <= 4096 for x in v) else "must be [width, height], each 16-4096"),
    Param("marker_rate_hz", 10.0, "~/markers publish rate (0: off)", Range(0.1, 100.0, or_zero=True), read_only=True,
          unit="Hz"),
    REALTIME_PRIORITY,
]


class MujocoSim(Node):
    """A MuJoCo robot with velocity actuators, driven over ROS 2."""

    def __init__(self) -> None:
        super().__init__("sim", **PARAMETER_OPTIONS)
        self.params = p = ParamSet(self, PARAMS)
        self.spec = spec = load_robot(p.robot, [e for e in p.end_effectors if e] or None)
        self.model = spec.load_model()
        self.data = mujoco.MjData(self.model)
        self.kin = Kinematics(spec)
        m = self.model
        published = list(spec.joint_names + spec.held_joints)
        joints = [j for j in p.joints if j] or list(spec.joint_names)
        if len(set(joints)) != len(joints) or not set(joints) <= set(published):
            raise StartupError(f"'joints' {joints} must be distinct actuated joints of robot {spec.name!r}: "
                               f"{published}")
        self._joints = joints
        self._actuators = spec.actuator_ids(m, joints)
        ids = [m.joint(j).id for j in joints]
        self._qpos_adr = m.jnt_qposadr[ids]
        self._follower = CommandFollower(p.command_interface, np.minimum(-m.actuator_ctrlrange[self._actuators, 0],
                                                                        m.actuator_ctrlrange[self._actuators, 1]),
                                         np.where(m.jnt_limited[ids, None], m.jnt_range[ids], [-np.inf, np.inf]),
                                         p.position_time_constant, m.opt.timestep)
        topic = p.command_topic or DEFAULT_TOPICS[p.command_interface]
        self._published_actuators = spec.actuator_ids(m, published)
        self._published_qpos_adr = np.array([m.jnt_qposadr[m.joint(j).id] for j in published])
        self._published_dof_adr = np.array([m.jnt_dofadr[m.joint(j).id] for j in published])
        self._initial_q = np.array(p.initial_q, dtype=np.float64)
        if self._initial_q.size not in (0, spec.n_joints) or not np.all(np.isfinite(self._initial_q)):
            raise StartupError(f"'initial_q' needs {spec.n_joints} finite values (or none), got {p.initial_q}")
        self._goals = np.full((spec.n_tasks, 3), np.nan)
        self._colors = ee_colors(m, spec)
        self._last_command = -math.inf
        self._stale_logged = False
        self._rejection_log = ReasonLog(self)
        self._clip_log = ThrottledLog(self)

        self._state = JointState(name=published)
        self._state_pub = self.create_publisher(JointState, JOINT_STATES_TOPIC, STATE_PUB_QOS)
        self._marker_pub = self.create_publisher(MarkerArray, "~/markers", MARKER_QOS)
        if p.command_interface == "trajectory":
            self.create_subscription(JointTrajectory, topic, self._on_trajectory, COMMAND_QOS)
        else:
            self.create_subscription(Float64MultiArray, topic, self._on_command, COMMAND_QOS)
        for i, ee in enumerate(spec.end_effectors):
            self.create_subscription(PointStamped, goal_topic(ee), lambda msg, i=i: self._on_goal(i, msg), GOAL_QOS)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(Trigger, "~/render", self._on_render)
        self.reset()
        self.create_timer(1.0 / p.publish_rate_hz, self._step)
        if p.marker_rate_hz > 0:
            self.create_timer(1.0 / p.marker_rate_hz, self._publish_markers)
        self.get_logger().info(f"simulating {spec.name!r} ({spec.n_joints} joints, dt {m.opt.timestep} s); "
                               f"{p.command_interface} commands on {topic} in order {joints}; /joint_states at "
                               f"{p.publish_rate_hz:g} Hz, real-time factor {p.real_time_factor:g}")
        take_realtime_priority(p.realtime_priority, self.get_logger())

    def reset(self) -> None:
        """Home keyframe (or ``initial_q``), zero velocity command, pacing restarted."""
        m, d = self.model, self.data
        self.spec.reset_to_home(m, d)
        if self._initial_q.size:
            d.qpos[self.kin.qpos_adr] = self._initial_q
        d.ctrl[:] = 0.0
        self._follower.clear()
        mujoco.mj_forward(m, d)
        self._anchor = (time.monotonic(), d.time)

    def _on_command(self, msg: Float64MultiArray) -> None:
        reason = safety.command_rejection(msg.data, len(self._actuators))
        if reason is not None:
            self._reject(reason)
            return
        self._rejection_log(None)
        self._advance(time.monotonic())
        if self._follower.interface == "position":
            self._follower.position = np.array(msg.data)
        else:
            command = np.array(msg.data)
            self._follower.velocity, _ = safety.clamp_velocity(command, self._follower.velocity_limits)
            self._warn_clipped("velocity", command != self._follower.velocity, "joint {joint!r}: command {value:g} "
                               "rad/s beyond its velocity limit, clipped to {bound:g} rad/s", command,
                               self._follower.velocity)
        self._last_command = time.monotonic()
        self._stale_logged = False

    def _warn_clipped(self, kind: str, clipped: np.ndarray, text: str, values: np.ndarray,
                      bounds: np.ndarray) -> None:
        """Warn (at most every 2 s per ``kind``) that the joints ``clipped`` were: ``text`` formatted with the first
        one's ``joint`` name, ``value`` and ``bound``."""
        if clipped.any():
            k = int(np.argmax(clipped))
            more = f" (and {int(clipped.sum()) - 1} more joint(s))" if clipped.sum() > 1 else ""
            self._clip_log(kind, text.format(joint=self._joints[k], value=values[k], bound=bounds[k]) + more)

    def _reject(self, reason: str) -> None:
        self._follower.clear()
        self.data.ctrl[:] = 0.0
        self._rejection_log(reason, "command rejected, holding zero velocity: {}")

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        reason = _trajectory_rejection(msg, self._joints)
        if reason is not None:
            self._reject(reason)
            return
        self._rejection_log(None)
        self._advance(time.monotonic())
        order = [list(msg.joint_names).index(j) for j in self._joints]
        times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
        positions = np.array([np.array(p.positions)[order] for p in msg.points])
        velocities = np.array([np.array(p.velocities)[order] if len(p.velocities) else np.zeros(len(order))
                               for p in msg.points])
        d = self.data
        self._follower.follow_trajectory(d.time, d.qpos[self._qpos_adr].copy(), d.ctrl[self._actuators].copy(),
                                         times, positions, velocities)
        self._last_command = time.monotonic()

    def _on_goal(self, i: int, msg: PointStamped) -> None:
        point = (msg.point.x, msg.point.y, msg.point.z)
        if safety.goal_rejection(point, msg.header.frame_id, self.spec.base_body) is None:
            self._goals[i] = point

    def _step(self) -> None:
        now = time.monotonic()
        timeout = self.params.command_timeout
        if (self._follower.interface == "velocity" and timeout > 0 and safety.is_stale(self._last_command, now, timeout)
                and self._follower.velocity.any()):
            self._follower.velocity[:] = 0.0
            if not self._stale_logged:
                self.get_logger().warning(f"no command for {timeout} s: holding zero velocity")
                self._stale_logged = True
        self._advance(now)
        st = self._state
        st.header.stamp = self.get_clock().now().to_msg()
        st.position = self.data.qpos[self._published_qpos_adr].tolist()
        st.velocity = self.data.qvel[self._published_dof_adr].tolist()
        st.effort = self.data.actuator_force[self._published_actuators].tolist()
        self._state_pub.publish(st)

    def _advance(self, now: float) -> None:
        """Step the physics up to monotonic time ``now`` (paced by real_time_factor) under the current command, the
        servo targets set at each step: before a state is published, and before a command takes effect, so that a
        command acts from its arrival on."""
        wall0, sim0 = self._anchor
        target = sim0 + (now - wall0) * self.params.real_time_factor
        if target - self.data.time > MAX_LAG + self.params.real_time_factor / self.params.publish_rate_hz:
            self.get_logger().warning("simulation cannot keep up with real_time_factor: skipping ahead",
                                      throttle_duration_sec=5.0)
            self._anchor = (now, self.data.time)
            target = self.data.time
        d, stopped = self.data, np.zeros(len(self._joints), dtype=bool)
        while d.time < target:
            d.ctrl[self._actuators], at_limit = self._follower.ctrl(d.qpos[self._qpos_adr], d.time)
            stopped |= at_limit
            mujoco.mj_step(self.model, d)
        if stopped.any():
            q, limits = d.qpos[self._qpos_adr], self._follower.position_limits
            nearer = np.where(q - limits[:, 0] < limits[:, 1] - q, limits[:, 0], limits[:, 1])
            self._warn_clipped("position", stopped, "joint {joint!r} at {value:.3f} rad: command stopped at its "
                               "position limit {bound:g} rad", q, nearer)

    def ee_positions(self) -> np.ndarray:
        return self.kin.ee_positions(self.data.qpos[self.kin.qpos_adr])

    def _publish_markers(self) -> None:
        markers = sphere_markers(self.spec.base_body, "sim_end_effectors", self.ee_positions(), self._colors,
                                 self.get_clock().now().to_msg(), radius=0.02)
        self._marker_pub.publish(markers)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.reset()
        self._last_command = -math.inf
        response.success = True
        response.message = "reset to " + ("initial_q" if self._initial_q.size else "the home keyframe")
        self.get_logger().info(response.message)
        return response

    def _on_render(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        path = Path(self.params.render_path)
        width, height = self.params.render_size
        try:
            render_png(self.model, self.data, path, self.spec.base_body, self._goals, self._colors, width, height)
        except Exception as e:  # noqa: BLE001 - GL backends fail in many ways; report, don't die
            response.success, response.message = False, f"rendering failed: {type(e).__name__}: {e}"
            self.get_logger().error(response.message)
            return response
        response.success, response.message = True, str(path.resolve())
        return response


def _trajectory_rejection(msg: JointTrajectory, joints: list[str]) -> str | None:
    """Why a JointTrajectory must be rejected (joints other than ``joints``, no points, sizes that differ, times
    not increasing, non-finite values), or None."""
    if sorted(msg.joint_names) != sorted(joints):
        return f"trajectory for joints {list(msg.joint_names)}, expected {joints}"
    if not msg.points:
        return "trajectory has no points"
    times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
    if any(b <= a for a, b in zip([-1e-12] + times, times)):
        return "trajectory times_from_start do not increase"
    for p in msg.points:
        if len(p.positions) != len(joints) or len(p.velocities) not in (0, len(joints)):
            return f"trajectory point has {len(p.positions)} positions, robot has {len(joints)} joints"
        if not (np.all(np.isfinite(p.positions)) and np.all(np.isfinite(p.velocities))):
            return "trajectory has non-finite values"
    return None


def main(args: list[str] | None = None) -> int:
    return run_node(MujocoSim, args)


if __name__ == "__main__":
    raise SystemExit(main())
