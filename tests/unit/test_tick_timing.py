"""The controller's tick timing without DDS: the period, the tick_on_state spacing, and the late commands counted
from the tick times given and this thread's CPU time."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from mtpolicy.nodes.tick_timing import STATE_TICK_SPACING, TickTiming


@dataclass
class Settings:
    """The controller parameters the timing reads (the node passes its ParamSet)."""

    rate_hz: float = 0.0
    tick_on_state: bool = False


def timing(rate_hz: float = 0.0, tick_on_state: bool = False, control_period: float = 0.05) -> TickTiming:
    return TickTiming(Settings(rate_hz, tick_on_state), control_period)  # type: ignore[arg-type]


def test_the_period_is_the_rate_s_else_the_policy_s_and_a_tick_on_state_timer_is_a_2_period_watchdog():
    assert timing().period() == 0.05 and timing(rate_hz=100.0).period() == 0.01
    assert timing(rate_hz=100.0).timer_period() == 0.01 and timing(100.0, tick_on_state=True).timer_period() == 0.02
    settings = Settings()
    t = TickTiming(settings, 0.05)  # type: ignore[arg-type]
    settings.rate_hz = 250.0  # a parameter change
    assert t.late_after == 0.1
    t.rate_changed()
    assert t.late_after == 0.008


def test_a_state_ticks_only_spaced_from_the_last_tick():
    t = timing(rate_hz=100.0, tick_on_state=True)
    assert t.spaced(5.0)  # no tick yet
    t.mark(5.0)
    assert not t.spaced(5.0 + STATE_TICK_SPACING * 0.01 - 1e-6) and t.spaced(5.0 + STATE_TICK_SPACING * 0.01)


def test_a_tick_more_than_2_periods_after_the_last_is_late_and_busy_only_if_this_thread_computed_meanwhile():
    t = timing(rate_hz=1000.0)  # late after 2 ms
    t.mark(10.0)
    t.mark(10.001)
    assert t.counts == dict(late_commands=0, late_commands_busy=0)
    time.sleep(0.01)  # waiting: no CPU time of this thread
    t.mark(10.1)
    assert t.counts["late_commands"] == 1 and t.counts["late_commands_busy"] == 0
    start = time.thread_time()
    while time.thread_time() - start < 3 * t.late_after:  # computing for 3 periods
        pass
    t.mark(10.2)
    assert t.counts["late_commands"] == 2 and t.counts["late_commands_busy"] == 1
    assert t.take_gap_max() == pytest.approx(0.1) and t.gap_max == 0.0
