"""The command interfaces a robot's driver accepts, without ROS: velocities, positions, trajectories.

The controller decides a joint-velocity command each tick (the policy's, or a
hold's zeros) and ``CommandShaper`` turns it into what the chosen interface
sends, always through the supervisor's ``CommandRamp`` first, so no command of
any interface changes faster than the robot's acceleration limits:

* ``velocity``: the limited velocity v_k (ros2_control's forward velocity
  controller: ``Float64MultiArray`` of velocities);
* ``position``: a position command p_k = p_{k-1} + v_k T integrated from it
  (a forward position controller: ``Float64MultiArray`` of positions) over T,
  the tick period of a timer-driven controller, so that at the command rate
  the positions move at exactly the limited velocity and their second
  difference is within a_max T dt_k whatever the timing jitter (a late
  command leaves the position behind -- slower -- rather than jumping ahead);
  for a controller that ticks on each joint state (``fixed_period`` False), T
  is the measured interval since the previous command (at most 2 periods),
  anchored at the measured joint angles when the robot starts from rest (the
  first command, the first after a hold whose ramp has ended) away from the
  held position command by more than ``ANCHOR_TOLERANCE`` (moved: pushed, or
  held by a fault; within it, the position controller's tracking error, it
  resumes from the held command, so the setpoint does not step), and on a
  hold held where the ramp down ends. Clipped to the position limits;
* ``trajectory``: from p_k, the velocity v_k kept for ``horizon`` s (a point
  every period) then a stop ramp at the acceleration limits (the last point:
  velocity 0), for JointTrajectoryController. Each trajectory replaces the
  previous one; if the controller stops sending, the robot runs out the one
  it has: at most ``horizon`` s at speed, then it stops at a_max and holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mtpolicy.supervisor import CommandRamp

ANCHOR_TOLERANCE = 0.02
"""rad (m for a prismatic joint): a robot starting from rest farther than this from its held position command on
some joint has been moved, and the position command starts again where it is."""
INTERFACES = ("velocity", "position", "trajectory")
"""The values of the controller's ``command_interface`` parameter."""
DEFAULT_TOPICS = {"velocity": "/velocity_controller/commands", "position": "/position_controller/commands",
                  "trajectory": "/joint_trajectory_controller/joint_trajectory"}
"""The command topic of each interface when none is given: ros2_control's controllers' own (a forward velocity
controller named velocity_controller, a forward position controller named position_controller, a
JointTrajectoryController named joint_trajectory_controller)."""


@dataclass(frozen=True)
class TrajectoryPoint:
    """One point of a joint trajectory: when (s after its start), where (rad or m), how fast (rad/s or m/s)."""

    time: float
    positions: np.ndarray
    velocities: np.ndarray


@dataclass(frozen=True)
class Command:
    """One tick's command: the limited velocity, and the position command or trajectory its interface sends."""

    velocity: np.ndarray
    position: np.ndarray | None = None
    trajectory: tuple[TrajectoryPoint, ...] = ()


def trajectory_points(position: np.ndarray, velocity: np.ndarray, acceleration_limits: np.ndarray,
                      joint_limits: np.ndarray, period: float, horizon: float) -> tuple[TrajectoryPoint, ...]:
    """A trajectory from ``position`` (reached one ``period`` from its start) that keeps ``velocity`` for
    ``horizon`` s (at least one period; a point each period) and then stops, every joint decelerating uniformly
    over the same time T = max(max_j |v_j| / a_j, period), so at no more than its a_max; positions within
    ``joint_limits``. A zero velocity gives one point: hold ``position``."""
    n = max(1, math.ceil(horizon / period - 1e-9))
    clip = lambda p: np.clip(p, joint_limits[:, 0], joint_limits[:, 1])  # noqa: E731
    points = [TrajectoryPoint(period * (i + 1), clip(position + velocity * period * i), velocity) for i in range(n)]
    if not velocity.any():
        return tuple(points[:1])
    with np.errstate(divide="ignore"):
        stop = max(float((np.abs(velocity) / acceleration_limits).max()), period)
    last = position + velocity * period * (n - 1)
    return (*points, TrajectoryPoint(points[-1].time + stop, clip(last + velocity * stop / 2),
                                     np.zeros_like(velocity)))


class CommandShaper:
    """Turns each tick's velocity decision into the command of one interface (see the module docstring)."""

    def __init__(self, interface: str, ramp: CommandRamp, horizon: float = 0.0, fixed_period: bool = True):
        if interface not in INTERFACES:
            raise ValueError(f"command interface {interface!r}: expected one of {INTERFACES}")
        self.interface, self.ramp, self.horizon = interface, ramp, horizon
        self.fixed_period = fixed_period
        """Integrate positions over the ramp's period (commands come from a timer), else over the measured dt."""
        self.position: np.ndarray | None = None
        """The position command (position and trajectory interfaces), None before the first."""

    def __call__(self, target: np.ndarray, q: np.ndarray, now: float, margin: float = 0.0) -> Command:
        """The command at ``now`` for the velocity ``target`` (the policy's or zeros) at joint angles ``q``."""
        from_rest = self.ramp.at_rest
        velocity, dt = self.ramp(target, q, now, margin)
        if self.interface == "velocity":
            return Command(velocity)
        limits = self.ramp.joint_limits
        if self.position is None or (from_rest and velocity.any()
                                     and np.max(np.abs(q - self.position)) > ANCHOR_TOLERANCE):
            self.position = np.clip(q, limits[:, 0], limits[:, 1])  # anchored where the robot is
        step = self.ramp.period if self.fixed_period else dt
        self.position = np.clip(self.position + velocity * step, limits[:, 0], limits[:, 1])
        if self.interface == "position":
            return Command(velocity, self.position)
        points = trajectory_points(self.position, velocity, self.ramp.acceleration_limits, limits, self.ramp.period,
                                   self.horizon)
        return Command(velocity, self.position, points)

    def stop(self, q: np.ndarray, now: float, margin: float = 0.0) -> Command:
        """The trajectory interface's last command on the way out: the next command towards rest, with no horizon
        at speed, so one trajectory that ramps to rest at a_max (the driver runs it out after this process is
        gone)."""
        horizon, self.horizon = self.horizon, 0.0
        try:
            return self(np.zeros_like(self.ramp.velocity), q, now, margin)
        finally:
            self.horizon = horizon
