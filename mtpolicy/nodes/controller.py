"""Policy controller node: joint states + goals in, joint-velocity commands out.

Each tick: observation (``mtpolicy.observation``) from the newest joint
angles, forward kinematics and goals -> ONNX policy -> safety filters
(``mtpolicy.safety``) -> ``std_msgs/Float64MultiArray`` in the order of the
``joints`` parameter, which is what ros2_control's
JointGroupVelocityController consumes. The stock controller has no timeout,
so this node is the watchdog: stale joint states, a missing goal or the
e-stop => zeros, with a throttled log saying why.

Topics: ``/joint_states`` (in), ``/goals/<end_effector>`` (in),
``<command_topic>`` (out), ``~/markers``, ``/diagnostics``.
Service: ``~/enable`` (std_srvs/SetBool). On a stop (SIGINT, SIGTERM, SIGHUP or the
parent's death) it publishes one zero command before it exits.
"""

from __future__ import annotations

import math
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped
from rclpy.duration import Duration
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, Header
from std_srvs.srv import SetBool
from visualization_msgs.msg import MarkerArray

from mtpolicy import safety
from mtpolicy.kinematics import Kinematics
from mtpolicy.nodes.common import (DEFAULT_COMMAND_TOPIC, DIAGNOSTICS_QOS, GOAL_QOS, JOINT_STATES_TOPIC, MARKER_QOS,
                                   COMMAND_QOS, STATE_SUB_QOS, LatencyStats, Param, ParamSet, ReasonLog, StartupError,
                                   goal_topic, non_negative, positive, run_node)
from mtpolicy.nodes.markers import ee_colors, sphere_markers
from mtpolicy.observation import observe
from mtpolicy.policy import ModelMismatch, OnnxPolicy, resolve_model_path
from mtpolicy.robots import load_robot

STOP_ACK_TIMEOUT = 0.5
"""Seconds the zero command on the way out may wait for the subscribers' acknowledgements."""

PARAMS = [
    Param("model", "planar8_digrad", "ONNX policy: a path or the name of a shipped model", read_only=True),
    Param("robot", "", "robot name or MJCF path (default: the model's robot)", read_only=True),
    Param("joints", [], "command order of the joints (default: the model's joint order)", read_only=True),
    Param("command_topic", DEFAULT_COMMAND_TOPIC, "Float64MultiArray joint-velocity command topic",
          read_only=True),
    Param("rate_hz", 0.0, "tick rate in Hz (0: 1 / the model's control period)", non_negative),
    Param("tick_on_state", False, "also tick on every JointState (lowest state-to-command latency); "
          "the timer then ticks only when states stop arriving"),
    Param("state_timeout", 0.25, "joint states older than this (s) => zeros", positive),
    Param("goal_timeout", 0.0, "goals older than this (s) expire => zeros; 0: goals never expire", non_negative),
    Param("start_enabled", True, "publish policy commands from the start (else wait for ~/enable)",
          read_only=True),
    Param("limit_margin", 0.0, "joints within this many rad of a position limit may only move inwards",
          non_negative),
    Param("marker_rate_hz", 10.0, "~/markers publish rate (0: off)", non_negative),
]


