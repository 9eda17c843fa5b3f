"""Bring your own robot: a robot the package has never seen, as the robot files give it (docs/own_robot.md).

tests/fixtures/yarm's URDF gives the same robot as its MJCF; a moving base,
torque motors, bad XML and servos that cannot track are refused or named,
saying what to do. The robots served over DDS: tests/ros/test_own_robot.py.
"""

from __future__ import annotations

import re
import warnings

import mujoco
import numpy as np
import pytest

from helpers import TWOARM, YARM, YARM_END_EFFECTORS
from mtpolicy.kinematics import Kinematics
from mtpolicy.robots import load_robot


def test_urdf_gives_the_same_robot_as_the_mjcf():
    mjcf = load_robot(YARM / "robot.xml", YARM_END_EFFECTORS)
    urdf = load_robot(YARM / "robot.urdf", YARM_END_EFFECTORS)
    assert urdf.joint_names == mjcf.joint_names and urdf.base_body == mjcf.base_body == "base"
    np.testing.assert_array_equal(urdf.joint_limits, mjcf.joint_limits)
    np.testing.assert_array_equal(urdf.velocity_limits, mjcf.velocity_limits)
    np.testing.assert_array_equal(urdf.chain_mask, mjcf.chain_mask)
    assert mjcf.chain_mask.sum(axis=1).tolist() == [5, 5] and mjcf.shared_mask.sum() == 2
    q = np.random.default_rng(0).uniform(-1.5, 1.5, (20, 8))
    k_mjcf, k_urdf = Kinematics(mjcf), Kinematics(urdf)
    np.testing.assert_allclose(k_urdf.ee_positions_batch(q), k_mjcf.ee_positions_batch(q), atol=1e-12)
    np.testing.assert_allclose(k_urdf.jacobians(q[0]), k_mjcf.jacobians(q[0]), atol=1e-12)
    # the velocity servos compile_model adds track their commands
    model = urdf.load_model()
    data = mujoco.MjData(model)
    command = np.linspace(-1.0, 1.0, 8)
    data.ctrl[urdf.actuator_ids(model)] = command
    mujoco.mj_step(model, data, nstep=250)
    np.testing.assert_allclose(data.qvel[k_urdf.dof_adr], command, atol=0.05)


def test_urdf_joint_without_velocity_limit_is_named(tmp_path):
    from mtpolicy.robots import RobotSpecError

    text = (YARM / "robot.urdf").read_text().replace('effort="60" velocity="2"', 'effort="0" velocity="2"', 1)
    (tmp_path / "bad.urdf").write_text(text)
    with pytest.raises(RobotSpecError, match="'base_yaw' needs <limit velocity> and effort > 0"):
        load_robot(tmp_path / "bad.urdf", YARM_END_EFFECTORS)


@pytest.mark.parametrize("edit, error", [
    (('</worldbody>', '<body name="oops"></worldbody>'), "MuJoCo cannot compile bad.xml: XML parse error"),
    (('<body name="base" pos="0 0 0.05" childclass="yarm">',
      '<body name="base" pos="0 0 0.05" childclass="yarm"><joint name="spin" axis="0 0 1"/>'),
     "root body 'base' carries joint(s) ['spin'], so the base frame would move; put it inside a joint-less body, "
     '<worldbody><body name="base_mount">'),  # not name="base": a body of that name exists (repeated name 'base')
    (('<velocity class="yarm" name="base_yaw" joint="base_yaw"/>', '<motor name="base_yaw" joint="base_yaw" '
      'ctrlrange="-2 2"/>'), "actuator 'base_yaw' (joint 'base_yaw') is not a velocity servo"),
])
def test_moving_base_and_torque_motors_are_refused_saying_what_to_do(edit, error, tmp_path):
    from mtpolicy.robots import RobotSpecError

    text = (YARM / "robot.xml").read_text().replace(*edit)
    if "spin" in edit[1]:  # one more joint in the home keyframe
        text = text.replace('qpos="0 0 0 0 0 0 0 0"', 'qpos="0 0 0 0 0 0 0 0 0"')
    (tmp_path / "bad.xml").write_text(text)
    with pytest.raises(RobotSpecError, match=re.escape(error)):
        load_robot(tmp_path / "bad.xml")


def test_servos_that_cannot_track_are_named(tmp_path):
    from mtpolicy.robots import ServoWarning

    text = (YARM / "robot.xml").read_text()
    (tmp_path / "soft.xml").write_text(text.replace('kv="20"', 'kv="1"'))
    with pytest.warns(ServoWarning) as caught:
        load_robot(tmp_path / "soft.xml")
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and re.search(r"too slow to track .*base_pitch 5\d ms \(kv 1\)", messages[0])
    assert "settle below 95 % of the command (joint damping): base_yaw 91 % (kv 1, damping 0.1)" in messages[1]
    (tmp_path / "damped.xml").write_text(text.replace('damping="0.1"', 'damping="5"'))
    with pytest.warns(ServoWarning, match=r"settle below 95 % .*left_elbow 80 % \(kv 20, damping 5\)"):
        load_robot(tmp_path / "damped.xml")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for robot in ("planar8", "humanoid", YARM / "robot.xml", TWOARM):
            assert load_robot(robot).n_joints > 0


def test_robot_path_is_recorded_absolute(tmp_path, monkeypatch):
    from mtpolicy.policy import PolicyContract

    monkeypatch.chdir(YARM)
    spec = load_robot("robot.xml")
    assert spec.robot_file == str(YARM / "robot.xml")
    assert PolicyContract.for_robot(spec, 0.05, "x", {}).robot_mjcf == str(YARM / "robot.xml")
    assert load_robot("planar8").robot_file == "mtpolicy/robots/planar8/robot.xml"
