"""Header stamps as seconds: how the controller reads the stamps of joint states and goals."""

from __future__ import annotations

import math

from builtin_interfaces.msg import Time


def stamp_seconds(stamp: Time) -> float:
    """A header stamp in s; NaN for a zero stamp (none set: the message is judged by its arrival)."""
    return stamp.sec + stamp.nanosec * 1e-9 if stamp.sec or stamp.nanosec else math.nan
