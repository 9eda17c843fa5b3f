"""Joint-state times by header stamp (mtpolicy.nodes.stamps, mtpolicy.state_intake), without ROS processes."""

import math

import numpy as np
from builtin_interfaces.msg import Time

from mtpolicy.nodes.stamps import stamp_seconds
from mtpolicy.state_intake import StateTimes


def test_a_zero_stamp_is_none():
    assert math.isnan(stamp_seconds(Time()))
    assert stamp_seconds(Time(sec=3, nanosec=500_000_000)) == 3.5


def test_staleness_says_whether_a_joint_has_none_none_arrived_or_one_was_stamped_too_long_ago():
    times, both = StateTimes(2), np.array([0, 1])
    assert times.stale(10.0, 0.25) == "missing"
    times.record(both, arrival=10.0, taken=10.0, lag=0.0, stamp=math.nan)
    assert times.stale(10.2, 0.25) is None and times.stale(10.3, 0.25) == "arrival"
    times.record(both, arrival=11.0, taken=10.7, lag=0.35, stamp=100.0)  # stamped 0.35 s before it arrived
    assert times.stale(11.0, 0.25) == "stamp" and times.age(11.0) == 0.35


def test_out_of_order_only_against_a_fresh_previous_state_and_intervals_by_stamp():
    times, joint = StateTimes(1), np.array([0])
    times.record(joint, arrival=10.0, taken=10.0, lag=0.0, stamp=100.0)
    assert times.out_of_order(joint, 99.9, now=10.1, timeout=0.25)
    assert not times.out_of_order(joint, 99.9, now=10.5, timeout=0.25)  # the previous one is stale: a restart
    interval, close = times.close_intervals(joint, 102.0, taken=10.01, timeout=0.25)  # queued: 2 s by stamp
    assert interval[0] == 2.0 and not close[0]
    interval, close = times.close_intervals(joint, 99.0, taken=10.5, timeout=0.25)
    assert interval[0] == -1.0 and not close[0]
