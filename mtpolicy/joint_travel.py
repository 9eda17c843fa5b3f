"""Per joint, how far a velocity-commanded joint travels from rest in a time under its velocity and acceleration
limits, and the least time for a distance: the box of the time-optimal program (``mtpolicy.planner``) and the
bounds of the evaluator."""

from __future__ import annotations

import numpy as np


class JointTravel:
    """Per joint, the farthest travel ``D_j(t)`` from rest in ``t`` s under the velocity and acceleration limits,
    its slope, and its inverse: the least time to travel a distance.

    Rest through the target (``stop`` False, module docstring): the commands ramp from rest by ``a_j dt`` per
    period, ``D_j(t) = a_j t (t + dt) / 2`` up to ``K_j dt``, then ``v_j t - c_j``. Rest to rest (``stop``, in
    continuous time): accelerate, cruise, brake, ``D_j(t) = a_j t^2 / 4`` up to ``2 v_j / a_j``, then
    ``v_j t - v_j^2 / a_j``, so ``time(d) = 2 sqrt(d / a_j)`` up to ``v_j^2 / a_j``, then ``d / v_j + v_j / a_j``.
    Both ramps are ``D = c2 t^2 + c1 t`` with ``c2 = a_j / 2, c1 = a_j dt / 2`` and ``c2 = a_j / 4, c1 = 0``."""

    def __init__(self, velocity_limits: np.ndarray, acceleration_limits: np.ndarray, dt: float, stop: bool = False):
        self.v, self.dt = velocity_limits.astype(np.float64), dt
        ramping = np.isfinite(acceleration_limits)
        a = np.where(ramping, acceleration_limits, 1.0)  # 1.0: a placeholder where nothing ramps
        if stop:
            self._c2, self._c1 = a / 4, np.zeros_like(a)
            self.ramp_time = np.where(ramping, 2 * self.v / a, 0.0)
            self.offset = np.where(ramping, self.v ** 2 / a, 0.0)
        else:
            self._c2, self._c1 = a / 2, a * dt / 2
            k = np.where(ramping, np.floor(self.v / (a * dt)), 0.0)
            self.ramp_time = k * dt  # 0 where v_j is reached within one period
            self.offset = k * dt * self.v - a * dt ** 2 * k * (k + 1) / 2
        self.ramp_distance = self.distance(self.ramp_time)

    def distance(self, t: float | np.ndarray) -> np.ndarray:
        """D_j(t) (rad or m)."""
        return np.where(t < self.ramp_time, (self._c2 * t + self._c1) * t, self.v * t - self.offset)

    def slope(self, t: float) -> np.ndarray:
        """dD_j/dt."""
        return np.where(t < self.ramp_time, 2 * self._c2 * t + self._c1, self.v)

    def time(self, d: np.ndarray) -> np.ndarray:
        """Least time (s) to travel |d_j| per joint: the inverse of D_j."""
        d = np.abs(d)
        c2, c1 = self._c2, self._c1
        ramp = (np.sqrt(c1 ** 2 + 4 * c2 * np.minimum(d, self.ramp_distance)) - c1) / (2 * c2)
        return np.where(d <= self.ramp_distance, ramp, (d + self.offset) / self.v)
