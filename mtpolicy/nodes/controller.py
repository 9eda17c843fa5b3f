"""Policy controller node: joint states + goals in, joint commands out.

Each tick (on the timer, at ``rate_hz`` whatever arrives; with ``tick_on_state`` on each joint state that
comes at least ``STATE_TICK_SPACING`` periods after the last tick: ``mtpolicy.nodes.tick_timing``): observation
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

The node builds its parts and wires their callbacks and timers; each part is a plain class that owns its state, in
``mtpolicy.nodes`` unless named otherwise. On the control path: ``JointStateIntake`` (``mtpolicy.state_intake``),
``GoalIntake`` (``goal_intake``: goals checked, the goals observed, plans followed), the ``Supervisor``
(``mtpolicy.supervisor``), ``CommandOutput`` (``command_out``) and ``TickTiming`` (``tick_timing``: the period, late
commands, the tick's latency). Off it, each housekeeping round (``HOUSEKEEPING_PERIOD``): ``ClockWatch``
(``clock_watch``: /clock), ``ProgressWatch`` (``progress_watch``), ``GraphWatch`` (``graph_watch``: dropped goals,
other command publishers) and ``ControllerReport`` (/diagnostics); ``ControllerMarkers`` (``markers``) on its timer.
"""

from __future__ import annotations

import math
import time

import numpy as np
from geometry_msgs.msg import PointStamped
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.subscription import MessageInfo
from rclpy.timer import Timer
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool

from mtpolicy import safety
from mtpolicy.kinematics import Kinematics
from mtpolicy.nodes.clock_watch import ClockWatch
from mtpolicy.nodes.command_out import CommandOutput
from mtpolicy.nodes.controller_model import contract_reach_tolerance, load_policy, load_robot_for
from mtpolicy.nodes.controller_params import PARAMS
from mtpolicy.nodes.controller_report import ControllerReport
from mtpolicy.nodes.goal_intake import GoalIntake
from mtpolicy.nodes.graph_watch import GraphWatch
from mtpolicy.nodes.interfaces import GOAL_QOS, JOINT_STATES_TOPIC, STATE_SUB_QOS, goal_topic
from mtpolicy.nodes.process import run_node, take_realtime_priority
from mtpolicy.nodes.markers import ControllerMarkers
from mtpolicy.nodes.params import PARAMETER_OPTIONS, ParamSet
from mtpolicy.nodes.planning import PlannedGoals
from mtpolicy.nodes.progress_watch import ProgressWatch
from mtpolicy.nodes.reporting import ReasonLog, ThrottledLog, describe_error
from mtpolicy.nodes.stamps import stamp_seconds
from mtpolicy.nodes.tick_timing import TickTiming
from mtpolicy.observation import observe
from mtpolicy.planner import PlannerConfig
from mtpolicy.robots import DEFAULT_ROBOT
from mtpolicy.state_intake import JointStateIntake
from mtpolicy.supervisor import CommandRamp, Hold, Inputs, SupervisedRobot, Supervisor
from mtpolicy.workspace import Workspace

HOUSEKEEPING_PERIOD = 0.1
"""s between two rounds of the slow work (one timer: rclpy rebuilds its wait set, every timer included, on every
spin): every round, read the ROS clock (is /clock advancing?); every 2nd, check the progress towards the goals;
every 10th, publish /diagnostics. Every round, too, look at the ROS graph (goals nobody takes, other publishers
of the command topic): checked every 20th (2 s), it missed publishers that lived less."""

STOP_ACK_TIMEOUT = 0.5
"""Seconds the zero command on the way out may wait for the subscribers' acknowledgements."""


