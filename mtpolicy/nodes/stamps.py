"""When each joint's newest state was taken, by its header stamp: the controller's staleness and jump judgement.

A state is judged by when it was taken, not only by when it arrived: its
header stamp, read on the node's clock with ``stamp_tolerance`` of clock
offset forgiven (``mtpolicy.safety.stamp_age``), gives the monotonic time it
was taken at, ``arrival - age``. A zero stamp (none set), or a node clock
that cannot be read against (a ``use_sim_time`` clock missing or paused),
counts as taken on arrival.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from builtin_interfaces.msg import Time

from mtpolicy import safety


def stamp_seconds(stamp: Time) -> float:
    """A header stamp in s; NaN for a zero stamp."""
    return stamp.sec + stamp.nanosec * 1e-9 if stamp.sec or stamp.nanosec else math.nan


class StateTimes:
    """Per joint, of its newest state: monotonic arrival time, monotonic time taken, stamp age on arrival, stamp."""

    def __init__(self, n_joints: int):
        self.arrival = np.full(n_joints, -math.inf)
        self.taken = np.full(n_joints, -math.inf)
        self.lag = np.zeros(n_joints)
        """The stamp's age on arrival (s; 0 without a stamp)."""
        self.stamp = np.full(n_joints, math.nan)
        self.newest_stamp = -math.inf
        """The newest stamp recorded: a state stamped no earlier is in order (no need to look per joint)."""

    def record(self, dst: np.ndarray, arrival: float, taken: float, lag: float, stamp: float) -> None:
        """Joints ``dst`` have a new state."""
        self.arrival[dst], self.taken[dst], self.lag[dst], self.stamp[dst] = arrival, taken, lag, stamp
        if stamp > self.newest_stamp:
            self.newest_stamp = stamp

    def out_of_order(self, dst: np.ndarray, stamp: float, now: float, timeout: float) -> bool:
        """Whether a state of joints ``dst`` stamped ``stamp`` is older than a joint's previous one, itself taken
        within ``timeout`` s (an older previous state: the publisher restarted, or its clock was reset)."""
        if stamp >= self.newest_stamp:
            return False
        return bool(np.any((stamp < self.stamp[dst]) & (now - self.taken[dst] <= timeout)))

    def close_intervals(self, dst: np.ndarray, stamp: float, taken: float,
                        timeout: float) -> tuple[np.ndarray, np.ndarray]:
        """Seconds from each joint's previous state to a new one (``mtpolicy.safety.sample_intervals``), and which
        of them lie within [0, ``timeout``]: the pairs a position jump is judged on."""
        interval = safety.sample_intervals(stamp, self.stamp[dst], taken, self.taken[dst])
        return interval, (interval >= 0) & (interval <= timeout)

    def stale(self, now: float, timeout: float) -> Literal["missing", "arrival", "stamp"] | None:
        """Why the states are stale at ``now``: a joint has none, none arrived for ``timeout`` s, or one was taken
        (by its stamp) more than ``timeout`` s ago; None if they are fresh."""
        if not safety.is_stale(float(self.taken.min()), now, timeout):
            return None
        if not np.isfinite(self.taken).all():
            return "missing"
        return "arrival" if safety.is_stale(float(self.arrival.min()), now, timeout) else "stamp"

    def age(self, now: float) -> float:
        """Age (s) of the oldest joint's state by its stamp (by its arrival without one)."""
        return float(np.max(now - self.arrival + self.lag))
