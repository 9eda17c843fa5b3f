"""Policy controller node: joint states + goals in, joint commands out.

Each tick (on the timer, at ``rate_hz`` whatever arrives; with ``tick_on_state`` on each joint state that
comes at least ``STATE_TICK_SPACING`` periods after the last tick): observation
(``mtpolicy.observation``) from the newest joint angles (moved on by the last command to when this tick's command takes
effect: ``predict_state``), forward kinematics and goals -> ONNX policy -> the supervisor
(``mtpolicy.supervisor``) -> the command of ``command_interface``
(``mtpolicy.nodes.command_out``) in the order of the ``joints`` parameter:
joint velocities (``std_msgs/Float64MultiArray``, what ros2_control's
JointGroupVelocityController consumes; the default), joint positions (a
forward position controller) or a ``trajectory_msgs/JointTrajectory``
(JointTrajectoryController). Every command changes no faster than the robot's
acceleration limits (``CommandRamp``): a hold's zeros are reached by a ramp.
The stock velocity controller has no timeout,
so this node is the watchdog: the supervisor's checks (stale or implausible
joint states, a missing goal, the e-stop, a non-finite output) return a
``Hold`` => zeros, with a throttled log saying why, and the hold's severity is
the level of /diagnostics. The watchdog and every timer run on steady time
whatever ``use_sim_time`` says, so the node publishes without a ``/clock``;
with ``use_sim_time`` true and no ``/clock`` (or one that has not advanced for
``state_timeout``), it says so (WARN). The end effectors, and the reach
tolerance that progress is judged against, are the model's contract's. The robot
is the ``robot`` parameter's, or a URDF string in ``robot_description`` (``mtpolicy.robot_description``).

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
``goal_max_age`` ago, is rejected, the last valid one kept. Joint states pass
the checks of ``mtpolicy.state_intake`` (limits, duplicate names, jumps
impossible at the velocity limits, a second publisher, stamps read on this
node's clock with ``stamp_tolerance`` forgiven): a fault holds zeros for
``state_timeout`` with an ERROR. A zero stamp, or a ``use_sim_time`` clock
that is missing or paused, falls back to arrival times. Goals that never
reach this node (a topic of no end effector, a wrong type) and other
publishers of the command topic are found in the ROS graph and reported. An
end effector that makes no progress towards a valid goal for
``progress_timeout`` is reported (WARN). Every repeated warning is throttled.
Parameters: ``mtpolicy.nodes.controller_params``.

Topics: ``/joint_states`` (in), ``/goals/<end_effector>`` (in),
``<command_topic>`` (out), ``~/markers``, ``/diagnostics``.
Service: ``~/enable`` (std_srvs/SetBool): disabling ticks at once, so the hold's zero goes out within the call,
whatever the rate. On a stop (SIGINT, SIGTERM, SIGHUP or the parent's death) it ramps the command to rest before it
exits (``CommandOutput.stop``); an error in any callback publishes a zero command and is reported (``on_fault``),
and the node carries on.

/diagnostics also says (WARN) when the joint states degrade: arriving slower than the control rate, or later
after their stamps than one control period (``predict_state`` covers one); and (ERROR) when the commands stop:
none for two periods, or fewer than half of the configured rate over the last report
(``mtpolicy.nodes.controller_report``).
"""

from __future__ import annotations

import math
import time

import numpy as np
from geometry_msgs.msg import PointStamped
from rclpy.clock import Clock, ClockType, ROSClock
from rclpy.node import Node
from rclpy.subscription import MessageInfo
from rclpy.timer import Timer
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from std_srvs.srv import SetBool
from visualization_msgs.msg import MarkerArray

