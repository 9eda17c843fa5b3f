"""A robot as a URDF string, ROS's ``robot_description`` (``mtpolicy.robot_description``), and the Panda as a URDF with
package:// meshes (tests/fixtures/panda_urdf/panda.urdf): imported, and completed for a Panda model.

Over DDS (the controller started with ``robot_description``): tests/ros/test_robot_description.py.
"""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, make_fixture_policy
from mtpolicy.kinematics import Kinematics
from mtpolicy.policy import OnnxPolicy
from mtpolicy.robots import RobotSpecError, load_robot
from mtpolicy.robot_description import described_robot, description_spec, kinematic_difference

PANDA_URDF = REPO / "tests" / "fixtures" / "panda_urdf" / "panda.urdf"
"""The shipped Panda (mtpolicy/robots/panda) written as a URDF whose meshes are package://robosuite/... files."""
PANDA_JOINTS = [f"joint{i}" for i in range(1, 8)]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("robosuite") is None,
    reason="the Panda's meshes are robosuite's (make setup installs it with --no-deps)")


@pytest.fixture(scope="module")
def panda():  # noqa: ANN201
    return load_robot("panda")


@pytest.fixture(scope="module")
def contract(panda, tmp_path_factory):  # noqa: ANN001, ANN201
    """The contract of a (fixture) policy for the shipped Panda."""
    path = make_fixture_policy(tmp_path_factory.mktemp("models") / "panda_fixture.onnx", panda,
                               at=Kinematics(panda).home)
    return OnnxPolicy(path).contract


def max_ee_gap(a, b, n: int = 200) -> float:  # noqa: ANN001
    """Largest end-effector distance (m) between two robots over ``n`` random configurations within the limits."""
    return kinematic_difference(a, b, n=n, seed=1)[0]


def docs_import_command() -> list[str]:
    """docs/own_robot.md's `mtpolicy import-robot` of the Panda URDF (section From robot_description), as words."""
    text = (REPO / "docs" / "own_robot.md").read_text().replace("\\\n", " ")
    command = "mtpolicy import-robot tests/fixtures/panda_urdf"
    line = next(line for line in text.splitlines() if line.startswith(command))
    return shlex.split(line)


