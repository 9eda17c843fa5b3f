"""The control tick's timing: its period, when it ran, how long it took, and the commands that came late."""

from __future__ import annotations

import math
import time

from mtpolicy.nodes.params import ParamSet
from mtpolicy.nodes.reporting import LatencyStats

STATE_TICK_SPACING = 0.8
"""With ``tick_on_state``: a state ticks only this many tick periods or more after the last tick (so the rate stays
within rate_hz / 0.8 however fast states come); the others only update the joint angles."""


class TickTiming:
    """When the control ticks run and how long they take.

    The period is 1 / ``rate_hz``, or the policy's control period while rate_hz is 0. Each tick calls ``mark``
    (``last``, when it ran; ``counts``, the late commands; ``gap_max``) and, once published, adds its duration to
    ``latency`` (``latency.last``: how long the next tick takes to publish, as predicted). A command more than
    ``late_after`` = 2 periods after the previous one is late; late and busy if this thread also computed for more
    than 2 periods in between (work in this node, e.g. planning, rather than waiting for a core on a loaded
    computer). ``rate_changed`` after rate_hz changes.
    """

    def __init__(self, params: ParamSet, control_period: float):
        self._params, self._control_period = params, control_period
        self.counts = dict(late_commands=0, late_commands_busy=0)
        self.latency = LatencyStats()
        """The ticks' durations (s), from their start to the command published."""
        self.last, self._last_cpu = math.inf, 0.0  # start of the last tick (inf: none), this thread's CPU time then
        self.late_after = 2 * self.period()
        self.gap_max = 0.0
        """The longest interval between two ticks since ``take_gap_max`` (s)."""

    def period(self) -> float:
        """The tick period (s)."""
        rate = self._params.rate_hz
        return 1.0 / rate if rate > 0 else self._control_period

    def timer_period(self) -> float:
        """The tick timer's period; with tick_on_state the timer is a watchdog, reset by every state, that ticks only
        after 2 tick periods without one (no timer wake-ups competing with the states)."""
        return self.period() * (2 if self._params.tick_on_state else 1)

    def rate_changed(self) -> None:
        self.late_after = 2 * self.period()

    def spaced(self, now: float) -> bool:
        """With tick_on_state: whether a state arriving at ``now`` ticks (``STATE_TICK_SPACING``)."""
        return self.last == math.inf or now - self.last >= STATE_TICK_SPACING * self.period()

    def mark(self, now: float) -> None:
        """A tick started at ``now``: count it as late if it came more than ``late_after`` after the previous one."""
        cpu = time.thread_time()
        gap, busy = now - self.last, cpu - self._last_cpu
        self.last, self._last_cpu = now, cpu
        if gap > self.late_after:
            self.counts["late_commands"] += 1
            self.counts["late_commands_busy"] += busy > self.late_after
        self.gap_max = max(self.gap_max, gap)

    def take_gap_max(self) -> float:
        """``gap_max``, then start it again."""
        gap_max, self.gap_max = self.gap_max, 0.0
        return gap_max