from mtpolicy import safety
from mtpolicy.kinematics import Kinematics
from mtpolicy.nodes.interfaces import GOAL_QOS, JOINT_STATES_TOPIC, MARKER_QOS, STATE_SUB_QOS, goal_topic
from mtpolicy.nodes.lifecycle import run_node
from mtpolicy.nodes.params import PARAMETER_OPTIONS, ParamSet
from mtpolicy.nodes.reporting import LatencyStats, ReasonLog, ThrottledLog, describe_error
from mtpolicy.nodes.command_out import CommandOutput
from mtpolicy.nodes.controller_model import contract_reach_tolerance, load_policy, load_robot_for
from mtpolicy.nodes.controller_params import PARAMS
from mtpolicy.nodes.controller_report import ControllerReport
from mtpolicy.nodes.markers import ee_colors, sphere_markers
from mtpolicy.nodes.graph import dropped_goal_topics
from mtpolicy.nodes.planning import PlannedGoals
from mtpolicy.nodes.stamps import stamp_seconds
from mtpolicy.observation import observe
from mtpolicy.planner import PlannerConfig
from mtpolicy.robots import DEFAULT_ROBOT
from mtpolicy.state_intake import JointStateIntake
from mtpolicy.supervisor import WAITING_FOR_PLAN, CommandRamp, Hold, Inputs, SupervisedRobot, Supervisor
from mtpolicy.workspace import ProgressMonitor, Workspace

HOUSEKEEPING_PERIOD = 0.1
"""s between two rounds of the slow work (one timer: rclpy rebuilds its wait set, every timer included, on every
spin): every round, read the ROS clock (is /clock advancing?); every 2nd, check the progress towards the goals;
every 10th, publish /diagnostics. Every round, too, look at the ROS graph (goals nobody takes, other publishers
of the command topic): checked every 20th (2 s), it missed publishers that lived less."""

STOP_ACK_TIMEOUT = 0.5
"""Seconds the zero command on the way out may wait for the subscribers' acknowledgements."""
STATE_TICK_SPACING = 0.8
"""With ``tick_on_state``: a state ticks only this many tick periods or more after the last tick (so the rate stays
within rate_hz / 0.8 however fast states come); the others only update the joint angles."""