class PolicyController(Node):
    """Runs an exported policy on a robot and publishes safe joint-velocity commands."""

    def __init__(self) -> None:
        super().__init__("controller")
        self.params = p = ParamSet(self, PARAMS, on_change=self._on_params_set)
        self.policy = _load_policy(p.model)
        contract = self.policy.contract
        self.spec = spec = load_robot(p.robot or contract.robot, list(contract.end_effectors))  # the model's tasks
        joints = [j for j in p.joints if j] or list(contract.joints)
        self.policy.check(spec, joints)  # ModelMismatch => run_node refuses to start, naming it
        self.joints = joints
        self.kin = Kinematics(spec)
        self._colors = ee_colors(self.kin.model, spec)
        self._order = np.array([spec.joint_names.index(j) for j in joints])
        self._joint_index = {name: i for i, name in enumerate(spec.joint_names)}
        self._state_indices: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._control_period = contract.control_period

        n, k = spec.n_joints, spec.n_tasks
        self._q = np.zeros(n)
        self._q_stamp = np.full(n, -math.inf)
        self._goals = np.full((k, 3), np.nan)
        self._goal_stamp = np.full(k, -math.inf)
        self._ee = self.kin.ee_positions(self._q)
        self._enabled = p.start_enabled
        self._hold_reason: str | None = "starting"
        self._hold_log = ReasonLog(self)
        self.tick_stats = LatencyStats()
        self.counts = dict(ticks=0, zero_ticks=0, clamped=0, limit_guarded=0, non_finite=0, rejected_goals=0,
                           rejected_states=0)

        self._command = Float64MultiArray()
        self._cmd_pub = self.create_publisher(Float64MultiArray, p.command_topic, COMMAND_QOS)
        self._marker_pub = self.create_publisher(MarkerArray, "~/markers", MARKER_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", DIAGNOSTICS_QOS)
        self.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_joint_state, STATE_SUB_QOS)
        for i, ee in enumerate(spec.end_effectors):
            self.create_subscription(PointStamped, goal_topic(ee), lambda m, i=i: self._on_goal(i, m), GOAL_QOS)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self._timer = self.create_timer(self._timer_period(), self.tick)
        self._marker_timer = None
        self._reset_marker_timer()
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"policy {self.policy.path.name} ({contract.method}) on robot {spec.name!r}: {n} joints, "
            f"end effectors {list(spec.end_effectors)} in frame {spec.base_body!r}; commands on "
            f"{p.command_topic} in order {joints} at {1.0 / self._period():.1f} Hz")

    # -- parameters ---------------------------------------------------------
    def _period(self) -> float:
        rate = self.params.rate_hz
        return 1.0 / rate if rate > 0 else self._control_period

    def _timer_period(self) -> float:
        """The tick period; with tick_on_state the timer is a watchdog, reset by every state, that ticks only
        after 2 tick periods without one (no timer wake-ups competing with the states)."""
        return self._period() * (2 if self.params.tick_on_state else 1)

    def _reset_marker_timer(self) -> None:
        if self._marker_timer is not None:
            self.destroy_timer(self._marker_timer)
            self._marker_timer = None
        if self.params.marker_rate_hz > 0:
            self._marker_timer = self.create_timer(1.0 / self.params.marker_rate_hz, self._publish_markers)

    def _on_params_set(self, names: set[str]) -> None:
        if names & {"rate_hz", "tick_on_state"}:
            self._timer.timer_period_ns = int(self._timer_period() * 1e9)
            self._timer.reset()
        if "marker_rate_hz" in names:
            self._reset_marker_timer()

    # -- inputs -------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        now = time.monotonic()
        if len(msg.position) != len(msg.name):
            self.counts["rejected_states"] += 1
            self.get_logger().warning(f"JointState with {len(msg.name)} names and {len(msg.position)} positions "
                                   "ignored", throttle_duration_sec=5.0)
            return
        src, dst = self._state_index(msg.name)
        position = np.asarray(msg.position, dtype=np.float64)[src]
        finite = np.isfinite(position)
        if not finite.all():
            self.counts["rejected_states"] += int(np.count_nonzero(~finite))
            bad = [self.spec.joint_names[i] for i in dst[~finite]]
            self.get_logger().warning(f"non-finite position of joint(s) {bad} ignored", throttle_duration_sec=5.0)
            position, dst = position[finite], dst[finite]
        self._q[dst] = position
        self._q_stamp[dst] = now
        if self.params.tick_on_state:
            self.tick()
            self._timer.reset()

    def _state_index(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(message indices, joint indices) of this robot's joints among ``names``; cached per name list."""
        key = tuple(names)
        index = self._state_indices.get(key)
        if index is None:
            if len(self._state_indices) > 16:  # publishers with ever-changing name lists: stay bounded
                self._state_indices.clear()
            src = np.array([k for k, n in enumerate(names) if n in self._joint_index], dtype=np.intp)
            dst = np.array([self._joint_index[names[k]] for k in src], dtype=np.intp)
            index = self._state_indices[key] = (src, dst)
        return index

    def _on_goal(self, i: int, msg: PointStamped) -> None:
        point = (msg.point.x, msg.point.y, msg.point.z)
        reason = safety.goal_rejection(point, msg.header.frame_id, self.spec.base_body)
        if reason is not None:
            self.counts["rejected_goals"] += 1
            self.get_logger().warning(f"goal for {self.spec.end_effectors[i]!r} rejected: {reason}; "
                                   "keeping the last valid goal")
            return
        self._goals[i] = point
        self._goal_stamp[i] = time.monotonic()

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self._enabled = bool(request.data)
        response.success = True
        response.message = "enabled" if self._enabled else "disabled: publishing zeros"
        self.get_logger().warning(f"e-stop: {response.message}")
        return response

    # -- control ------------------------------------------------------------
    def _why_hold(self, now: float) -> str | None:
        """Why the command must be zero now, or None to run the policy."""
        if not self._enabled:
            return "disabled by ~/enable"
        oldest = float(self._q_stamp.min())
        if safety.is_stale(oldest if math.isfinite(oldest) else None, now, self.params.state_timeout):
            missing = [j for j, s in zip(self.spec.joint_names, self._q_stamp) if not math.isfinite(s)]
            if missing:
                return f"no joint state yet for {missing} on {JOINT_STATES_TOPIC}"
            return f"joint states stale (none for state_timeout = {self.params.state_timeout} s)"
        for ee, stamp in zip(self.spec.end_effectors, self._goal_stamp):
            if not math.isfinite(stamp):
                return f"no goal yet for {ee!r} on {goal_topic(ee)}"
            if self.params.goal_timeout > 0 and safety.is_stale(stamp, now, self.params.goal_timeout):
                return f"goal for {ee!r} expired (goal_timeout {self.params.goal_timeout} s)"
        return None

    def tick(self) -> None:
        """One control step: decide, filter, publish; time it."""
        start = time.perf_counter()
        now = time.monotonic()
        reason = self._why_hold(now)
        q = self._q
        obs, self._ee = observe(self.kin, q, self._goals)
        if reason is None:
            velocity, finite = safety.finite_or_zero(self.policy(obs).astype(np.float64))
            if not finite:
                self.counts["non_finite"] += 1
                reason = "policy output is not finite"
            velocity, clamped = safety.clamp_velocity(velocity, self.spec.velocity_limits)
            velocity, guarded = safety.joint_limit_guard(q, velocity, self.spec.joint_limits,
                                                         self.params.limit_margin)
            self.counts["clamped"] += clamped
            self.counts["limit_guarded"] += guarded
        else:
            velocity = np.zeros(self.spec.n_joints)
        self._command.data = velocity[self._order].tolist()
        self._cmd_pub.publish(self._command)
        self.counts["ticks"] += 1
        self.counts["zero_ticks"] += reason is not None
        if self._hold_log(reason, "publishing zeros: {}") and reason is None:
            self.get_logger().info("joint states and goals present: running the policy")
        self._hold_reason = reason
        self.tick_stats.add(time.perf_counter() - start)

    def on_stop(self) -> None:
        """On the way out (``run_node``): one zero command, acknowledged by the subscribers (up to
        ``STOP_ACK_TIMEOUT``) before the process exits.

        ros2_control's JointGroupVelocityController holds the last command
        forever, so a controller that stops must leave zeros behind.
        """
        self._command.data = [0.0] * len(self.joints)
        self._cmd_pub.publish(self._command)
        self._cmd_pub.wait_for_all_acked(Duration(seconds=STOP_ACK_TIMEOUT))
        self.get_logger().info(f"stopping: published one zero command on {self.params.command_topic}")

    # -- outputs for people -------------------------------------------------
    def _publish_markers(self) -> None:
        stamp = self.get_clock().now().to_msg()
        frame = self.spec.base_body
        markers = sphere_markers(frame, "end_effectors", self._ee, self._colors, stamp, radius=0.02)
        markers.markers += sphere_markers(frame, "goals", self._goals, self._colors * [1, 1, 1, 0.5], stamp,
                                          radius=0.03, visible=np.isfinite(self._goal_stamp)).markers
        self._marker_pub.publish(markers)

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        p50, p99 = self.tick_stats.percentiles_ms(50, 99)
        goal_age = now - self._goal_stamp.min()
        values = {"tick_latency_p50_ms": f"{p50:.4f}", "tick_latency_p99_ms": f"{p99:.4f}",
                  "tick_latency_samples": str(len(self.tick_stats.samples)), "rate_hz": f"{1 / self._period():.2f}",
                  "state_age_s": f"{now - self._q_stamp.min():.3f}", "goal_age_s": f"{goal_age:.3f}",
                  "enabled": str(self._enabled), **{f"{k}_total": str(v) for k, v in self.counts.items()}}
        status = DiagnosticStatus(name=f"{self.get_name()}: policy {self.policy.path.name}",
                                  hardware_id=self.spec.name, message=self._hold_reason or "running",
                                  level=DiagnosticStatus.OK if self._hold_reason is None else DiagnosticStatus.WARN,
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        self._diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status]))


def _load_policy(model: str) -> OnnxPolicy:
    """The policy, or StartupError saying why it cannot be loaded (contract problems stay ModelMismatch)."""
    path = resolve_model_path(model)
    try:
        return OnnxPolicy(path, intra_op_threads=1)
    except ModelMismatch:
        raise
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own unexported error types
        raise StartupError(f"cannot load model {path}: {e}") from None


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyController, args, gc_period=1.0)  # GC between ticks, not inside one


if __name__ == "__main__":
    raise SystemExit(main())
