"""Faults of the joint states and of time (issues 43 and 49), each as a user met it: a second publisher, positions
outside the limits, duplicated names, impossible jumps; states stamped long ago or out of order, queued while the
controller was stopped; use_sim_time without a /clock. Shared pieces: tests/ros/faults.py.
"""

from __future__ import annotations

import signal

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.time import Time
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState

from faults import (GOALS_NEAR_HOME, MODEL, StatePublisher, diagnostics, goal_set, held_from_first_zero, seen,
                    stamped_states, start_driven_controller, start_stack, states_of, value)
from helpers import goals_near_home, publish_until, reach, scaled


# -- implausible or conflicting joint states ---------------------------------
@pytest.mark.timeout(120)
def test_a_second_joint_state_publisher_gives_zeros_and_an_error(start_node, monitor, planar8):
    """Issue: a second /joint_states publisher at home + 0.3 rad made the commands flip sign, nothing logged."""
    _, ctrl = start_stack(start_node)
    statuses = diagnostics(monitor)
    assert reach(monitor, goal_set(planar8)), monitor.errors()
    b = goal_set(planar8, seed=1)
    monitor.publish_goals(b)
    commands = StatePublisher(monitor).publish(lambda: states_of(planar8, np.full(planar8.n_joints, 0.3)), 3.0)
    assert held_from_first_zero(commands, at_least=20), commands
    assert ctrl.wait_for_output("joint states rejected, publishing zeros: /joint_states has more than one "
                                "publisher", 1.0), ctrl.output()
    assert monitor.wait_until(lambda: seen(statuses, DiagnosticStatus.ERROR, "several publishers"), 3.0)
    assert reach(monitor, b, timeout=10.0), monitor.errors(b)  # the rogue publisher gone, the robot runs again


@pytest.mark.timeout(120)
def test_a_joint_state_outside_the_limits_is_rejected(start_node, monitor, planar8):
    """Issue: a position of 7 rad (limit 2) was accepted."""
    _, ctrl = start_stack(start_node)
    statuses = diagnostics(monitor)
    assert reach(monitor, goal_set(planar8)), monitor.errors()
    q = np.zeros(planar8.n_joints)
    q[planar8.joint_names.index("branch_1_joint_1")] = 7.0
    assert held_from_first_zero(StatePublisher(monitor).publish(lambda: states_of(planar8, q), 1.0, period=0.05))
    assert ctrl.wait_for_output("joint 'branch_1_joint_1' at 7.000 rad is outside its limits [-2.000, 2.000]", 1.0)
    assert monitor.wait_until(lambda: seen(statuses, DiagnosticStatus.ERROR, "outside the joint limits"), 3.0)


@pytest.mark.timeout(120)
def test_a_joint_state_with_a_duplicated_name_is_rejected(start_node, monitor, planar8):
    """Issue: a JointState naming a joint twice was accepted."""
    _, ctrl = start_stack(start_node)
    assert reach(monitor, goal_set(planar8)), monitor.errors()

    def duplicated() -> JointState:
        return JointState(name=[*planar8.joint_names, "shoulder_1"], position=[*monitor.q.tolist(), 1.0])
    assert held_from_first_zero(StatePublisher(monitor).publish(duplicated, 1.0, period=0.05))
    assert ctrl.wait_for_output("joint name(s) ['shoulder_1'] appear more than once", 1.0), ctrl.output()


@pytest.mark.timeout(120)
def test_a_joint_state_jump_impossible_at_the_velocity_limits_gives_zeros(start_node, monitor, planar8):
    """One publisher (a driver, no sim) whose shoulder_1 jumps 1 rad between two states 20 ms apart."""
    ctrl = start_node("mtpolicy_controller", model=MODEL)
    driver, home, goals = StatePublisher(monitor), np.zeros(planar8.n_joints), goal_set(planar8)

    def running() -> bool:
        monitor.publish_goals(goals)
        driver.publish(lambda: states_of(planar8, home), 0.2, period=0.02)
        return monitor.command is not None and bool(np.any(monitor.command))
    assert monitor.wait_until(running, 30.0), ctrl.output()
    jumped = home + np.eye(planar8.n_joints)[0]
    commands = driver.publish(lambda: states_of(planar8, jumped), 0.15, period=0.02)
    assert ctrl.wait_for_output("joint 'shoulder_1' jumped 1.000 rad", 2.0), ctrl.output()
    assert held_from_first_zero(commands), commands


# -- time (issue 49) -------------------------------------------------------------------
def test_with_use_sim_time_and_no_clock_the_controller_publishes_and_says_the_clock_is_missing(
        start_node, monitor, planar8, fixture_model):
    """Issue: with use_sim_time:=true and no /clock the controller published nothing (its timers ran on ROS time).
    Then a /clock that does not advance (a paused simulation): said too."""
    ctrl = start_node("mtpolicy_controller", model=fixture_model, use_sim_time=True, rate_hz=50.0)
    statuses = diagnostics(monitor)
    assert monitor.wait_until(lambda: len(monitor.commands) >= 5, scaled(20.0)), ctrl.output()
    assert not any(np.any(c) for _, c in monitor.commands)  # no states, no goals: zeros
    driver, goals = StatePublisher(monitor), goals_near_home(planar8, GOALS_NEAR_HOME)

    def running() -> bool:
        monitor.publish_goals(goals)
        driver.publish(lambda: stamped_states(monitor, planar8, np.zeros(planar8.n_joints)), 0.2, period=0.02)
        return monitor.command is not None and bool(np.any(monitor.command))
    assert monitor.wait_until(running, scaled(20.0)), ctrl.output()
    assert monitor.wait_until(lambda: any(s.level >= DiagnosticStatus.WARN and "no /clock has arrived" in s.message
                                          for s in statuses), scaled(5.0)), [s.message for s in statuses]
    assert ctrl.wait_for_output("use_sim_time is true but no /clock has arrived", 1.0), ctrl.output()
    clock = monitor.create_publisher(Clock, "/clock", 10)  # a paused simulation: the same time again and again
    paused = Clock(clock=monitor.get_clock().now().to_msg())
    for _ in range(10):
        clock.publish(paused)
        monitor.spin_for(0.1)
    assert monitor.wait_until(lambda: any("/clock has not advanced for" in s.message for s in statuses),
                              scaled(5.0)), ([s.message for s in statuses], ctrl.output())


