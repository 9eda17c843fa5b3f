"""The time-optimal program's reach under acceleration limits (mtpolicy.planner.JointTravel): at whole periods it is
the distance of velocity commands ramped from rest at a_max, and its inverse is the least time to travel."""

import numpy as np

from mtpolicy.planner import JointTravel
from mtpolicy.safety import rate_limit


def test_travel_at_whole_periods_is_the_distance_of_commands_ramped_from_rest():
    v, a, dt = np.array([2.175, 2.175, 1.0, 3.0]), np.array([7.5, 15.0, np.inf, 100.0]), 0.05
    travel = JointTravel(v, a, dt)
    command, position = np.zeros(4), np.zeros(4)
    for n in range(1, 16):
        command = rate_limit(v, command, a, dt)[0]  # full speed asked: the ramp the controller and the env send
        position += command * dt
        assert np.allclose(travel.distance(n * dt), position)
        assert np.allclose(travel.time(position), n * dt)
    assert np.allclose(travel.ramp_time, [0.25, 0.1, 0.0, 0.0])
    times = np.linspace(0.0, 1.0, 201)
    distances = np.stack([travel.distance(t) for t in times])
    assert (np.diff(distances, axis=0) > 0).all()  # increasing: the box of N periods grows with N
    slopes = np.stack([travel.slope(t) for t in times[1:-1]])
    assert np.allclose(slopes, (distances[2:] - distances[:-2]) / (times[2] - times[0]), atol=0.2)


def test_without_acceleration_limits_travel_is_velocity_times_time():
    travel = JointTravel(np.array([1.0, 2.0]), np.full(2, np.inf), 0.05)
    assert np.allclose(travel.distance(0.3), [0.3, 0.6]) and np.allclose(travel.time(np.array([0.3, -0.6])), 0.3)