class PolicyController(Node):
    """Runs an exported policy on a robot and publishes safe joint commands: builds the parts, wires their
    callbacks and timers, and runs the control step (``tick``)."""

    def __init__(self) -> None:
        super().__init__("controller", **PARAMETER_OPTIONS)
        self.params = p = ParamSet(self, PARAMS, on_change=self._on_params_set)
        self.policy = load_policy(p.model or p.robot or DEFAULT_ROBOT)
        contract = self.policy.contract
        self._observes_command = contract.observation_layout.previous_command
        self.joints = joints = [j for j in p.joints if j] or list(contract.joints)
        self.spec = spec = load_robot_for(self.policy, p.robot, p.robot_description, joints, self.get_logger())
        self.kin = Kinematics(spec)
        self._warn = ThrottledLog(self)
        if not self.policy.sealed:
            self.get_logger().warning(f"{self.policy.path} has no checksum (exported before checksums existed): "
                                      "its integrity cannot be checked; add one with "
                                      "`python -m mtpolicy_training.ship.export FILE`")

        # the parts, each owning its state
        self.states = JointStateIntake(spec.joint_names, spec.joint_limits, spec.velocity_limits, p, JOINT_STATES_TOPIC,
                                       [self.kin.model.joint(j).name for j in range(self.kin.model.njnt)])
        self.inputs = Inputs(self.states.times, np.full(spec.n_tasks, -math.inf), enabled=p.start_enabled)
        guard = safety.CollisionGuard(self.kin, contract.control_period, spec.acceleration_limits,
                                      clearance=p.collision_clearance) if p.collision_guard else None
        self.supervisor = Supervisor(
            SupervisedRobot(spec.joint_names, contract.end_effectors, [goal_topic(ee) for ee in contract.end_effectors],
                            JOINT_STATES_TOPIC), p, spec.velocity_limits, spec.joint_limits, collision_guard=guard)
        self.timing = TickTiming(p, contract.control_period)
        self.clock_watch = ClockWatch(self, p, self._warn)
        self.progress = ProgressWatch(self.kin, self.states, p, self._warn, contract_reach_tolerance(contract),
                                      lambda: {**self.supervisor.counts, **self.output.ramp.counts})
        self.planned = None if not contract.planner else PlannedGoals(
            spec, PlannerConfig(**contract.planner), p.goal_set_window, self.get_logger().error)
        self.goals = GoalIntake(spec, Workspace(self.kin), p, self.clock_watch, self.inputs.goal_stamps, self.planned,
                                self._warn, self.progress.restart)
        self.hold: Hold | None = self.supervisor.hold(self.inputs)
        """The hold of the last tick (None: the policy commanded)."""
        self.counts = dict(ticks=0, zero_ticks=0)
        """The ticks, and those that published a hold's zeros."""
        self._hold_log = ReasonLog(self, initial="starting")  # the first tick that runs the policy logs it
        self._zeros = np.zeros(spec.n_joints)
        self.output = CommandOutput(self, p.command_interface, p.command_topic, joints,
                                    np.array([spec.joint_names.index(j) for j in joints]),
                                    CommandRamp(spec.acceleration_limits, spec.joint_limits, self.timing.period()),
                                    p.trajectory_horizon, fixed_period=not p.tick_on_state)
        self.graph_watch = GraphWatch(self, spec, self.output.topic)
        self.markers = ControllerMarkers(self, self.kin, self.states, self.goals)
        self.report = ControllerReport(self)

        # their callbacks and timers (every timer on steady time)
        self.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_joint_state, STATE_SUB_QOS)
        for i, ee in enumerate(contract.end_effectors):
            self.create_subscription(PointStamped, goal_topic(ee), lambda m, i=i: self.goals.on_goal(i, m), GOAL_QOS)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._timer = self.create_timer(self.timing.timer_period(), self.tick, clock=self._steady)
        self._marker_timer: Timer | None = None
        self._reset_marker_timer()
        self._housekeeping_rounds = 0
        self.create_timer(HOUSEKEEPING_PERIOD, self._housekeeping, clock=self._steady)
        self.clock_watch.check()
        self.get_logger().info(
            f"policy {self.policy.path.name} ({contract.method}) on robot {spec.name!r}"
            f"{' (robot_description)' if p.robot_description else ''}: {spec.n_joints} joints, "
            f"end effectors {list(spec.end_effectors)} in frame {spec.base_body!r}; {p.command_interface} commands on "
            f"{self.output.topic} in order {joints} at {1.0 / self.timing.period():.1f} Hz"
            + (f"; collision guard clearance {guard.kin.clearance * 1000:g} mm" if guard and guard.active else ""))
        take_realtime_priority(p.realtime_priority, self.get_logger())

    # -- parameters ---------------------------------------------------------
    def _reset_marker_timer(self) -> None:
        if self._marker_timer is not None:
            self.destroy_timer(self._marker_timer)
            self._marker_timer = None
        if self.params.marker_rate_hz > 0:
            self._marker_timer = self.create_timer(1.0 / self.params.marker_rate_hz, self.markers.publish,
                                                   clock=self._steady)

    def _on_params_set(self, names: set[str]) -> None:
        if "rate_hz" in names:
            self.timing.rate_changed()
            self.output.ramp.period, self.output.ramp.max_dt = self.timing.period(), self.timing.late_after
        if "trajectory_horizon" in names:
            self.output.shaper.horizon = self.params.trajectory_horizon
        if "goal_set_window" in names and self.planned is not None:
            self.planned.sets.window = self.params.goal_set_window
        if names & {"rate_hz", "tick_on_state"}:
            self.output.shaper.fixed_period = not self.params.tick_on_state
            self._timer.timer_period_ns = int(self.timing.timer_period() * 1e9)
            self._timer.reset()
        if "marker_rate_hz" in names:
            self._reset_marker_timer()

    # -- inputs -------------------------------------------------------------
    def _on_joint_state(self, msg: JointState, info: MessageInfo) -> None:
        """Take a JointState that passes the checks (``mtpolicy.state_intake``); a state fault holds zeros for
        state_timeout, logged at its severity (throttled per kind). With tick_on_state, tick (``TickTiming.spaced``).
        """
        now = time.monotonic()
        stamp = stamp_seconds(msg.header.stamp)
        source = (info.get("publisher_gid") or {}).get("data")
        admission = self.states.admit(msg.name, msg.position, stamp, self.clock_watch.stamp_lag(stamp), source, now)
        for kind, text in filter(None, (admission.ignored, *admission.notes)):
            self._warn(kind, text)
        if (fault := admission.fault) is not None:
            self.inputs.state_fault, self.inputs.state_fault_time = fault, now
            self._warn(fault.kind.name, f"joint states rejected, publishing zeros: {fault.detail}",
                       level=fault.severity.log_level)
        if admission.taken and self.params.tick_on_state and self.timing.spaced(now):
            self.tick()
            self._timer.reset()

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
        goals, q = self.goals, self.states.q
        if self.planned is not None:
            hold = goals.follow_plans(q, hold, now)
        sent = self.output.ramp.velocity if self._observes_command else None
        obs, _ = observe(self.kin, self._observed_positions(q, now) if hold is None else q, goals.positions,
                         goals.config, sent)
        velocity = self._zeros
        if hold is None:
            velocity, hold = self.supervisor.command(q, self.policy(obs).astype(np.float64))
        known = bool(np.isfinite(self.states.times.taken).all())  # every joint has had a state
        self.output.publish(velocity, q if known else None, self.params.limit_margin)
        self.counts["ticks"] += 1
        self.counts["zero_ticks"] += hold is not None
        self.timing.mark(now)
        if self._hold_log(hold, "publishing zeros: {}") and hold is None:
            self.get_logger().info("joint states and goals present: running the policy")
        self.hold = hold
        self.timing.latency.add(time.perf_counter() - start)

    def _observed_positions(self, q: np.ndarray, now: float) -> np.ndarray:
        """The joint angles the policy observes (``predict_state``): those predicted for when this tick's command
        takes effect, ``safety.predicted_positions`` with lead h = the state's age + the last tick's duration +
        actuation_latency, within [0, one tick period] (a longer delay is a fault the supervisor judges), the robot
        following the last command meanwhile."""
        p = self.params
        if not p.predict_state:
            return q
        lead = min(max(self.states.times.age(now) + self.timing.latency.last + p.actuation_latency, 0.0),
                   self.timing.period())
        return safety.predicted_positions(q, self.output.ramp.velocity, lead, self.spec.joint_limits)

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

    # -- the slow work, off the tick ----------------------------------------
    def _housekeeping(self) -> None:
        """A round of the slow work (HOUSEKEEPING_PERIOD)."""
        self._housekeeping_rounds += 1
        rounds = self._housekeeping_rounds
        self.clock_watch.check()
        if rounds % 2 == 0:
            self.progress.check(self.goals.positions, self.hold is None)
        if rounds % 10 == 0:
            self.report.publish()
        self.graph_watch.check()


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyController, args, gc_period=1.0)  # GC between ticks, not inside one


if __name__ == "__main__":
    raise SystemExit(main())
