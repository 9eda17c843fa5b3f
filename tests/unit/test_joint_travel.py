"""The time-optimal program's reach under acceleration limits (mtpolicy.joint_travel.JointTravel): at whole periods
it is the distance of velocity commands ramped from rest at a_max, and its inverse is the least time to travel."""

import numpy as np

from mtpolicy.joint_travel import JointTravel
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


def ruckig_duration(distance: float, v: float, a: float, final_velocity: float) -> float:
    """ruckig's least duration of one joint from rest to ``distance`` arriving at ``final_velocity`` (no jerk
    limit: the second-order problem)."""
    import ruckig

    inp = ruckig.InputParameter(1)
    inp.current_position, inp.current_velocity, inp.current_acceleration = [0.0], [0.0], [0.0]
    inp.target_position, inp.target_velocity, inp.target_acceleration = [distance], [final_velocity], [0.0]
    inp.max_velocity, inp.max_acceleration, inp.max_jerk = [v], [a], [np.inf]
    trajectory = ruckig.Trajectory(1)
    assert ruckig.Ruckig(1).calculate(inp, trajectory) == ruckig.Result.Working
    return trajectory.duration


LIMITS = (np.array([2.175, 2.175, 1.0, 3.0, 0.5]), np.array([7.5, 15.0, 40.0, 100.0, 2.0]), 0.05)
DISTANCES = (0.001, 0.01, 0.05, 0.2, 0.3154, 0.6, 1.0, 2.5)


def test_rest_through_target_time_is_ruckigs_least_time_within_half_a_period():
    """ruckig (continuous time) arrives at the target at any speed up to v_j: the fastest of its final velocities
    on a grid. The travel's commands step to a_j dt in the first period, so it arrives sooner, by at most dt / 2."""
    v, a, dt = LIMITS
    travel = JointTravel(v, a, dt)
    for d in DISTANCES:
        least = np.array([min(ruckig_duration(d, vj, aj, f) for f in np.linspace(0.0, vj, 401))
                          for vj, aj in zip(v, a)])
        gap = least - travel.time(np.full(len(v), d))
        assert (gap >= -1e-9).all() and (gap <= dt / 2 + 1e-6).all(), (d, gap)
    assert np.isclose(gap[-1], dt / 2)  # v_j a whole number of steps a_j dt (0.5 = 5 x 2.0 x 0.05): the most


def test_rest_to_rest_time_is_ruckigs_least_time():
    v, a, dt = LIMITS
    travel = JointTravel(v, a, dt, stop=True)
    for d in DISTANCES:
        expected = [ruckig_duration(d, vj, aj, 0.0) for vj, aj in zip(v, a)]
        assert np.allclose(travel.time(np.full(len(v), -d)), expected, rtol=1e-9, atol=1e-9)
        assert np.allclose(travel.distance(travel.time(np.full(len(v), d))), d)
    times = np.linspace(0.0, 3.0, 3001)
    distances = np.stack([travel.distance(t) for t in times])
    slopes = np.stack([travel.slope(t) for t in times[1:-1]])
    assert (np.diff(distances, axis=0) > 0).all()
    assert np.allclose(slopes, (distances[2:] - distances[:-2]) / (times[2] - times[0]), atol=0.05)