def test_import_robot_of_the_panda_urdf_has_the_shipped_panda_kinematics(panda, tmp_path):
    """The docs' `mtpolicy import-robot <the URDF>`: a robot folder whose end effector is where the shipped Panda's
    is (1 mm), with the Panda's limits."""
    words = docs_import_command()
    words = [str(Path(sys.executable).parent / "mtpolicy"), *(str(REPO / w) if w.endswith(".urdf") else w
                                                               for w in words[1:])]
    out = tmp_path / words[words.index("--out-dir") + 1]
    done = subprocess.run(words, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    robot_xml = (out / "robot.xml").read_text()
    assert "package://robosuite/models/assets/robots/panda/meshes/link1.stl" in robot_xml  # left in the wheel
    assert not (out / "assets").exists()
    imported = load_robot(out)
    assert (imported.joint_names, imported.end_effectors, imported.base_body) == (panda.joint_names,
                                                                                  panda.end_effectors, "base")
    np.testing.assert_allclose(imported.joint_limits, panda.joint_limits)
    np.testing.assert_allclose(imported.velocity_limits, panda.velocity_limits)
    np.testing.assert_allclose(imported.effort_limits, panda.effort_limits)
    np.testing.assert_allclose(imported.acceleration_limits, panda.acceleration_limits)
    assert max_ee_gap(imported, panda) < 1e-3


def test_the_urdf_string_is_the_shipped_panda_completed_from_its_model(panda, contract):
    described = described_robot(PANDA_URDF.read_text(), contract)
    spec = described.spec
    assert (spec.name, spec.joint_names, spec.end_effectors, spec.base_body) == ("panda", panda.joint_names,
                                                                                 ("right_hand",), "base")
    np.testing.assert_allclose(spec.joint_limits, panda.joint_limits)
    np.testing.assert_allclose(spec.velocity_limits, panda.velocity_limits)  # the URDF's <limit velocity>
    np.testing.assert_allclose(spec.effort_limits, panda.effort_limits)  # the URDF's <limit effort>
    np.testing.assert_allclose(spec.acceleration_limits, panda.acceleration_limits)  # the model's robot's manifest
    assert described.reference.name == "panda" and described.notes == ()
    assert max_ee_gap(spec, panda) < 1e-3


def test_urdf_joints_in_another_order_are_served_in_the_models_order(panda, contract):
    text = PANDA_URDF.read_text()
    start, end = text.index('  <joint name="joint1"'), text.index("  </joint>", text.index('<joint name="joint1"'))
    block = text[start:end + len("  </joint>\n")]
    moved = text.replace(block, "").replace("</robot>", block + "</robot>")  # joint1 last in the file
    assert moved.index('name="joint1"') > moved.index('name="joint7"')
    spec = description_spec(moved, ["right_hand"], PANDA_JOINTS)
    assert spec.joint_names == tuple(PANDA_JOINTS)
    assert max_ee_gap(spec, panda) < 1e-3


def test_velocity_limits_are_the_lower_of_the_urdfs_and_the_models_and_the_difference_is_said(panda, contract):
    text = PANDA_URDF.read_text().replace('effort="12" velocity="2.61"/><dynamics damping="0.01"/>',
                                          'effort="12" velocity="1.5"/><dynamics damping="0.01"/>', 1)  # joint6
    described = described_robot(text.replace('effort="87" velocity="2.175"', 'effort="87" velocity="3.0"', 1),
                                contract)
    assert described.spec.velocity_limits.tolist() == [2.175, 2.175, 2.175, 2.175, 2.61, 1.5, 2.61]
    assert any("above the model's" in n and "joint1 3 (model 2.175)" in n for n in described.notes), described.notes
    assert any("below the model's" in n and "joint6 1.5 (model 2.61)" in n for n in described.notes), described.notes


def test_without_the_models_robot_here_the_urdf_is_served_without_acceleration_limits_and_that_is_said(contract):
    stranger = type(contract)(**{**contract.__dict__, "robot": "/nowhere/panda_robot.xml"})
    described = described_robot(PANDA_URDF.read_text(), stranger)
    assert described.reference is None and np.isinf(described.spec.acceleration_limits).all()
    assert len(described.notes) == 1 and "not found here" in described.notes[0] and "no acceleration limits" in \
        described.notes[0]


BAD = {
    "malformed": (lambda t: t.replace("</robot>", ""), "robot_description is not well-formed XML: "),
    "an MJCF": (lambda t: "<mujoco model='x'/>", "robot_description is not a URDF: its root element is <mujoco>"),
    "a model joint missing": (lambda t: t.replace('name="joint7"', 'name="panda_joint7"'),
                              "robot_description lacks the model's joint(s) ['joint7']"),
    "no velocity limit": (lambda t: t.replace('effort="12" velocity="2.61"', 'effort="12"', 1),
                          "robot_description: joint 'joint5' has no <limit velocity=...>"),
    "an implausible limit": (lambda t: t.replace('effort="87" velocity="2.175"', 'effort="87" velocity="20000"', 1),
                             "robot_description: joint 'joint1': velocity limit 20000 rad/s is not plausible"),
    "an unreachable package": (lambda t: t.replace("package://robosuite/", "package://panda_description/"),
                               "package 'panda_description' not found on ROS_PACKAGE_PATH"),
    "a relative mesh": (lambda t: t.replace("package://robosuite/models/assets/robots/panda/", ""),
                        "robot_description: mesh 'obj_meshes/link0_vis/link0_vis_0.obj' is a relative path"),
    "no end-effector link": (lambda t: t.replace('"right_hand"', '"tool"'),
                             "robot_description has no link(s) ['right_hand'], the model's end effector(s)"),
    "another tool point": (lambda t: t.replace('xyz="0 0 0.1065"', 'xyz="0 0 0.2065"'),
                           "robot_description is not the robot 'panda' the model was made for: its end effector "
                           "'right_hand' is 0.100 m from where 'panda' puts it"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_robot_descriptions_are_one_line_errors(case, contract, monkeypatch):
    monkeypatch.delenv("ROS_PACKAGE_PATH", raising=False)
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    edit, expected = BAD[case]
    with pytest.raises(RobotSpecError) as error:
        described_robot(edit(PANDA_URDF.read_text()), contract)
    message = str(error.value)
    assert expected in message and "\n" not in message, message


def test_file_uris_are_absolute_mesh_paths(panda, contract):
    robosuite = importlib.util.find_spec("robosuite").submodule_search_locations[0]
    text = PANDA_URDF.read_text().replace("package://robosuite/", f"file://{robosuite}/")
    assert "filename=\"package://" not in text
    assert max_ee_gap(described_robot(text, contract).spec, panda) < 1e-3