class PolicyController(Node):
    """Runs an exported policy on a robot and publishes safe joint commands."""

    def __init__(self) -> None:
        super().__init__("controller", **PARAMETER_OPTIONS)
        self.params = p = ParamSet(self, PARAMS, on_change=self._on_params_set)
        self.policy = load_policy(p.model or p.robot or DEFAULT_ROBOT)
        contract = self.policy.contract
        self.joints = joints = [j for j in p.joints if j] or list(contract.joints)
        self.spec = spec = load_robot_for(self.policy, p.robot, p.robot_description, joints, self.get_logger())
        self.kin = Kinematics(spec)
        self._goal_config: np.ndarray | None = None  # q* of the plan followed (planner-conditioned policies)
        self.planned = None if not contract.planner else PlannedGoals(
            spec, PlannerConfig(**contract.planner), p.goal_set_window, self.get_logger().error)
        self._colors = ee_colors(self.kin.model, spec)
        self._order = np.array([spec.joint_names.index(j) for j in joints])
        self._control_period = contract.control_period
        self.workspace = Workspace(self.kin)
        self._warn = ThrottledLog(self)
        if not self.policy.sealed:
            self.get_logger().warning(f"{self.policy.path} has no checksum (exported before checksums existed): "
                                      "its integrity cannot be checked; add one with "
                                      "`python -m mtpolicy_training.ship.export FILE`")

        n, k = spec.n_joints, len(contract.end_effectors)
        self.states = JointStateIntake(spec.joint_names, spec.joint_limits, spec.velocity_limits, p, JOINT_STATES_TOPIC,
                                       [self.kin.model.joint(j).name for j in range(self.kin.model.njnt)])
        self._goals = np.full((k, 3), np.nan)
        self.inputs = Inputs(self.states.times, np.full(k, -math.inf), enabled=p.start_enabled)
        self.supervisor = Supervisor(
            SupervisedRobot(spec.joint_names, contract.end_effectors, [goal_topic(ee) for ee in contract.end_effectors],
                            JOINT_STATES_TOPIC), p, spec.velocity_limits, spec.joint_limits)
        self._zeros = np.zeros(n)
        self._goal_rejection, self._goal_rejection_time = "", -math.inf
        self.progress = ProgressMonitor(k, contract_reach_tolerance(contract))
        self._stalled: list[int] = []
        self.hold: Hold | None = self.supervisor.hold(self.inputs)
        """The hold of the last tick (None: the policy commanded)."""
        self._hold_log = ReasonLog(self)
        self.tick_stats = LatencyStats()
        self._tick_seconds = 0.0  # the last tick's duration: how long this one takes to publish, as predicted
        self.counts = dict(ticks=0, zero_ticks=0, rejected_goals=0, late_commands=0, late_commands_busy=0)
        self._last_tick, self._last_cpu = math.inf, 0.0  # start of the previous tick, and this thread's CPU time then
        self._late_after = 2 * self._period()  # a command this long after the previous one is late

        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._clock_reading, self._clock_moved = 0, -math.inf  # ROS time (ns) last read; when it last advanced
        self._clock_problem: str | None = None
        self._sim_time = False  # use_sim_time, as of the last clock check
        self._dropped_goals: dict[str, str] = {}  # goal topic -> why its messages never reach this node
        self._command_rivals = 0  # other publishers of the command topic
        self.output = CommandOutput(self, p.command_interface, p.command_topic, joints, self._order,
                                    CommandRamp(spec.acceleration_limits, spec.joint_limits, self._period()),
                                    p.trajectory_horizon, fixed_period=not p.tick_on_state)
        self._marker_pub = self.create_publisher(MarkerArray, "~/markers", MARKER_QOS)
        self.report = ControllerReport(self)
        self.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_joint_state, STATE_SUB_QOS)
        for i, ee in enumerate(contract.end_effectors):
            self.create_subscription(PointStamped, goal_topic(ee), lambda m, i=i: self._on_goal(i, m), GOAL_QOS)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self._timer = self.create_timer(self._timer_period(), self.tick, clock=self._steady)
        self._marker_timer: Timer | None = None
        self._reset_marker_timer()
        self._housekeeping_rounds = 0
        self.create_timer(HOUSEKEEPING_PERIOD, self._housekeeping, clock=self._steady)
        self._check_clock()
        self.get_logger().info(
            f"policy {self.policy.path.name} ({contract.method}) on robot {spec.name!r}"
            f"{' (robot_description)' if p.robot_description else ''}: {n} joints, "
            f"end effectors {list(spec.end_effectors)} in frame {spec.base_body!r}; {p.command_interface} commands on "
            f"{self.output.topic} in order {joints} at {1.0 / self._period():.1f} Hz")

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
            self.output.ramp.period, self.output.ramp.max_dt = self._period(), self._late_after
        if "trajectory_horizon" in names:
            self.output.shaper.horizon = self.params.trajectory_horizon
        if "goal_set_window" in names and self.planned is not None:
            self.planned.sets.window = self.params.goal_set_window
        if names & {"rate_hz", "tick_on_state"}:
            self.output.shaper.fixed_period = not self.params.tick_on_state
            self._timer.timer_period_ns = int(self._timer_period() * 1e9)
            self._timer.reset()
        if "marker_rate_hz" in names:
            self._reset_marker_timer()

    # -- inputs -------------------------------------------------------------
    def _on_joint_state(self, msg: JointState, info: MessageInfo) -> None:
        """Take a JointState that passes the checks (``mtpolicy.state_intake``); a state fault holds zeros for
        state_timeout, logged at its severity (throttled per kind)."""
        now = time.monotonic()
        stamp = stamp_seconds(msg.header.stamp)
        source = (info.get("publisher_gid") or {}).get("data")
        admission = self.states.admit(msg.name, msg.position, stamp, self._stamp_lag(stamp), source, now)
        for kind, text in filter(None, (admission.ignored, *admission.notes)):
            self._warn(kind, text)
        if (fault := admission.fault) is not None:
            self.inputs.state_fault, self.inputs.state_fault_time = fault, now
            self._warn(fault.kind.name, f"joint states rejected, publishing zeros: {fault.detail}",
                       level=fault.severity.log_level)
        spaced = self.counts["ticks"] == 0 or now - self._last_tick >= STATE_TICK_SPACING * self._period()
        if admission.taken and self.params.tick_on_state and spaced:
            self.tick()
            self._timer.reset()

    def _stamp_lag(self, stamp: float) -> float:
        """Age (s) of header stamp ``stamp`` on this node's clock; 0 for a zero stamp (NaN) or while a
        ``use_sim_time`` clock is missing or paused."""
        if math.isnan(stamp) or self._clock_problem is not None:
            return 0.0
        if not self._sim_time:
            return time.time() - stamp  # the ROS clock is the system clock then; reading it here costs 10 us less
        return self.get_clock().now().nanoseconds * 1e-9 - stamp

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
        self.inputs.goal_stamps[i] = now
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
        age = safety.stamp_age(lag, self.params.stamp_tolerance)
        if max_age > 0 and age > max_age:
            return "old", f"stamped {lag:.1f} s ago (goal_max_age = {max_age} s)"
        if max_age > 0 and age < -max_age:
            return "ahead", f"stamped {-lag:.1f} s ahead of this node's clock (goal_max_age = {max_age} s): are the " \
                            "clocks synchronised?"
        return None

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self.inputs.enabled = bool(request.data)
        response.success = True
        response.message = "enabled" if self.inputs.enabled else "disabled: publishing zeros"
        self.get_logger().warning(f"e-stop: {response.message}")
        self.tick()  # the hold's zero now, not up to a period later
        self._timer.reset()
        return response

    # -- control ------------------------------------------------------------
    def tick(self) -> None:
        """One control step: the supervisor's hold, or the policy's command filtered by it; publish; time it."""
        start = time.perf_counter()
        now = self.inputs.now = time.monotonic()
        hold = self.supervisor.hold(self.inputs)
        if self.planned is not None:
            hold = self._follow_plans(hold, now)
        q = self.states.q
        obs, _ = observe(self.kin, self._observed_positions(q, now) if hold is None else q, self._goals,
                         self._goal_config)
        velocity = self._zeros
        if hold is None:
            velocity, hold = self.supervisor.command(q, self.policy(obs).astype(np.float64))
        known = bool(np.isfinite(self.states.times.taken).all())  # every joint has had a state
        self.output.publish(velocity, q if known else None, self.params.limit_margin)
        self.counts["ticks"] += 1
        self.counts["zero_ticks"] += hold is not None
        self._count_late(now)
        if self._hold_log(hold, "publishing zeros: {}") and hold is None:
            self.get_logger().info("joint states and goals present: running the policy")
        self.hold = hold
        self._tick_seconds = time.perf_counter() - start
        self.tick_stats.add(self._tick_seconds)

    def _observed_positions(self, q: np.ndarray, now: float) -> np.ndarray:
        """The joint angles the policy observes (``predict_state``): those predicted for when this tick's command
        takes effect, ``safety.predicted_positions`` with lead h = the state's age + the last tick's duration +
        actuation_latency, within [0, one tick period] (a longer delay is a fault the supervisor judges), the robot
        following the last command meanwhile."""
        p = self.params
        if not p.predict_state:
            return q
        lead = min(max(self.states.times.age(now) + self._tick_seconds + p.actuation_latency, 0.0), self._period())
        return safety.predicted_positions(q, self.output.ramp.velocity, lead, self.spec.joint_limits)

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
        self.report.gap_max = max(self.report.gap_max, gap)

    def _follow_plans(self, hold: Hold | None, now: float) -> Hold | None:
        """Follow the newest finished plan (observe its goal set and goal configuration; a rejected one is reported,
        not followed); the hold: ``hold``, or WAITING_FOR_PLAN until the first plan is ready."""
        assert self.planned is not None, "only a planner-conditioned policy follows plans"
        plan = self.planned.update(self.states.q, hold is None, now)
        if plan is not None and plan.rejected:
            self._warn("plan_rejected", f"planner: goal set rejected ({self.planned.worker.config.rejection}); "
                                        "keeping the previous plan (zeros before the first)")
        elif plan is not None:
            for i in np.flatnonzero(np.any(plan.goals != self._goals, axis=1)):
                self.progress.restart(int(i), now)
            self._goals, self._goal_config = plan.goals, plan.config
            if plan.worst > self.planned.worker.config.exact_within:
                self._warn("plan_inexact", f"planner: no configuration reaches the goal set exactly (largest error "
                                           f"{plan.worst * 1000:.1f} mm); driving to the closest found")
        return WAITING_FOR_PLAN if hold is None and self.planned.plan is None else hold

    def on_stop(self) -> None:
        """On the way out (``run_node``): the command ramped to rest (``CommandOutput.stop``), the last one
        acknowledged by the subscribers (up to ``STOP_ACK_TIMEOUT``) before the process exits.

        ros2_control's JointGroupVelocityController holds the last command
        forever, so a controller that stops must leave zeros behind.
        """
        if self.planned is not None:
            self.planned.worker.stop()
        what = self.output.stop(self.states.q, self.params.limit_margin, STOP_ACK_TIMEOUT)
        self.get_logger().info(f"stopping: published {what} on {self.output.topic}")

    def on_fault(self, error: BaseException) -> None:
        """An error in a callback (``run_node``): a zero command now (the hold's, ramped at the acceleration
        limits), an ERROR logged (throttled) and in /diagnostics for ``FAULT_REPORT`` s; the node carries on."""
        fault = self.report.fault = describe_error(error), time.monotonic()
        self._warn(f"fault_{type(error).__name__}", f"internal error, publishing zeros: {fault[0]}", level="error")
        known = bool(np.isfinite(self.states.times.taken).all())
        self.output.publish(self._zeros, self.states.q if known else None, self.params.limit_margin)

    # -- outputs for people -------------------------------------------------
    def _publish_markers(self) -> None:
        stamp = self.get_clock().now().to_msg()
        frame = self.spec.base_body
        markers = sphere_markers(frame, "end_effectors", self._measured_ee(), self._colors, stamp, radius=0.02)
        markers.markers += sphere_markers(frame, "goals", self._goals, self._colors * [1, 1, 1, 0.5], stamp,
                                          radius=0.03, visible=np.isfinite(self.inputs.goal_stamps)).markers
        self._marker_pub.publish(markers)

    def _measured_ee(self) -> np.ndarray:
        """The end effectors at the newest measured joint angles (the policy observes predicted ones), for markers,
        progress and /diagnostics: read off the control tick."""
        return self.kin.ee_positions(self.states.q)

    def _check_progress(self) -> None:
        """Warn (throttled) about end effectors that make no progress towards a valid goal while the policy runs."""
        now = time.monotonic()
        if self.hold is not None or self.params.progress_timeout <= 0:
            self.progress.pause(now)
            self._stalled = []
            return
        errors = np.linalg.norm(self._measured_ee() - self._goals, axis=1)
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
            self.report.publish()
        self._check_graph()

    def _check_clock(self) -> None:
        """With use_sim_time: note whether /clock advances; warn (throttled) while it is missing or paused."""
        now = time.monotonic()
        reading = self.get_clock().now().nanoseconds
        if reading != self._clock_reading:
            self._clock_reading, self._clock_moved = reading, now
        self._clock_problem = None
        clock = self.get_clock()
        assert isinstance(clock, ROSClock), "a node's clock is a ROSClock"
        self._sim_time = clock.ros_time_is_active
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
        rivals = self.count_publishers(self.output.topic) - 1
        if rivals > self._command_rivals:
            self.get_logger().error(f"{self.output.topic} has another publisher ({rivals} besides this "
                                    "controller): two controllers command the same joints")
        self._command_rivals = rivals


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyController, args, gc_period=1.0)  # GC between ticks, not inside one


if __name__ == "__main__":
    raise SystemExit(main())
