"""The bare SCHED_FIFO sleeper (benchmarks/fifo_wakeups.py) counts what the soak counts: intervals over 2 periods."""

from benchmarks.fifo_wakeups import sleep_to_deadlines


def test_the_sleeper_wakes_at_its_rate_and_reports_intervals_over_two_periods():
    result = sleep_to_deadlines(rate=200.0, seconds=0.25)
    assert 40 <= result["wakeups"] <= 51  # one a period (a loaded machine may skip some)
    assert result["longest_interval_ms"] >= 5.0 * 0.5
    assert result["late"] == len(result["late_at_s"])
    assert (result["late"] > 0) == (result["longest_interval_ms"] > 10.0)
