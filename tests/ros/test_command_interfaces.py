"""Each command interface over DDS (velocity, position, trajectory): sim + controller reach goal sets, and no
command the controller sends changes faster than the robot's acceleration limits.

The robot is tests/fixtures/robots/arm3_limited, whose manifest sets acceleration limits of 3-5 rad/s^2 (a
step of 0.15-0.25 rad/s per 20 Hz command), driven by the fixture policy (tests/helpers.py) linearised at its
home pose. Every command is recorded with its DDS source timestamp, the time the controller published it, so
the interval between two commands is the controller's own, not the test process's (which a loaded machine
delays); each step is checked against a_max times that interval (at most 2 periods: the ramp's cap).
"""

from __future__ import annotations

import numpy as np
import pytest
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory

from helpers import REPO, goals_near_home, make_fixture_policy, publish_until, reach
from mtpolicy.commands import DEFAULT_TOPICS, INTERFACES
from mtpolicy.robots import load_robot
from mtpolicy_tools.record import RECORD_QOS

pytestmark = pytest.mark.timeout(150)

ROBOT = REPO / "tests" / "fixtures" / "robots" / "arm3_limited"
RATE = 20.0
HOME = np.array([0.3, -0.4, 1.0])
"""The ``ready`` keyframe."""
OFFSETS = ([0.25, 0.2, -0.25], [-0.2, -0.1, 0.2])
"""Two goal sets: the end effector at home + these joint offsets (rad)."""
SLACK = 0.0002
"""s of the interval allowed beyond the source timestamps'. The controller's ramp counts each command's interval
from the moment the previous one left (its clock read after ``publish`` returned, when DDS had stamped it) to the
moment it reads its clock to shape the next (before DDS stamps that), so the interval between two source
timestamps is never shorter than the ramp's, however long the process waited for a core in between: what is left
is the two clocks' difference (DDS stamps with the system clock, the ramp reads the monotonic one; NTP slews both).
A ramp that skipped the limit, or stepped for two periods within one, fails."""


@pytest.fixture(scope="module")
def limited():  # noqa: ANN201
    return load_robot(ROBOT)


@pytest.fixture(scope="module")
def limited_model(tmp_path_factory, limited):  # noqa: ANN001, ANN201
    return make_fixture_policy(tmp_path_factory.mktemp("models") / "arm3_limited.onnx", limited, at=HOME)


class Recorder:
    """Every command on the interface's topic: (source timestamp in s, values), values being the velocities, the
    positions, or the trajectory's points as (time_from_start, positions, velocities)."""

    def __init__(self, monitor, interface: str):  # noqa: ANN001
        self.interface, self.commands = interface, []
        msg_type = JointTrajectory if interface == "trajectory" else Float64MultiArray
        # a deep queue: a driver's depth of 1 would drop commands while this process waits for a core, and a
        # position step over several periods would read as one period's
        monitor.create_subscription(msg_type, DEFAULT_TOPICS[interface], self._on, RECORD_QOS)

    def _on(self, msg, info) -> None:  # noqa: ANN001
        stamp = info["source_timestamp"] * 1e-9
        if self.interface == "trajectory":
            points = [(p.time_from_start.sec + p.time_from_start.nanosec * 1e-9, np.array(p.positions),
                       np.array(p.velocities)) for p in msg.points]
            self.commands.append((stamp, points))
        else:
            self.commands.append((stamp, np.array(msg.data)))

    def velocities(self, period: float) -> list[tuple[float, float, np.ndarray]]:
        """(stamp, interval the ramp allowed, velocity command) of each command: velocity, the implied velocity
        (position step / control period: positions are integrated over it) or the trajectory's first point's."""
        out, previous = [], None
        for stamp, values in self.commands:
            dt = np.inf if previous is None else min(stamp - previous[0], 2 * period)
            if self.interface == "velocity":
                velocity = values
            elif self.interface == "position":
                velocity = np.full_like(values, np.nan) if previous is None else (values - previous[1]) / period
            else:
                velocity = values[0][2]
            out.append((stamp, dt, velocity))
            previous = (stamp, values)
        return out


