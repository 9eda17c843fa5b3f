"""The robot importer (``mtpolicy import-robot``): vendor MJCF/URDF -> a robot folder; package:// meshes."""

from __future__ import annotations

import importlib.util
import re
import shlex
import warnings

import mujoco
import numpy as np
import pytest

from helpers import REPO
from mtpolicy.robots import RobotSpecError, ServoWarning, find_robot, load_robot
from mtpolicy.robots.importer import COMMAND_PREFIX, import_robot
from mtpolicy_tools.cli import main

PACKAGES = REPO / "tests" / "fixtures" / "ros_packages"
ARM_URDF = PACKAGES / "reach_arm_description" / "urdf" / "reach_arm.urdf"
YARM = REPO / "tests" / "fixtures" / "yarm"

# A vendor-style humanoid torso: a floating base, torque motors whose ctrlrange (20,000) is no velocity limit,
# no site, no keyframe, legs on no hand's chain.
FLOATING = """<mujoco model="floater">
  <option timestep="0.002"/>
  <default><motor ctrlrange="-1 1" ctrllimited="true"/><geom contype="1" conaffinity="1" density="500"/></default>
  <worldbody>
    <body name="base" pos="0 0 1">
      <freejoint/>
      <geom type="box" size="0.1 0.1 0.1"/>
      <body name="waist" pos="0 0 0.15">
        <joint name="waist_yaw" axis="0 0 1" range="-1 1"/>
        <geom type="capsule" fromto="0 0 0 0 0 0.2" size="0.05"/>
        <body name="left_arm" pos="0 0.2 0.2">
          <joint name="left_shoulder" axis="0 1 0" range="-2 2"/>
          <geom type="capsule" fromto="0 0 0 0.25 0 0" size="0.03"/>
          <body name="left_hand" pos="0.3 0 0"><joint name="left_elbow" axis="0 1 0" range="-2 0"/>
            <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.025"/></body>
        </body>
        <body name="right_arm" pos="0 -0.2 0.2">
          <joint name="right_shoulder" axis="0 1 0" range="-2 2"/>
          <geom type="capsule" fromto="0 0 0 0.25 0 0" size="0.03"/>
          <body name="right_hand" pos="0.3 0 0"><joint name="right_elbow" axis="0 1 0" range="-2 0"/>
            <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.025"/></body>
        </body>
      </body>
      <body name="leg" pos="0 0 -0.15"><joint name="hip" axis="0 1 0" range="-1 1"/>
        <geom type="capsule" fromto="0 0 0 0 0 -0.5" size="0.05"/></body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="waist_yaw" ctrlrange="-20000 20000"/><motor joint="left_shoulder" ctrlrange="-20000 20000"/>
    <motor joint="left_elbow" ctrlrange="-20000 20000"/><motor joint="right_shoulder" ctrlrange="-20000 20000"/>
    <motor joint="right_elbow" ctrlrange="-20000 20000"/><motor joint="hip" ctrlrange="-20000 20000"/>
  </actuator>
</mujoco>
"""


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_floating_torque_driven_model_becomes_a_fixed_base_velocity_driven_robot(tmp_path, capsys):
    vendor = tmp_path / "floater.xml"
    vendor.write_text(FLOATING)
    out = tmp_path / "floater"
    args = ["import-robot", str(vendor), "--out-dir", str(out), "--end-effectors", "left_hand", "right_hand"]
    assert main(args) == 2  # an MJCF states no velocity limit, and a motor's ctrlrange is none
    assert "no velocity limit for ['waist_yaw', 'left_shoulder'" in _one_line_error(capsys)
    assert main(args + ["--velocity", "20000"]) == 2
    assert "velocity limit 20000 rad/s is not plausible" in _one_line_error(capsys)
    assert main(args + ["--velocity", "3"]) == 2  # the motors' 20,000 is no effort limit either
    assert "effort limit 20000 N m is not plausible" in _one_line_error(capsys)
    assert main(args + ["--velocity", "3", "waist_yaw=1.5", "--effort", "none", "--acceleration", "20"]) == 0
    assert "floating base: free joint of body 'base' removed" in capsys.readouterr().out

    with warnings.catch_warnings():
        warnings.simplefilter("error", ServoWarning)  # the servos' kv track (time constant, steady state)
        spec = load_robot(out)
    assert spec.base_body == "base" and spec.held_joints == ("hip",)
    assert spec.joint_names == ("waist_yaw", "left_shoulder", "left_elbow", "right_shoulder", "right_elbow")
    assert spec.shared_mask.tolist() == [True, False, False, False, False]
    assert spec.velocity_limits.tolist() == [1.5, 3, 3, 3, 3] and spec.acceleration_limits.tolist() == [20] * 5
    assert np.isinf(spec.effort_limits).all()
    model = spec.load_model()
    assert model.nkey == 1 and model.key(0).name == "home"
    assert model.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    assert find_robot(out).end_effectors == ("left_hand", "right_hand")
    assert (out / "robot.yaml").read_text().splitlines()[1].startswith(f"# {COMMAND_PREFIX}mtpolicy import-robot ")


