"""Policy controller node: joint states + goals in, joint-velocity commands out.

Each tick: observation (``mtpolicy.observation``) from the newest joint
angles, forward kinematics and goals -> ONNX policy -> safety filters
(``mtpolicy.safety``) -> ``std_msgs/Float64MultiArray`` in the order of the
``joints`` parameter, which is what ros2_control's
JointGroupVelocityController consumes. The stock controller has no timeout,
so this node is the watchdog: stale joint states, a missing goal or the
e-stop => zeros, with a throttled log saying why. The watchdog and every
timer run on steady time whatever ``use_sim_time`` says, so the node
publishes without a ``/clock``; with ``use_sim_time`` true and no ``/clock``
(or one that has not advanced for ``state_timeout``), it says so (WARN).

A planner-conditioned policy (its contract has a ``planner``) observes the
goal configuration of ``mtpolicy.planner``, planned in the background
(``mtpolicy.nodes.planning``: a thread and a planning process) so that
planning never delays a command. Goals arriving within ``goal_set_window`` s
of each other form one goal set, closed once every end effector has a goal
in it; each new goal set is planned once, from the joint angles of the tick
that submits it, the latest set first. The observation always pairs a plan
with the goal set it was made for: the policy keeps driving to the previous
goal set (with its plan) until the plan of the new one is ready, and holds
zeros until the first plan is.

Inputs are checked before they are trusted: a goal outside its end
effector's reach region (``mtpolicy.workspace``), or stamped more than
``goal_max_age`` ago, is rejected, the last valid one kept; joint states
beyond the limits, naming a joint twice, moving faster than the velocity
limits allow, or coming from a second publisher of the same joints hold
zeros for ``state_timeout`` with an ERROR diagnostic. Joint states are
judged by their header stamps (``mtpolicy.nodes.stamps``), read on this
node's clock with ``stamp_tolerance`` of clock offset forgiven: a state
stamped more than ``state_timeout`` ago is stale (zeros), one stamped before
the previous state of its joints is ignored, and the position-jump check
uses the time between stamps, so states that waited in a queue (a stopped
process, a slow network) neither move the robot nor look like a jump. A
zero stamp, or a ``use_sim_time`` clock that is missing or paused, falls
back to arrival times. Goals that never reach this node (a topic of no end
effector, a wrong type) and other publishers of the command topic are found
in the ROS graph and reported. An end effector that makes no progress
towards a valid goal for ``progress_timeout`` is reported (WARN). Every
repeated warning is throttled.

Topics: ``/joint_states`` (in), ``/goals/<end_effector>`` (in),
``<command_topic>`` (out), ``~/markers``, ``/diagnostics``.
Service: ``~/enable`` (std_srvs/SetBool). On a stop (SIGINT, SIGTERM, SIGHUP or the
parent's death) it publishes one zero command before it exits.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, Header
from std_srvs.srv import SetBool
from visualization_msgs.msg import MarkerArray

from mtpolicy import safety
from mtpolicy.kinematics import Kinematics, reach_tolerance
from mtpolicy.nodes.common import (DEFAULT_COMMAND_TOPIC, DIAGNOSTICS_QOS, GOAL_QOS, JOINT_STATES_TOPIC, MARKER_QOS,
                                   COMMAND_QOS, STATE_SUB_QOS, LatencyStats, Param, ParamSet, ReasonLog, StartupError,
                                   ThrottledLog, goal_topic, non_negative, positive, run_node, within)
from mtpolicy.nodes.markers import ee_colors, sphere_markers
from mtpolicy.nodes.graph import dropped_goal_topics
from mtpolicy.nodes.planning import PlannedGoals
from mtpolicy.nodes.stamps import StateTimes, stamp_seconds
from mtpolicy.observation import observe
from mtpolicy.planner import PlannerConfig
from mtpolicy.policy import ModelMismatch, OnnxPolicy, resolve_model_path
from mtpolicy.robots import RobotSpec, RobotSpecError, load_robot
from mtpolicy.workspace import ProgressMonitor, Workspace

MAX_RATE_HZ = 1000.0
"""Highest accepted ``rate_hz``: the rate of a fast ros2_control loop."""
NON_FINITE = "policy output is not finite"
"""The hold reason of a tick whose policy output had a NaN or infinity."""
PLANNING = "planning the goal configuration of the first goal set"
"""The hold reason of a planner-conditioned policy before its first plan."""
HOUSEKEEPING_PERIOD = 0.1
"""s between two rounds of the slow work (one timer: rclpy rebuilds its wait set, every timer included, on every
spin): every round, read the ROS clock (is /clock advancing?); every 2nd, check the progress towards the goals;
every 10th, publish /diagnostics; every 20th, look at the ROS graph (goals nobody takes, other publishers of
the command topic)."""

STOP_ACK_TIMEOUT = 0.5
"""Seconds the zero command on the way out may wait for the subscribers' acknowledgements."""