def largest_step_ratio(recorder: Recorder, a_max: np.ndarray, period: float, slack: float = SLACK) -> float:
    """The largest |v_k - v_(k-1)| / (a_max (dt_k + ``slack``)) over the recorded commands and joints (within each
    trajectory too, between its points)."""
    ratios = []
    series = [(s, dt, v) for s, dt, v in recorder.velocities(period) if np.all(np.isfinite(v))]
    for (_, _, v0), (_, dt, v1) in zip(series, series[1:]):
        ratios.append(float(np.max(np.abs(v1 - v0) / (a_max * (dt + slack)))))
    if recorder.interface == "trajectory":
        for _, points in recorder.commands:
            for (t0, _, v0), (t1, _, v1) in zip(points, points[1:]):
                ratios.append(float(np.max(np.abs(v1 - v0) / (a_max * (t1 - t0)))))
            assert not np.any(points[-1][2]), "a trajectory that does not end at rest"
    return max(ratios)


@pytest.mark.parametrize("interface", INTERFACES)
def test_each_command_interface_reaches_goals_and_never_steps_faster_than_the_acceleration_limits(
        interface, start_node, robot_monitor, limited, limited_model):
    sim = start_node("mtpolicy_sim", robot=ROBOT, command_interface=interface)
    ctrl = start_node("mtpolicy_controller", model=limited_model, robot=ROBOT, command_interface=interface,
                      rate_hz=RATE, state_timeout=0.25)
    monitor = robot_monitor(limited)
    recorder = Recorder(monitor, interface)
    for offsets in OFFSETS:
        goals = goals_near_home(limited, HOME + offsets)
        assert reach(monitor, goals, timeout=30.0), (monitor.errors(goals), ctrl.output()[-2000:],
                                                     sim.output()[-2000:])
    # the e-stop ramps to rest too, and the robot stops
    far = goals_near_home(limited, HOME)
    monitor.publish_goals(far)
    assert monitor.wait_until(lambda: len(recorder.commands) > 5 and moving(recorder), 10.0)
    assert monitor.call(SetBool, "/controller/enable", SetBool.Request(data=False)).success
    assert monitor.wait_until(lambda: at_rest(recorder, 5), 10.0), recorder.commands[-5:]
    ratio = largest_step_ratio(recorder, limited.acceleration_limits, 1 / RATE)
    raw = largest_step_ratio(recorder, limited.acceleration_limits, 1 / RATE, slack=0.0)
    print(f"{interface}: {len(recorder.commands)} commands, largest step {ratio:.3f} x a_max (dt + {SLACK} s), "
          f"{raw:.3f} x a_max dt")
    assert ratio <= 1.0 + 1e-6, ratio  # time_from_start is in whole ns
    assert "Traceback" not in ctrl.output() + sim.output()


def moving(recorder: Recorder) -> bool:
    return bool(np.any(recorder.velocities(1 / RATE)[-1][2]))


def at_rest(recorder: Recorder, count: int) -> bool:
    """The last ``count`` commands command no motion."""
    tail = recorder.velocities(1 / RATE)[-count:]
    return len(tail) == count and all(np.all(np.abs(np.nan_to_num(v)) < 1e-9) for _, _, v in tail)


@pytest.mark.parametrize("interface", ["position", "trajectory"])
def test_the_launch_file_runs_a_shipped_policy_on_each_interface(interface, spawn, monitor, planar8):
    """``mtpolicy launch sim_controller command_interface:=...``: both nodes take it, and the shipped planar8_digrad
    reaches a goal set (the goal tool's distribution) through positions or trajectories. planar8 has no
    acceleration limits: commands as fast as the policy's."""
    from mtpolicy.kinematics import Kinematics
    from mtpolicy.reach_task import sample_goal_sets
    from mtpolicy_tools.launch_runner import find_executable

    topic = DEFAULT_TOPICS[interface]
    launch = spawn("launch", [str(find_executable("mtpolicy", "mtpolicy")), "launch", "sim_controller",
                              "model:=planar8_digrad", f"command_interface:={interface}", f"command_topic:={topic}"])
    recorder = Recorder(monitor, interface)
    goals = sample_goal_sets(Kinematics(planar8), np.random.default_rng(0), 1)[0]
    assert reach(monitor, goals, timeout=30.0), (monitor.errors(goals), launch.output()[-3000:])
    out = launch.output()
    assert f"{interface} commands on {topic}" in out and out.count(f"commands on {topic}") == 2, out[-3000:]
    assert recorder.commands and "Traceback" not in out


