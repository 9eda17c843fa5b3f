"""/joint_states matched by name: a JointState naming joints the robot model lacks, or lacking joints the model
needs, is said once per name set naming them (``mtpolicy.state_intake``), and the hold of joints gone stale names
them (``mtpolicy.supervisor``). Over DDS: tests/ros/test_joint_state_names.py."""

from __future__ import annotations

import math

import numpy as np

from mtpolicy.state_intake import JointStateIntake
from mtpolicy.supervisor import Inputs, SupervisedRobot, fresh_states


class Settings:
    state_timeout, stamp_tolerance, state_limit_margin, goal_timeout, limit_margin = 0.25, 0.05, 0.1, 0.0, 0.0


def intake() -> JointStateIntake:
    limits = np.array([[-2.0, 2.0]] * 3)
    return JointStateIntake(["a", "b", "c"], limits, np.full(3, 2.0), Settings(), "/joint_states",
                            model_joints=["a", "b", "c", "held"])


def test_a_joint_state_naming_joints_the_model_lacks_is_said_once_per_name_set():
    states = intake()
    first = states.admit(["a", "b", "c", "finger", "held"], [0.0] * 5, math.nan, 0.0, None, 1.0)
    assert first.taken and first.notes == (("state_unknown_joints", "/joint_states names joint(s) the robot model "
                                                                    "lacks, ignored: ['finger']"),)
    assert states.admit(["finger", "a", "b", "c", "held"], [0.0] * 5, math.nan, 0.0, None, 1.01).notes == ()
    assert states.admit(["a", "b", "c", "held"], [0.0] * 4, math.nan, 0.0, None, 1.02).notes == ()  # all known
    other = states.admit(["a", "b", "c", "thumb"], [0.0] * 4, math.nan, 0.0, None, 1.03)
    assert "['thumb']" in other.notes[0][1]


def test_a_joint_state_lacking_joints_the_model_needs_is_said_naming_them_and_the_hold_names_them_too():
    states = intake()
    assert states.admit(["a", "b", "c"], [0.0] * 3, math.nan, 0.0, None, 1.0).notes == ()
    partial = states.admit(["a", "c"], [0.0] * 2, math.nan, 0.0, None, 1.1)
    assert partial.taken and partial.notes == (("state_missing_joints", "/joint_states sends a JointState without "
                                                "joint(s) the model needs: ['b'] (their states must come in another, "
                                                "or go stale: zeros)"),)
    robot = SupervisedRobot(["a", "b", "c"], ["tip"], ["/goals/tip"], "/joint_states")
    hold = fresh_states(Inputs(states.times, np.zeros(1), now=1.3), Settings(), robot)
    assert str(hold) == "joint states stale (none of ['b'] for state_timeout = 0.25 s)"
