"""Whether this node's ROS clock can be read against: with ``use_sim_time``, a /clock that has come and advances."""

from __future__ import annotations

import math
import time

from rclpy.clock import ROSClock
from rclpy.node import Node

from mtpolicy.nodes.params import ParamSet
from mtpolicy.nodes.reporting import ThrottledLog


class ClockWatch:
    """Watches the node's ROS clock (``check``, every housekeeping round) and reads stamps against it.

    ``problem`` says why stamps cannot be read against the clock: ``use_sim_time`` with no /clock yet, or one that
    has not advanced for state_timeout (paused or gone), warned (throttled); None while they can (always without
    use_sim_time). ``stamp_lag`` is a stamp's age on the clock, 0 while there is a problem.
    """

    def __init__(self, node: Node, params: ParamSet, warn: ThrottledLog):
        self._node, self._params, self._warn = node, params, warn
        self._reading, self._moved = 0, -math.inf  # ROS time (ns) last read; when it last advanced
        self.problem: str | None = None
        self._sim_time = False  # use_sim_time, as of the last check

    def check(self) -> None:
        """With use_sim_time: note whether /clock advances; warn (throttled) while it is missing or paused."""
        now = time.monotonic()
        reading = self._node.get_clock().now().nanoseconds
        if reading != self._reading:
            self._reading, self._moved = reading, now
        self.problem = None
        clock = self._node.get_clock()
        assert isinstance(clock, ROSClock), "a node's clock is a ROSClock"
        self._sim_time = clock.ros_time_is_active
        if self._sim_time:
            if not math.isfinite(self._moved):
                self.problem = "use_sim_time is true but no /clock has arrived"
            elif now - self._moved > self._params.state_timeout:
                self.problem = (f"use_sim_time is true but /clock has not advanced for "
                                f"{now - self._moved:.1f} s (paused or gone)")
        if self.problem is not None:
            self._warn("clock", f"{self.problem}: the control loop runs on steady time, stamps are judged "
                                "by arrival")

    def stamp_lag(self, stamp: float) -> float:
        """Age (s) of header stamp ``stamp`` on this node's clock; 0 for a zero stamp (NaN) or while a
        ``use_sim_time`` clock is missing or paused."""
        if math.isnan(stamp) or self.problem is not None:
            return 0.0
        if not self._sim_time:
            return time.time() - stamp  # the ROS clock is the system clock then; reading it here costs 10 us less
        return self._node.get_clock().now().nanoseconds * 1e-9 - stamp