@pytest.mark.parametrize("interface", ["velocity", "trajectory"])
def test_a_controller_stopped_while_the_robot_moves_ramps_to_rest_before_it_exits(
        interface, start_node, robot_monitor, limited, limited_model):
    """SIGINT mid-move: velocity commands ramp down at a_max, a period at a time, to a last zero; a trajectory
    controller gets one last trajectory that ramps to rest, which the driver runs out after the process is gone."""
    import signal

    start_node("mtpolicy_sim", robot=ROBOT, command_interface=interface)
    ctrl = start_node("mtpolicy_controller", model=limited_model, robot=ROBOT, command_interface=interface,
                      rate_hz=RATE)
    monitor = robot_monitor(limited)
    recorder = Recorder(monitor, interface)
    goals = goals_near_home(limited, HOME + OFFSETS[0])

    def fast() -> bool:
        return len(recorder.commands) > 2 and np.max(np.abs(recorder.velocities(1 / RATE)[-1][2])) > 0.5

    assert publish_until(monitor, goals, fast, 20.0), recorder.commands[-3:]
    before = len(recorder.commands)
    ctrl.signal(signal.SIGINT)
    assert monitor.wait_until(lambda: ctrl.returncode is not None, 15.0), ctrl.output()[-2000:]  # spinning: every
    assert ctrl.returncode == 0, ctrl.output()[-2000:]                                 # command of the ramp received
    monitor.spin_for(0.3)
    assert "stopping: published " + ("one zero command" if interface == "velocity" else "a trajectory to rest") \
        in ctrl.output(), ctrl.output()[-2000:]
    if interface == "velocity":
        # from > 0.5 rad/s at <= 5 rad/s^2: at least 2 periods of ramp, then the last zero; not one step
        assert not np.any(recorder.commands[-1][1]) and len(recorder.commands) - before >= 3, recorder.commands[-4:]
    ratio = largest_step_ratio(recorder, limited.acceleration_limits, 1 / RATE)
    assert ratio <= 1.0 + 1e-6, ratio


def test_a_killed_trajectory_controller_leaves_a_robot_that_stops_by_itself(start_node, robot_monitor, limited,
                                                                             limited_model):
    """SIGKILL mid-move (no last command): the driver runs out the last trajectory, which keeps the velocity for
    trajectory_horizon and ramps to rest at a_max; so the robot stops within that travel, with no timeout of
    its own (the sim's command_timeout applies to velocity commands only)."""
    import signal
    import time

    start_node("mtpolicy_sim", robot=ROBOT, command_interface="trajectory")
    ctrl = start_node("mtpolicy_controller", model=limited_model, robot=ROBOT, command_interface="trajectory",
                      rate_hz=RATE, trajectory_horizon=0.1)
    monitor = robot_monitor(limited)
    recorder = Recorder(monitor, "trajectory")
    goals = goals_near_home(limited, HOME + OFFSETS[0])
    assert publish_until(monitor, goals, lambda: len(recorder.commands) > 2 and np.max(np.abs(
        recorder.commands[-1][1][0][2])) > 0.5, 20.0), recorder.commands[-3:]
    velocity = np.abs(recorder.commands[-1][1][0][2])
    assert monitor.wait_until(lambda: np.isfinite(monitor.q).all(), 10.0)  # the kill position is a measured one
    ctrl.signal(signal.SIGKILL)
    q_kill = monitor.q.copy()
    still = {"q": q_kill, "since": time.monotonic()}

    def at_rest() -> bool:
        if np.max(np.abs(monitor.q - still["q"])) > 1e-4:
            still.update(q=monitor.q.copy(), since=time.monotonic())
        return time.monotonic() - still["since"] > 0.3

    assert monitor.wait_until(at_rest, 10.0), monitor.q
    travel = np.abs(monitor.q - q_kill)
    # at most: the horizon and one period at speed (the last trajectory's first point), the ramp at a_max, and the
    # time the commands and states were on their way (0.1 s at the velocity limit)
    bound = velocity * 0.15 + velocity ** 2 / (2 * limited.acceleration_limits) + 0.1 * limited.velocity_limits
    print(f"killed at {velocity.round(3)} rad/s: travelled {travel.round(3)} rad (bound {bound.round(3)})")
    assert np.all(travel <= bound), (travel, bound)