@pytest.mark.timeout(120)
def test_joint_states_stamped_long_ago_hold_zeros_and_report_their_age(start_node, monitor, planar8, fixture_model):
    """Issue: states stamped 300 ms before they arrived (a queue, a slow link) were used: only arrival was judged."""
    ctrl, driver, _ = start_driven_controller(start_node, monitor, planar8, model=fixture_model, rate_hz=50.0,
                                              state_timeout=0.2)
    statuses = diagnostics(monitor)
    home = np.zeros(planar8.n_joints)
    late = lambda: stamped_states(monitor, planar8, home, age=0.3)  # noqa: E731
    assert held_from_first_zero(driver.publish(late, 1.0), at_least=10)
    assert driver.publish_until(late, lambda: any(
        s.level == DiagnosticStatus.ERROR and "stamped more than state_timeout = 0.2 s ago" in s.message
        and float(value(s, "state_age_s")) >= 0.3 for s in statuses), scaled(5.0)), [s.message for s in statuses]
    assert ctrl.wait_for_output("publishing zeros: joint states stale (stamped more than state_timeout", 1.0)
    assert driver.publish_until(lambda: stamped_states(monitor, planar8, home),
                                lambda: bool(np.any(monitor.command)), scaled(5.0))  # fresh states: running again


@pytest.mark.timeout(120)
def test_joint_states_stamped_before_the_previous_ones_are_ignored(start_node, monitor, planar8, fixture_model):
    """Issue: a state stamped before the one already used (reordered on the way) replaced it."""
    ctrl, driver, _ = start_driven_controller(start_node, monitor, planar8, model=fixture_model, rate_hz=50.0)
    home, turn = np.zeros(planar8.n_joints), [0]

    def alternating() -> JointState:  # home stamped now, then home + 0.05 rad stamped 100 ms ago
        turn[0] += 1
        if turn[0] % 2:
            return stamped_states(monitor, planar8, home)
        return stamped_states(monitor, planar8, home + 0.05, age=0.1)
    commands = driver.publish(alternating, 1.0, period=0.01)[5:]  # the first few may be on their way already
    assert len(commands) > 10 and np.any(commands[0]), commands
    assert all(np.array_equal(c, commands[0]) for c in commands), commands  # every one computed at home
    assert ctrl.wait_for_output("joint states stamped before the previous ones ignored", 1.0), ctrl.output()


@pytest.mark.timeout(120)
def test_states_that_waited_in_a_queue_neither_move_the_robot_nor_look_like_a_jump(start_node, monitor, planar8,
                                                                                 fixture_model):
    """Issue: after the controller was stopped for 2 s (SIGSTOP, SIGCONT), a state queued meanwhile was used as
    fresh, and the next, current one looked like a position jump. Here, deterministically: states of a joint moving
    at 0.25 rad/s, then none for 2 s, then one stamped at the start of the pause, then current ones."""
    ctrl, driver, _ = start_driven_controller(start_node, monitor, planar8, model=fixture_model, tick_on_state=True)
    start = monitor.get_clock().now()

    def moving(age: float = 0.0) -> JointState:  # joint 0 at 0.25 rad/s from 0 since start, stamped age s ago
        msg = stamped_states(monitor, planar8, np.zeros(planar8.n_joints), age)
        msg.position[0] = 0.25 * (Time.from_msg(msg.header.stamp) - start).nanoseconds * 1e-9
        return msg
    driver.publish(moving, 1.0)
    monitor.spin_for(2.0)
    queued = len(monitor.commands)
    driver.pub.publish(moving(age=1.99))
    assert monitor.wait_until(lambda: len(monitor.commands) > queued, scaled(5.0))
    assert not np.any(monitor.commands[queued][1]), monitor.commands[queued:]  # zeros: the state is 1.99 s old
    assert driver.publish_until(moving, lambda: bool(np.any(monitor.command)), scaled(5.0))
    assert "position jump" not in ctrl.output(), ctrl.output()


@pytest.mark.timeout(120)
def test_a_controller_stopped_for_2_s_resumes_without_a_false_jump(start_node, monitor, planar8):
    """The issue's run, as a regression check (it passed before the fix too: the controller subscribes to joint
    states with a history of 1, so few states wait in its queue on this machine)."""
    _, ctrl = start_stack(start_node, rate_hz=250.0)
    statuses = diagnostics(monitor)
    assert reach(monitor, goal_set(planar8)), monitor.errors()
    b = goal_set(planar8, seed=1)
    assert publish_until(monitor, b, lambda: bool(np.any(monitor.command)))
    ctrl.signal(signal.SIGSTOP)
    monitor.spin_for(2.0)
    ctrl.signal(signal.SIGCONT)
    assert reach(monitor, b, timeout=15.0), monitor.errors(b)
    assert "position jump" not in ctrl.output(), ctrl.output()
    assert not seen(statuses, DiagnosticStatus.ERROR, "position jump"), [s.message for s in statuses]