PARAMS = [
    Param("model", "planar8_digrad", "ONNX policy: a path or the name of a shipped model", read_only=True),
    Param("robot", "", "robot name or MJCF path (default: the model's robot)", read_only=True),
    Param("joints", [], "command order of the joints (default: the model's joint order)", read_only=True),
    Param("command_topic", DEFAULT_COMMAND_TOPIC, "Float64MultiArray joint-velocity command topic",
          read_only=True),
    Param("rate_hz", 0.0, f"tick rate in Hz (0: 1 / the model's control period), at most {MAX_RATE_HZ:g}",
          within(0.0, MAX_RATE_HZ)),
    Param("tick_on_state", False, "also tick on every JointState (lowest state-to-command latency); "
          "the timer then ticks only when states stop arriving"),
    Param("state_timeout", 0.25, "joint states older than this (s), by arrival or by their stamp, => zeros", positive),
    Param("stamp_tolerance", 0.05, "s of clock offset between the computer that stamps the joint states and this "
          "one forgiven when judging a stamp's age", non_negative),
    Param("goal_timeout", 0.0, "goals older than this (s) expire => zeros; 0: goals never expire", non_negative),
    Param("goal_max_age", 5.0, "s: a goal stamped longer ago than this (stamp_tolerance forgiven) is ignored on "
          "arrival; 0: any age (a zero stamp is always taken)", non_negative),
    Param("goal_set_window", 0.02, "s: goals arriving within this of each other form one goal set (planned once; "
          "planner-conditioned policies only)", non_negative),
    Param("start_enabled", True, "publish policy commands from the start (else wait for ~/enable)",
          read_only=True),
    Param("limit_margin", 0.0, "joints within this many rad of a position limit may only move inwards",
          non_negative),
    Param("marker_rate_hz", 10.0, "~/markers publish rate (0: off)", non_negative),
    Param("workspace_margin", 0.01, "m a goal may lie outside an end effector's reach region (mtpolicy.workspace) "
          "before it is rejected", non_negative),
    Param("state_limit_margin", 0.1, "rad a joint state may lie outside the joint's limits before the states are "
          "rejected as implausible (zeros)", non_negative),
    Param("progress_timeout", 5.0, "s an end effector may make no progress towards its goal before a warning "
          "(0: off)", non_negative),
]


class StateLayout(NamedTuple):
    """What a JointState with a given name list holds of the robot's joints."""

    src: np.ndarray
    """Indices in the message of the robot's joints."""
    dst: np.ndarray
    """Their joint indices."""
    names: list[str]
    limits: np.ndarray
    velocity_limits: np.ndarray
    duplicated: str | None
    """Why the name list must be rejected (a joint named twice), or None."""


