"""Fault injection on the nodes: one test per defect of issues 43 and 49, each as a user met it, by what is faulty:
the goals (tests/ros/test_faults_goals.py), the joint states and time (test_faults_states.py), what the controller
is started with (test_faults_config.py); here every fault in turn, on one controller. Shared pieces:
tests/ros/faults.py.

The tests run the shipped planar8 policy (the one the issue's runs used), or
the fixture policy where no sim runs, in sim + controller processes and talk
to them over DDS from this process. Every test failed on the code before the
fix. The defects of training runs: tests/training/test_run_faults.py.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from geometry_msgs.msg import PointStamped
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool

from faults import StatePublisher, held_from_first_zero, stamped_states, start_driven_controller
from helpers import scaled
from mtpolicy.nodes.interfaces import COMMAND_QOS, DEFAULT_COMMAND_TOPIC, GOAL_QOS, goal_message


# -- every fault in turn, one controller (issue 49) ----------------------------------------------------
@pytest.mark.timeout(240)
def test_one_controller_goes_through_every_fault_in_turn_and_recovers_after_each(start_node, monitor, planar8,
                                                                                 fixture_model):
    """One controller process (no sim: this test is its robot) through each fault of this file in sequence: it is
    logged at its level, the controller holds zeros while it lasts (where it must), and after it the controller,
    still up, publishes the policy's command again (the same one: the states are at home again)."""
    ctrl, driver, goals = start_driven_controller(start_node, monitor, planar8, model=fixture_model, rate_hz=50.0)
    n, home = planar8.n_joints, np.zeros(planar8.n_joints)
    at = lambda q, age=0.0: lambda: stamped_states(monitor, planar8, q, age)  # noqa: E731
    policy = driver.publish(at(home), 0.5)[-1]
    assert np.any(policy)

    def logged(level: str, text: str) -> None:
        assert monitor.wait_until(lambda: any(f"[{level}]" in line and text in line
                                              for line in ctrl.output().splitlines()), scaled(5.0)), ctrl.output()

    def recovered() -> None:
        assert driver.publish_until(at(home), lambda: monitor.command is not None and np.array_equal(
            monitor.command, policy), scaled(5.0)), ctrl.output()
        assert ctrl.returncode is None and "Traceback" not in ctrl.output(), ctrl.output()

    # a rejected goal (WARN): the last valid goals kept, no hold
    monitor.publish_goals([[math.nan, 0.0, 0.0], None, None])
    logged("WARN", "goal for 'ee_1' rejected: non-finite goal")
    assert all(np.array_equal(c, policy) for c in driver.publish(at(home), 0.3)[3:])
    # goals on a topic of no end effector (WARN, once)
    stray = monitor.create_publisher(PointStamped, "/goals/ee_9", GOAL_QOS)
    stray.publish(goal_message(planar8.base_body, monitor.get_clock().now().to_msg(), [0.1, 0.1, 0.0]))
    logged("WARN", "goals on /goals/ee_9 are dropped")
    monitor.destroy_publisher(stray)
    recovered()
    # a position jump (ERROR): zeros for state_timeout
    assert held_from_first_zero(driver.publish(at(home + np.eye(n)[0]), 0.2))
    logged("ERROR", "joint 'shoulder_1' jumped 1.000 rad")
    jumped = time.monotonic()
    recovered()
    # non-finite positions (WARN): ignored, so the states go stale: zeros
    assert held_from_first_zero(driver.publish(at(np.full(n, math.nan)), 0.6), at_least=5)
    logged("WARN", "non-finite position of joint(s)")
    recovered()
    # a second publisher of the joint states (ERROR): zeros while it publishes
    rogue = StatePublisher(monitor)
    first = len(monitor.commands)
    for _ in range(25):  # 10 ms apart: the controller keeps only the newest state, so both must reach it
        driver.pub.publish(at(home)())
        monitor.spin_for(0.01)
        rogue.pub.publish(at(home + 0.01)())
        monitor.spin_for(0.01)
    rogue_commands = [c for _, c in monitor.commands[first:]]
    assert held_from_first_zero(rogue_commands, at_least=5), "".join(str(int(np.any(c))) for c in rogue_commands)
    logged("ERROR", "/joint_states has more than one publisher")
    monitor.destroy_publisher(rogue.pub)
    recovered()
    # stale joint states: none for 0.5 s, then states stamped 0.4 s before they are sent
    first = len(monitor.commands)
    monitor.spin_for(0.5)
    assert held_from_first_zero([c for _, c in monitor.commands[first:]], at_least=5)
    logged("WARN", "publishing zeros: joint states stale (none for state_timeout")
    recovered()
    assert held_from_first_zero(driver.publish(at(home, age=0.4), 0.4), at_least=5)
    logged("WARN", "publishing zeros: joint states stale (stamped more than state_timeout")
    recovered()
    # the e-stop (WARN): zeros until enabled again
    assert monitor.call(SetBool, "/controller/enable", SetBool.Request(data=False)).success
    assert held_from_first_zero(driver.publish(at(home), 0.3), at_least=5)
    logged("WARN", "e-stop: disabled")
    assert monitor.call(SetBool, "/controller/enable", SetBool.Request(data=True)).success
    recovered()
    # a second controller on the command topic (ERROR); this one keeps running
    rival = monitor.create_publisher(Float64MultiArray, DEFAULT_COMMAND_TOPIC, COMMAND_QOS)
    logged("ERROR", f"{DEFAULT_COMMAND_TOPIC} has another publisher")
    monitor.destroy_publisher(rival)
    recovered()
    # a reset: the robot moved away slowly (0.5 rad/s), then is back home at once (ERROR): zeros, then running
    driver.publish(at(home), jumped + 2.1 - time.monotonic())  # the first jump's error no longer throttles this one
    for k in range(25):
        driver.publish(at(home + 0.01 * k * np.eye(n)[0]), 0.02, period=0.02)
    assert held_from_first_zero(driver.publish(at(home), 0.2))
    logged("ERROR", "joint 'shoulder_1' jumped 0.240 rad")
    recovered()