def test_a_root_body_with_a_joint_is_mounted_on_a_body_of_a_new_name(tmp_path):
    text = (YARM / "robot.xml").read_text().replace(
        '<body name="base" pos="0 0 0.05" childclass="yarm">',
        '<body name="base" pos="0 0 0.05" childclass="yarm"><joint name="spin" axis="0 0 1"/>')
    text = text.replace('qpos="0 0 0 0 0 0 0 0"', 'qpos="0 0 0 0 0 0 0 0 0"')
    (tmp_path / "spin.xml").write_text(text)
    with pytest.raises(RobotSpecError, match="carries joint"):
        load_robot(tmp_path / "spin.xml")
    robot = import_robot(tmp_path / "spin.xml", tmp_path / "spin", ["left_tip", "right_tip"], velocity=2.0)
    assert any("put inside joint-less body 'base_mount'" in n for n in robot.notes)
    assert load_robot(robot.folder).base_body == "base_mount"


def test_a_velocity_servo_ctrlrange_of_20000_is_refused_as_a_velocity_limit(tmp_path):
    """docs/own_robot.md's recipe (motor -> velocity, ctrlrange kept) accepted GR1's 20,000 rad/s silently."""
    text = (YARM / "robot.xml").read_text()
    assert 'ctrlrange="-2 2"' in text
    (tmp_path / "fast.xml").write_text(text.replace('ctrlrange="-2 2"', 'ctrlrange="-20000 20000"', 1))
    with pytest.raises(RobotSpecError, match=re.escape("velocity limit 20000 rad/s is not plausible for a real joint")):
        load_robot(tmp_path / "fast.xml")


def test_urdf_package_meshes_resolve_through_the_ros_package_path(tmp_path, monkeypatch):
    monkeypatch.setenv("ROS_PACKAGE_PATH", str(PACKAGES))
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    spec = load_robot(ARM_URDF, ["tool"])
    assert spec.joint_names == ("shoulder_yaw", "shoulder_pitch", "elbow") and spec.load_model().nmesh == 1

    robot = import_robot(ARM_URDF, tmp_path / "arm", ["tool"], acceleration=10.0)
    xml = (robot.folder / "robot.xml").read_text()
    assert 'file="package://reach_arm_description/meshes/link.stl"' in xml  # the package stays the mesh's home
    imported = load_robot(robot.folder)
    assert imported.velocity_limits.tolist() == [2, 2, 2.5] and imported.effort_limits.tolist() == [40, 40, 20]
    assert imported.acceleration_limits.tolist() == [10, 10, 10]


def test_urdf_package_meshes_resolve_through_an_ament_prefix(tmp_path, monkeypatch):
    share = tmp_path / "install" / "share"
    share.mkdir(parents=True)
    (share / "reach_arm_description").symlink_to(PACKAGES / "reach_arm_description")
    monkeypatch.delenv("ROS_PACKAGE_PATH", raising=False)
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"/nonexistent:{tmp_path / 'install'}")
    assert load_robot(ARM_URDF, ["tool"]).n_joints == 3


def test_a_missing_mesh_package_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.delenv("ROS_PACKAGE_PATH", raising=False)
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    with pytest.raises(RobotSpecError) as error:
        load_robot(ARM_URDF, ["tool"])
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert message.startswith("reach_arm.urdf: mesh package://reach_arm_description/meshes/link.stl: package "
                              "'reach_arm_description' not found on ROS_PACKAGE_PATH (unset)")
    with pytest.raises(RobotSpecError, match="package 'reach_arm_description' not found"):
        import_robot(ARM_URDF, tmp_path / "arm", ["tool"])


@pytest.mark.skipif(importlib.util.find_spec("robosuite") is None,
                    reason="robosuite is not installed "
                           "(make setup installs it: pip install --no-deps robosuite==1.5.2)")
@pytest.mark.parametrize("robot", ["panda", "tiago"])
def test_shipped_vendor_robots_are_what_their_import_command_writes(robot, tmp_path):
    folder = REPO / "mtpolicy" / "robots" / robot
    header = (folder / "robot.yaml").read_text().splitlines()[1]
    args = shlex.split(header.removeprefix(f"# {COMMAND_PREFIX}"))[1:]
    args[args.index("--out-dir") + 1] = str(tmp_path / robot)
    assert main(args) == 0
    for name in ("robot.xml", "scene.xml"):
        assert (tmp_path / robot / name).read_text() == (folder / name).read_text(), name


def test_removed_bodies_take_their_joints_and_servos_with_them(tmp_path):
    (tmp_path / "floater.xml").write_text(FLOATING)
    robot = import_robot(tmp_path / "floater.xml", tmp_path / "upper", ["left_hand", "right_hand"], velocity=3.0,
                         effort="none", remove=["leg"])
    assert "hip" not in robot.servos and load_robot(robot.folder).held_joints == ()
    with pytest.raises(RobotSpecError, match=re.escape("--remove ['tail']: no body or geom of that name")):
        import_robot(tmp_path / "floater.xml", tmp_path / "x", ["left_hand"], velocity=3.0, effort="none",
                     remove=["tail"])


def test_home_none_is_refused_in_one_line(tmp_path):
    """``--home none`` (the word the limits take) reached the importer as the string "none": a ValueError traceback."""
    (tmp_path / "floater.xml").write_text(FLOATING)
    args = ["import-robot", str(tmp_path / "floater.xml"), "--out-dir", str(tmp_path / "floater"), "--end-effectors",
            "left_hand", "--velocity", "3", "--effort", "none", "--home", "none"]
    with pytest.raises(SystemExit, match=re.escape("mtpolicy import-robot: --home none: expected JOINT=V")):
        main(args)