class PolicyController(Node):
    """Runs an exported policy on a robot and publishes safe joint-velocity commands."""

    def __init__(self) -> None:
        super().__init__("controller")
        self.params = p = ParamSet(self, PARAMS, on_change=self._on_params_set)
        self.policy = _load_policy(p.model)
        contract = self.policy.contract
        self.spec = spec = _load_robot_for(self.policy, p.robot)
        joints = [j for j in p.joints if j] or list(contract.joints)
        self.policy.check(spec, joints)  # ModelMismatch => run_node refuses to start, naming it
        self.joints = joints
        self.kin = Kinematics(spec)
        self._goal_config: np.ndarray | None = None  # q* of the plan followed (planner-conditioned policies)
        self.planned = None if not contract.planner else PlannedGoals(
            spec, PlannerConfig(**contract.planner), p.goal_set_window, self.get_logger().error)
        self._colors = ee_colors(self.kin.model, spec)
        self._order = np.array([spec.joint_names.index(j) for j in joints])
        self._joint_index = {name: i for i, name in enumerate(spec.joint_names)}
        self._layouts: dict[tuple[str, ...], StateLayout] = {}
        self._control_period = contract.control_period
        self.workspace = Workspace(self.kin)
        self._warn = ThrottledLog(self)
        if not self.policy.sealed:
            self.get_logger().warning(f"{self.policy.path} has no checksum (exported before checksums existed): "
                                      "its integrity cannot be checked; add one with "
                                      "`python -m mtpolicy_training.ship.export FILE`")

        n, k = spec.n_joints, spec.n_tasks
        self._q = np.zeros(n)
        self._times = StateTimes(n)
        self._goals = np.full((k, 3), np.nan)
        self._goal_stamp = np.full(k, -math.inf)
        self._ee = self.kin.ee_positions(self._q)
        self._enabled = p.start_enabled
        self._state_source = np.full(n, None, dtype=object)  # publisher (DDS GID) of each joint's newest state
        self._state_fault = self._state_fault_detail = ""
        self._state_fault_time = -math.inf
        self._goal_rejection, self._goal_rejection_time = "", -math.inf
        self.progress = ProgressMonitor(k, reach_tolerance(spec.name))
        self._stalled: list[int] = []
        self._rate_mark = (time.monotonic(), 0)
        self._hold_reason: str | None = "starting"
        self._hold_log = ReasonLog(self)
        self.tick_stats = LatencyStats()
        self.counts = dict(ticks=0, zero_ticks=0, clamped=0, limit_guarded=0, non_finite=0, rejected_goals=0,
                           rejected_states=0, out_of_order_states=0, late_commands=0, late_commands_busy=0)
        self._last_tick, self._last_cpu = math.inf, 0.0  # start of the previous tick, and this thread's CPU time then
        self._gap_max = 0.0  # longest interval between two ticks since the last diagnostics
        self._late_after = 2 * self._period()  # a command this long after the previous one is late

        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._clock_reading, self._clock_moved = 0, -math.inf  # ROS time (ns) last read; when it last advanced
        self._clock_problem: str | None = None
        self._sim_time = False  # use_sim_time, as of the last clock check
        self._dropped_goals: dict[str, str] = {}  # goal topic -> why its messages never reach this node
        self._command_rivals = 0  # other publishers of the command topic
        self._command = Float64MultiArray()
        self._cmd_pub = self.create_publisher(Float64MultiArray, p.command_topic, COMMAND_QOS)
        self._marker_pub = self.create_publisher(MarkerArray, "~/markers", MARKER_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", DIAGNOSTICS_QOS)
        self.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_joint_state, STATE_SUB_QOS)
        for i, ee in enumerate(spec.end_effectors):
            self.create_subscription(PointStamped, goal_topic(ee), lambda m, i=i: self._on_goal(i, m), GOAL_QOS)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self._timer = self.create_timer(self._timer_period(), self.tick, clock=self._steady)
        self._marker_timer = None
        self._reset_marker_timer()
        self._housekeeping_rounds = 0
        self.create_timer(HOUSEKEEPING_PERIOD, self._housekeeping, clock=self._steady)
        self._check_clock()
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
            self._marker_timer = self.create_timer(1.0 / self.params.marker_rate_hz, self._publish_markers,
                                                   clock=self._steady)

    def _on_params_set(self, names: set[str]) -> None:
        if "rate_hz" in names:
            self._late_after = 2 * self._period()
        if "goal_set_window" in names and self.planned is not None:
            self.planned.sets.window = self.params.goal_set_window
        if names & {"rate_hz", "tick_on_state"}:
            self._timer.timer_period_ns = int(self._timer_period() * 1e9)
            self._timer.reset()
        if "marker_rate_hz" in names:
            self._reset_marker_timer()

    # -- inputs -------------------------------------------------------------
    def _on_joint_state(self, msg: JointState, info: MessageInfo) -> None:
        now = time.monotonic()
        if len(msg.position) != len(msg.name):
            self.counts["rejected_states"] += 1
            self._warn("state_lengths", f"JointState with {len(msg.name)} names and {len(msg.position)} positions "
                                        "ignored")
            return
        layout = self._layout(msg.name)
        if layout.duplicated:
            self._reject_states("duplicated joint names", layout.duplicated)
            return
        position = np.asarray(msg.position, dtype=np.float64)[layout.src]
        finite = np.isfinite(position)
        if not finite.all():
            self.counts["rejected_states"] += int(np.count_nonzero(~finite))
            bad = [self.spec.joint_names[i] for i in layout.dst[~finite]]
            self._warn("state_non_finite", f"non-finite position of joint(s) {bad} ignored")
            position, layout = position[finite], self._layout_of(layout.src[finite], layout.dst[finite])
        stamp = stamp_seconds(msg.header.stamp)
        lag = self._stamp_lag(stamp)
        if (age := safety.stamp_age(lag, self.params.stamp_tolerance)) < 0:
            self._reject_states("stamp ahead of this node's clock", f"joint states stamped {-lag:.3f} s ahead of "
                                f"this node's clock (stamp_tolerance = {self.params.stamp_tolerance} s): are the "
                                "clocks synchronised?")
            return
        source = (info.get("publisher_gid") or {}).get("data")
        if self._implausible_states(layout, position, source, now, stamp, now - age):
            return
        self._q[layout.dst] = position
        self._times.record(layout.dst, now, now - age, lag, stamp)
        if self.params.tick_on_state:
            self.tick()
            self._timer.reset()

    def _implausible_states(self, layout: StateLayout, position: np.ndarray, source: object, now: float,
                            stamp: float, taken: float) -> bool:
        """Check new states of joints ``layout.dst`` from publisher ``source``, stamped ``stamp`` (NaN: none) and
        taken at monotonic time ``taken``; True if they must not be used at all.

        States stamped before the previous (fresh) state of a joint are ignored; positions beyond the limits are
        refused; a second publisher of the same joints, or a move impossible at the velocity limits in the time
        between the two states' stamps, is taken (it may be a reset) but holds zeros: each of these is a state
        fault.
        """
        timeout, dst = self.params.state_timeout, layout.dst
        if stamp == stamp and self._times.out_of_order(dst, stamp, now, timeout):  # NaN: no stamp
            self.counts["out_of_order_states"] += 1
            self._warn("out_of_order", "joint states stamped before the previous ones ignored")
            return True
        if reason := safety.outside_limits(layout.names, position, layout.limits, self.params.state_limit_margin):
            self._reject_states("position outside the joint limits", reason)
            return True
        sources = self._state_source[dst]
        if source is not None and (sources != source).any():
            recent = now - self._times.arrival[dst] <= timeout
            others = [j for j, r, s in zip(layout.names, recent, sources) if r and s is not None and s != source]
            self._state_source[dst] = source
            if others:
                self._reject_states("several publishers", f"{JOINT_STATES_TOPIC} has more than one publisher of "
                                    f"joint(s) {others} (within state_timeout = {timeout} s)")
                return False
        interval, close = self._times.close_intervals(dst, stamp, taken, timeout)
        if close.all():
            reason = safety.implausible_jump(layout.names, self._q[dst], position, interval, layout.velocity_limits)
        elif close.any():
            reason = safety.implausible_jump([n for n, c in zip(layout.names, close) if c], self._q[dst][close],
                                             position[close], interval[close], layout.velocity_limits[close])
        else:
            reason = None
        if reason:
            self._reject_states("position jump", reason)
        return False

    def _stamp_lag(self, stamp: float) -> float:
        """Age (s) of header stamp ``stamp`` on this node's clock; 0 for a zero stamp (NaN) or while a
        ``use_sim_time`` clock is missing or paused."""
        if math.isnan(stamp) or self._clock_problem is not None:
            return 0.0
        if not self._sim_time:
            return time.time() - stamp  # the ROS clock is the system clock then; reading it here costs 10 us less
        return self.get_clock().now().nanoseconds * 1e-9 - stamp

    def _reject_states(self, kind: str, detail: str) -> None:
        """A state fault: zeros for state_timeout s from now, and an error saying why (throttled per kind)."""
        self.counts["rejected_states"] += 1
        self._state_fault, self._state_fault_detail = f"implausible joint states ({kind})", detail
        self._state_fault_time = time.monotonic()
        self._warn(kind, f"joint states rejected, publishing zeros: {detail}", level="error")

    def _layout(self, names: list[str]) -> StateLayout:
        """What a JointState naming ``names`` holds of this robot's joints; cached per name list."""
        key = tuple(names)
        layout = self._layouts.get(key)
        if layout is None:
            if len(self._layouts) > 16:  # publishers with ever-changing name lists: stay bounded
                self._layouts.clear()
            src = np.array([k for k, n in enumerate(names) if n in self._joint_index], dtype=np.intp)
            layout = self._layouts[key] = self._layout_of(src, np.array([self._joint_index[names[k]] for k in src],
                                                                        dtype=np.intp), safety.duplicated_names(names))
        return layout

    def _layout_of(self, src: np.ndarray, dst: np.ndarray, duplicated: str | None = None) -> StateLayout:
        """The layout of the robot's joints ``dst`` at indices ``src`` of a message."""
        spec = self.spec
        return StateLayout(src, dst, [spec.joint_names[i] for i in dst], spec.joint_limits[dst],
                           spec.velocity_limits[dst], duplicated)

    def _on_goal(self, i: int, msg: PointStamped) -> None:
        point = (msg.point.x, msg.point.y, msg.point.z)
        now = time.monotonic()
        rejection = self._why_reject_goal(i, point, msg.header)
        if rejection is not None:
            kind, reason = rejection
            self.counts["rejected_goals"] += 1
            self._goal_rejection = f"goal for {self.spec.end_effectors[i]!r} rejected: {reason}"
            self._goal_rejection_time = now
            self._warn(f"goal_{i}_{kind}", f"{self._goal_rejection}; keeping the last valid goal")
            return
        self._goal_stamp[i] = now
        if self.planned is not None:
            self.planned.sets.add(i, np.array(point), now)  # the tick submits the goal set once it closes
            return
        if not np.array_equal(self._goals[i], point):
            self.progress.restart(i, now)
        self._goals[i] = point

    def _why_reject_goal(self, i: int, point: tuple[float, float, float], header: Header) -> tuple[str, str] | None:
        """(kind, reason) to reject a goal for end effector ``i``, or None; a warning is throttled per kind."""
        if reason := safety.goal_rejection(point, header.frame_id, self.spec.base_body):
            return ("frame" if all(map(math.isfinite, point)) else "non_finite"), reason
        if reason := self.workspace.goal_rejection(i, np.array(point), self.params.workspace_margin):
            return "workspace", reason
        lag, max_age = self._stamp_lag(stamp_seconds(header.stamp)), self.params.goal_max_age
        if max_age > 0 and safety.stamp_age(lag, self.params.stamp_tolerance) > max_age:
            return "old", f"stamped {lag:.1f} s ago (goal_max_age = {max_age} s)"
        return None

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
        if now - self._state_fault_time <= self.params.state_timeout:
            return self._state_fault
        timeout = self.params.state_timeout
        stale = self._times.stale(now, timeout)
        if stale == "missing":
            missing = [j for j, t in zip(self.spec.joint_names, self._times.taken) if not math.isfinite(t)]
            return f"no joint state yet for {missing} on {JOINT_STATES_TOPIC}"
        if stale == "arrival":
            return f"joint states stale (none for state_timeout = {timeout} s)"
        if stale == "stamp":
            return (f"joint states stale (stamped more than state_timeout = {timeout} s ago, beyond stamp_tolerance "
                    f"= {self.params.stamp_tolerance} s)")
        oldest, goal_timeout = float(self._goal_stamp.min()), self.params.goal_timeout
        if math.isfinite(oldest) and (goal_timeout <= 0 or not safety.is_stale(oldest, now, goal_timeout)):
            return None
        for ee, stamp in zip(self.spec.end_effectors, self._goal_stamp):
            if not math.isfinite(stamp):
                return f"no goal yet for {ee!r} on {goal_topic(ee)}"
            if goal_timeout > 0 and safety.is_stale(stamp, now, goal_timeout):
                return f"goal for {ee!r} expired (goal_timeout {goal_timeout} s)"
        return None

    def tick(self) -> None:
        """One control step: decide, filter, publish; time it."""
        start = time.perf_counter()
        now = time.monotonic()
        reason = self._why_hold(now)
        if self.planned is not None:
            reason = self._follow_plans(reason, now)
        q = self._q
        obs, self._ee = observe(self.kin, q, self._goals, self._goal_config)
        if reason is None:
            velocity, finite = safety.finite_or_zero(self.policy(obs).astype(np.float64))
            if not finite:
                self.counts["non_finite"] += 1
                reason = NON_FINITE
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
        self._count_late(now)
        if self._hold_log(reason, "publishing zeros: {}") and reason is None:
            self.get_logger().info("joint states and goals present: running the policy")
        self._hold_reason = reason
        self.tick_stats.add(time.perf_counter() - start)

    def _count_late(self, now: float) -> None:
        """Count a tick more than 2 periods after the previous one as late; as late and busy if this thread also
        computed for more than 2 periods in between (work in this node, e.g. planning, rather than waiting for a
        core on a loaded computer)."""
        cpu = time.thread_time()
        gap, busy = now - self._last_tick, cpu - self._last_cpu
        self._last_tick, self._last_cpu = now, cpu
        if gap > self._late_after:
            self.counts["late_commands"] += 1
            self.counts["late_commands_busy"] += busy > self._late_after
        self._gap_max = max(self._gap_max, gap)

    def _follow_plans(self, reason: str | None, now: float) -> str | None:
        """Follow the newest finished plan (observe its goal set and goal configuration); the hold reason:
        ``reason``, or PLANNING until the first plan is ready."""
        plan = self.planned.update(self._q, reason is None, now)
        if plan is not None:
            for i in np.flatnonzero(np.any(plan.goals != self._goals, axis=1)):
                self.progress.restart(i, now)
            self._goals, self._goal_config = plan.goals, plan.config
            if plan.worst > self.planned.worker.config.exact_within:
                self._warn("plan_inexact", f"planner: no configuration reaches the goal set exactly (largest error "
                                           f"{plan.worst * 1000:.1f} mm); driving to the closest found")
        return PLANNING if reason is None and self.planned.plan is None else reason

    def on_stop(self) -> None:
        """On the way out (``run_node``): one zero command, acknowledged by the subscribers (up to
        ``STOP_ACK_TIMEOUT``) before the process exits.

        ros2_control's JointGroupVelocityController holds the last command
        forever, so a controller that stops must leave zeros behind.
        """
        if self.planned is not None:
            self.planned.worker.stop()
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

    def _check_progress(self) -> None:
        """Warn (throttled) about end effectors that make no progress towards a valid goal while the policy runs."""
        now = time.monotonic()
        if self._hold_reason is not None or self.params.progress_timeout <= 0:
            self.progress.pause(now)
            self._stalled = []
            return
        errors = np.linalg.norm(self._ee - self._goals, axis=1)
        self.progress.update(errors, now)
        self._stalled = self.progress.stalled(errors, now, self.params.progress_timeout)
        for i in self._stalled:
            self._warn(f"stalled_{i}", f"no progress towards the goal of {self.spec.end_effectors[i]!r} for "
                                       f"{self.params.progress_timeout} s: error {errors[i]:.3f} m (out of reach, "
                                       "or not reachable together with the other goals?)")

    def _housekeeping(self) -> None:
        """A round of the slow work (HOUSEKEEPING_PERIOD)."""
        self._housekeeping_rounds += 1
        rounds = self._housekeeping_rounds
        self._check_clock()
        if rounds % 2 == 0:
            self._check_progress()
        if rounds % 10 == 0:
            self._publish_diagnostics()
        if rounds % 20 == 0:
            self._check_graph()

    def _check_clock(self) -> None:
        """With use_sim_time: note whether /clock advances; warn (throttled) while it is missing or paused."""
        now = time.monotonic()
        reading = self.get_clock().now().nanoseconds
        if reading != self._clock_reading:
            self._clock_reading, self._clock_moved = reading, now
        self._clock_problem = None
        self._sim_time = self.get_clock().ros_time_is_active
        if self._sim_time:
            if not math.isfinite(self._clock_moved):
                self._clock_problem = "use_sim_time is true but no /clock has arrived"
            elif now - self._clock_moved > self.params.state_timeout:
                self._clock_problem = (f"use_sim_time is true but /clock has not advanced for "
                                       f"{now - self._clock_moved:.1f} s (paused or gone)")
        if self._clock_problem is not None:
            self._warn("clock", f"{self._clock_problem}: the control loop runs on steady time, stamps are judged "
                                "by arrival")

    def _check_graph(self) -> None:
        """Say once per topic why goals on it are dropped (an end effector the robot lacks, a message type other
        than PointStamped); say when the command topic gains other publishers (an ERROR while it has any)."""
        dropped = dropped_goal_topics(self, self.spec)
        for topic in dropped.keys() - self._dropped_goals.keys():
            self.get_logger().warning(dropped[topic])
        self._dropped_goals = dropped
        rivals = self.count_publishers(self.params.command_topic) - 1
        if rivals > self._command_rivals:
            self.get_logger().error(f"{self.params.command_topic} has another publisher ({rivals} besides this "
                                    "controller): two controllers command the same joints")
        self._command_rivals = rivals

    def _status(self, now: float, since: float) -> tuple[bytes, str]:
        """The level and message of ``_condition``, with what else is wrong added: another publisher of the command
        topic (ERROR), a missing or paused /clock, goals dropped for their topic or type (WARN)."""
        level, messages = self._condition(now, since)
        messages = [messages]
        if self._command_rivals > 0:
            level = DiagnosticStatus.ERROR
            messages.append(f"{self.params.command_topic} has another publisher")
        extra = [m for m in (self._clock_problem, *self._dropped_goals.values()) if m]
        if extra:
            level = max(level, DiagnosticStatus.WARN)
        return level, "; ".join(messages + extra)

    def _condition(self, now: float, since: float) -> tuple[bytes, str]:
        """Diagnostic level and message: ERROR for implausible or stale joint states and non-finite policy
        output, WARN for other holds, goals rejected since ``since`` and stalled end effectors, else OK."""
        error, warn = DiagnosticStatus.ERROR, DiagnosticStatus.WARN
        if now - self._state_fault_time <= self.params.state_timeout:
            return error, f"{self._state_fault}: {self._state_fault_detail}"
        if self._hold_reason is not None:
            stale = self._times.stale(now, self.params.state_timeout) in ("arrival", "stamp")
            return (error if stale or self._hold_reason == NON_FINITE else warn), self._hold_reason
        if self._goal_rejection_time > since:
            return warn, self._goal_rejection
        if self._stalled:
            errors = np.linalg.norm(self._ee - self._goals, axis=1)
            return warn, "no progress towards the goal of " + ", ".join(
                f"{self.spec.end_effectors[i]!r} (error {errors[i]:.3f} m)" for i in self._stalled)
        return DiagnosticStatus.OK, "running"

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        p50, p99 = self.tick_stats.percentiles_ms(50, 99)
        goal_age = now - self._goal_stamp.min()
        (since, ticks), self._rate_mark = self._rate_mark, (now, self.counts["ticks"])
        planning = {} if self.planned is None else self.planned.diagnostics()
        gap_max, self._gap_max = self._gap_max, 0.0
        values = {**planning, "tick_latency_p50_ms": f"{p50:.4f}", "tick_latency_p99_ms": f"{p99:.4f}",
                  "tick_latency_samples": str(len(self.tick_stats.samples)),
                  "command_gap_max_ms": f"{gap_max * 1e3:.2f}", "rate_hz": f"{1 / self._period():.2f}",
                  "achieved_rate_hz": f"{(self.counts['ticks'] - ticks) / (now - since):.2f}",
                  "state_age_s": f"{self._times.age(now):.3f}", "goal_age_s": f"{goal_age:.3f}",
                  "enabled": str(self._enabled), **{f"{k}_total": str(v) for k, v in self.counts.items()}}
        level, message = self._status(now, since)
        status = DiagnosticStatus(name=f"{self.get_name()}: policy {self.policy.path.name}",
                                  hardware_id=self.spec.name, message=message, level=level,
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        self._diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status]))


def _load_robot_for(policy: OnnxPolicy, robot: str) -> RobotSpec:
    """The robot ``robot`` (default: the model's) with the model's end effectors; a model made for another robot
    is refused naming the robot it is for."""
    contract = policy.contract
    try:
        return load_robot(robot or contract.robot, list(contract.end_effectors))
    except RobotSpecError as e:
        if robot and robot != contract.robot:
            raise ModelMismatch(f"{policy.path.name} is a model for robot {contract.robot!r} (end effectors "
                                f"{list(contract.end_effectors)}), not {robot!r}: {e}") from None
        raise


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
