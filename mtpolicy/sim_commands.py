"""How the simulator follows each command interface with its velocity servos, without ROS.

``CommandFollower`` keeps the last command of one interface (``mtpolicy.commands.INTERFACES``) and gives the
joint velocities the servos track at each step:

* ``velocity``: the command itself;
* ``position``: v = (q_cmd - q) / ``time_constant``, clipped to the velocity limits (a forward position
  controller's position loop);
* ``trajectory``: from the state at its arrival (t = 0) through its points by time, as JointTrajectoryController
  does: cubic Hermite segments through each point's positions and velocities, tracked as
  v = v_ref(t) + (q_ref(t) - q) / ``time_constant``; after the last point, its positions held;

each clipped, as a driver does, to the velocity limits and so that one physics step of it does not carry a joint
past its position limits (``safety.step_limit_guard``).
"""

from __future__ import annotations

import numpy as np

from mtpolicy.safety import step_limit_guard


class CommandFollower:
    """The servos' velocity targets from the last command of one interface (see the module docstring)."""

    def __init__(self, interface: str, velocity_limits: np.ndarray, position_limits: np.ndarray, time_constant: float,
                 step: float):
        self.interface, self.velocity_limits, self.time_constant = interface, velocity_limits, time_constant
        self.position_limits, self.step = position_limits, step
        """(n, 2) position limits (rad; +-inf: none) and the physics step (s) the servo targets hold for."""
        self.velocity = np.zeros(len(velocity_limits))
        """The velocity interface's last command (rad/s)."""
        self.position: np.ndarray | None = None
        """The position interface's last command (None: none yet: zero velocity)."""
        self.trajectory: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None
        """(start time, times (k,), positions (k, n), velocities (k, n)) of the trajectory followed, its first
        point the state at its arrival; None: none yet."""

    def clear(self) -> None:
        """Forget the last command: zero velocity."""
        self.velocity[:] = 0.0
        self.position = self.trajectory = None

    def follow_trajectory(self, now: float, q: np.ndarray, v: np.ndarray, times: np.ndarray, positions: np.ndarray,
                          velocities: np.ndarray) -> None:
        """Replace the trajectory followed with one received at ``now`` with the robot at ``q`` moving at ``v``."""
        self.trajectory = (now, np.concatenate([[0.0], times]), np.vstack([q, positions]),
                           np.vstack([v, velocities]))

    def reference(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """The trajectory's position and velocity at ``now``."""
        assert self.trajectory is not None, "reference() needs a trajectory"
        start, times, positions, velocities = self.trajectory
        t = now - start
        if t >= times[-1]:
            return positions[-1], np.zeros_like(positions[-1])
        i = int(np.searchsorted(times, t, side="right")) - 1
        h = times[i + 1] - times[i]
        s = (t - times[i]) / h
        p0, p1, v0, v1 = positions[i], positions[i + 1], velocities[i], velocities[i + 1]
        q = ((2 * s ** 3 - 3 * s ** 2 + 1) * p0 + (s ** 3 - 2 * s ** 2 + s) * h * v0 + (-2 * s ** 3 + 3 * s ** 2) * p1
             + (s ** 3 - s ** 2) * h * v1)
        v = ((6 * s ** 2 - 6 * s) / h * (p0 - p1) + (3 * s ** 2 - 4 * s + 1) * v0 + (3 * s ** 2 - 2 * s) * v1)
        return q, v

    def ctrl(self, q: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray]:
        """The velocities the servos track at ``now`` with the commanded joints at ``q``, and the mask of the joints
        a position limit stopped."""
        if self.interface == "velocity":
            target = self.velocity
        elif self.interface == "position":
            target = np.zeros_like(q) if self.position is None else (self.position - q) / self.time_constant
        elif self.trajectory is None:
            target = np.zeros_like(q)
        else:
            q_ref, v_ref = self.reference(now)
            target = v_ref + (q_ref - q) / self.time_constant
        target = np.minimum(np.maximum(target, -self.velocity_limits), self.velocity_limits)
        return step_limit_guard(q, target, self.position_limits, self.step)
