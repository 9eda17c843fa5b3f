"""The policy controller's ROS parameters, declared once.

The node declares and validates these (``mtpolicy.nodes.params.ParamSet``);
the parameter table of docs/real_robot.md and the comments of the controller's
entries in config/*.yaml are generated from them (``python -m
mtpolicy.nodes.param_docs``), and a unit test fails when those drift.
"""

from __future__ import annotations

from mtpolicy.commands import DEFAULT_TOPICS, INTERFACES
from mtpolicy.nodes.params import REALTIME_PRIORITY, Param, Range
from mtpolicy.robots.manifest import MAX_CLEARANCE

MIN_RATE_HZ, MAX_RATE_HZ = 1.0, 1000.0
"""Lowest and highest accepted ``rate_hz`` (besides 0, the model's rate): a velocity command stays in force until
the next, so the tick period bounds how long a stale one drives the robot; 1000 Hz is a fast ros2_control loop."""
MAX_SECONDS = 3600.0
"""Longest accepted timeout or age (s)."""

PARAMS = [
    Param("model", "", "ONNX policy: a path, the name of a shipped model, or empty: the robot's default model (its "
          "robot.yaml; the robot parameter's, else planar8's)", read_only=True),
    Param("robot", "", "robot name, robot folder or MJCF/URDF path (default: the model's robot); with "
          "robot_description, the robot folder that supplies its acceleration limits and the kinematics it is "
          "checked against", read_only=True),
    Param("robot_description", "", "the robot as a URDF string, as robot_state_publisher publishes it: its joints, "
          "position, velocity and effort limits replace the robot's; end effectors and reach tolerance come from the "
          "model (docs/own_robot.md, From robot_description)", read_only=True),
    Param("joints", [], "command order of the joints (default: the model's joint order)", read_only=True),
    Param("command_interface", "velocity", "what the commands are: velocity (Float64MultiArray of joint velocities, "
          "a forward velocity controller), position (Float64MultiArray of joint positions, a forward position "
          "controller) or trajectory (trajectory_msgs/JointTrajectory, JointTrajectoryController); every one "
          "changes no faster than the robot's acceleration limits",
          lambda v: None if v in INTERFACES else f"must be one of {', '.join(INTERFACES)}", read_only=True),
    Param("command_topic", "", "command topic (empty: the interface's, "
          + ", ".join(f"{t} for {i}" for i, t in DEFAULT_TOPICS.items()) + ")", read_only=True),
    Param("trajectory_horizon", 0.1, "trajectory interface: how long each trajectory keeps the commanded velocity "
          "(a point per tick) before it ramps to rest at the acceleration limits, so how long the robot keeps its "
          "speed if the commands stop", Range(0.001, 10.0), unit="s"),
    Param("rate_hz", 0.0, "tick rate (0: 1 / the model's control period)",
          Range(MIN_RATE_HZ, MAX_RATE_HZ, or_zero=True), unit="Hz"),
    Param("tick_on_state", False, "also tick on every JointState (lowest state-to-command latency); "
          "the timer then ticks only when states stop arriving"),
    Param("predict_state", True, "observe the joint angles predicted for when the command takes effect, q + h v "
          "(v: the last command; h: the state's age, this node's compute time and actuation_latency), rather than "
          "those measured: a command computed from an old state overshoots by h v"),
    Param("actuation_latency", 0.0, "the robot's delay from a command's arrival to its effect (its driver's "
          "control period, for one), added to the predicted state's lead", Range(0.0, 0.1), unit="s"),
    Param("state_timeout", 0.25, "joint states older than this, by arrival or by their stamp, => zeros",
          Range(0.001, 10.0), unit="s"),
    Param("stamp_tolerance", 0.05, "clock offset between the computer that stamps the joint states and this one "
          "forgiven when judging a stamp's age", Range(0.0, 10.0), unit="s"),
    Param("goal_timeout", 0.0, "goals older than this expire => zeros; 0: goals never expire",
          Range(0.01, MAX_SECONDS, or_zero=True), unit="s"),
    Param("goal_max_age", 5.0, "a goal stamped longer ago than this (stamp_tolerance forgiven) is ignored on "
          "arrival; 0: any age (a zero stamp is always taken)", Range(0.01, MAX_SECONDS, or_zero=True), unit="s"),
    Param("goal_set_window", 0.02, "goals arriving within this of each other form one goal set (planned once; "
          "planner-conditioned policies only)", Range(0.0, 1.0), unit="s"),
    Param("start_enabled", True, "publish policy commands from the start (else wait for ~/enable)", read_only=True),
    Param("limit_margin", 0.0, "joints this close to a position limit may only move inwards", Range(0.0, 1.0),
          unit="rad"),
    Param("collision_guard", True, "change a command whose move (two control periods at it, then braking at the "
          "acceleration limits) would put the robot into a new self-collision: slide it along the contacts, else "
          "scale it down, else zeros (safety.CollisionGuard)",
          read_only=True),
    Param("collision_clearance", 0.0, "with the collision guard, no two geoms more than two joints apart may come "
          "closer than this or the robot's collision_clearance (its robot.yaml), the larger, unless they already "
          "are, and then they may not approach (0 and none in robot.yaml: no penetration only; "
          "kinematics.first_collision)", Range(0.0, MAX_CLEARANCE), unit="m", read_only=True),
    Param("marker_rate_hz", 10.0, "~/markers publish rate (0: off)", Range(0.1, 100.0, or_zero=True), unit="Hz"),
    Param("workspace_margin", 0.01, "how far a goal may lie outside its end effector's reach region "
          "(mtpolicy.workspace) before it is rejected", Range(0.0, 1.0), unit="m"),
    Param("state_limit_margin", 0.1, "how far a joint state may lie outside the joint's limits before the states "
          "are rejected as implausible (zeros)", Range(0.0, 1.0), unit="rad"),
    Param("progress_timeout", 5.0, "how long an end effector may make no progress towards its goal before a "
          "warning (0: off)", Range(0.1, MAX_SECONDS, or_zero=True), unit="s"),
    REALTIME_PRIORITY,
]
"""The controller's parameters, in the order the docs list them."""
