"""/joint_states matched by name (issue 52): a JointState naming joints the robot model lacks, or lacking joints the
model needs, is said once per name set, naming them; the hold of a joint gone stale names it. Over DDS: planar8, the
fixture policy, this test publishing the states (no sim). Without ROS: tests/unit/test_state_names.py.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from sensor_msgs.msg import JointState

from helpers import goals_near_home, scaled
from mtpolicy.nodes.interfaces import STATE_PUB_QOS

GOALS_NEAR_HOME = [0.2, -0.2, 0.2, -0.2, 0.2, -0.2, 0.2, -0.2]
"""A goal set of the planar8 fixture policy (its end effectors at home + these angles)."""


def running_controller(start_node, monitor, planar8, fixture_model):  # noqa: ANN001, ANN201
    """The controller with the fixture policy and no sim, running (policy commands) on this test's states at home;
    (controller, states publisher)."""
    ctrl = start_node("mtpolicy_controller", model=fixture_model, rate_hz=50.0)
    pub = monitor.create_publisher(JointState, "/joint_states", STATE_PUB_QOS)
    goals = goals_near_home(planar8, GOALS_NEAR_HOME)

    def running() -> bool:
        monitor.publish_goals(goals)
        pub.publish(JointState(name=list(planar8.joint_names), position=[0.0] * planar8.n_joints))
        monitor.spin_for(0.02)
        return monitor.command is not None and bool(np.any(monitor.command))
    assert monitor.wait_until(running, scaled(20.0)), ctrl.output()[-3000:]
    return ctrl, pub


def publish_for(monitor, pub, message: JointState, seconds: float) -> list[np.ndarray]:  # noqa: ANN001
    """Publish ``message`` every 20 ms for ``seconds``; the commands received meanwhile."""
    first, end = len(monitor.commands), time.monotonic() + seconds
    while time.monotonic() < end:
        pub.publish(message)
        monitor.spin_for(0.02)
    return [c for _, c in monitor.commands[first:]]


@pytest.mark.timeout(120)
def test_joint_states_naming_joints_the_model_lacks_are_warned_about_once_naming_them(start_node, monitor, planar8,
                                                                                        fixture_model):
    """Issue 52: nothing said that /joint_states names joints the model lacks (a gripper's, or a driver whose names
    differ from the model's). Said once per name set; the states are still taken."""
    ctrl, pub = running_controller(start_node, monitor, planar8, fixture_model)
    extra = JointState(name=[*planar8.joint_names, "gripper_finger_left"], position=[0.0] * (planar8.n_joints + 1))
    commands = publish_for(monitor, pub, extra, 3.0)  # 150 messages
    assert commands and np.any(commands[-1]), commands[-5:]  # still driving: nothing the model needs is missing
    text = "/joint_states names joint(s) the robot model lacks, ignored: ['gripper_finger_left']"
    assert ctrl.wait_for_output(text, 2.0), ctrl.output()[-3000:]
    assert ctrl.output().count("the robot model lacks") == 1, ctrl.output()[-3000:]


@pytest.mark.timeout(120)
def test_joint_states_lacking_a_joint_the_model_needs_are_warned_about_and_the_hold_names_it(start_node, monitor,
                                                                                              planar8, fixture_model):
    """Issue 52: a /joint_states without one of the model's joints held zeros saying only "joint states stale"."""
    ctrl, pub = running_controller(start_node, monitor, planar8, fixture_model)
    lost = planar8.joint_names[-1]
    partial = JointState(name=list(planar8.joint_names[:-1]), position=[0.0] * (planar8.n_joints - 1))
    commands = publish_for(monitor, pub, partial, 3.0)
    assert commands and not np.any(commands[-1]), commands[-5:]  # the lost joint's state went stale: zeros
    assert ctrl.wait_for_output(f"/joint_states sends a JointState without joint(s) the model needs: ['{lost}']", 2.0)
    assert ctrl.wait_for_output(f"publishing zeros: joint states stale (none of ['{lost}'] for state_timeout", 2.0), \
        ctrl.output()[-3000:]
    assert ctrl.output().count("without joint(s) the model needs") == 1, ctrl.output()[-3000:]
