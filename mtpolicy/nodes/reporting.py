"""What the nodes say: log lines of one severity per call site, an error of a callback in one line, warnings that do
not flood the log, and latency percentiles for their diagnostics."""

from __future__ import annotations

import math
import os
import time
import traceback
from collections import deque
from typing import Callable, Literal

import numpy as np
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.node import Node

Severity = Literal["debug", "info", "warning", "error", "fatal"]


def describe_error(error: BaseException) -> str:
    """One line: the error's type and message, and the file, line and function it was raised in."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (in {frames[-1].name}, {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"


def log_fault(node: Node) -> Callable[[BaseException], None]:
    """A node's default ``on_fault``: log the error of a callback (one line, ERROR) and carry on."""
    def on_fault(error: BaseException) -> None:
        node.get_logger().error(f"internal error, survived: {describe_error(error)}", throttle_duration_sec=2.0)
    return on_fault


def log(logger: RcutilsLogger, severity: Severity, text: str) -> None:
    """Log ``text`` at ``severity`` from a call site of that severity alone.

    rclpy keys its logging state by call site (function, file, line) and raises
    ``ValueError`` when one site logs at two severities; each severity therefore
    has its own line here, and no site of this package chooses a severity at run
    time (tests/unit/test_log_sites.py checks every site).
    """
    if severity == "fatal":
        logger.fatal(text)
    elif severity == "error":
        logger.error(text)
    elif severity == "warning":
        logger.warning(text)
    elif severity == "info":
        logger.info(text)
    else:
        logger.debug(text)


class ThrottledLog:
    """Logs a message of each kind (a key) at once, then at most every ``period`` s, counting the ones held back."""

    def __init__(self, node: Node, period: float = 2.0):
        self._node, self._period = node, period
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def __call__(self, key: str, text: str, level: Severity = "warning") -> None:
        now = time.monotonic()
        if now - self._last.get(key, -math.inf) < self._period:
            self._held[key] = self._held.get(key, 0) + 1
            return
        held = self._held.pop(key, 0)
        suffix = f" ({held} more like it in the last {now - self._last[key]:.1f} s)" if held else ""
        log(self._node.get_logger(), level, text + suffix)
        self._last[key] = now


class LatencyStats:
    """Rolling window of durations (s), reported in ms percentiles."""

    def __init__(self, window: int = 2000):
        self.samples: deque[float] = deque(maxlen=window)
        self.count = 0
        self.last = 0.0
        """The newest duration (s); 0 before the first."""

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)
        self.count += 1
        self.last = seconds

    def percentiles_ms(self, *q: float) -> list[float]:
        if not self.samples:
            return [float("nan")] * len(q)
        return [float(v) * 1e3 for v in np.percentile(np.fromiter(self.samples, float), q)]


class ReasonLog:
    """Warns at once when the reason changes, then at most every ``period`` s while it persists; ``initial`` is the
    reason before the first call (None: no condition; a node that starts not yet working names that state, so that a
    first call with None is a change)."""

    def __init__(self, node: Node, period: float = 2.0, initial: object = None):
        self._node, self._period = node, period
        self._reason: object = initial
        self._last = -math.inf

    def __call__(self, reason: object, text: str = "{}") -> bool:
        """Log ``text`` formatted with ``reason`` (any value with a ``str``; None: the condition ended); True if it
        changed."""
        now = time.monotonic()
        changed = reason != self._reason
        self._reason = reason
        if reason is not None and (changed or now - self._last >= self._period):
            self._node.get_logger().warning(text.format(reason))
            self._last = now
        return changed
