"""Robot manifests (robot.yaml): what they state, how a robot is found, one-line errors for bad fields."""

from __future__ import annotations

import shutil

import pytest

from helpers import REPO
from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import reach_tolerance
from mtpolicy.policy import resolve_model_path
from mtpolicy.robots import ROBOTS_DIR, RobotManifest, RobotSpecError, find_robot, load_robot, shipped_robots
from mtpolicy.robots.variants import VARIANTS
from mtpolicy_tools import cli
from mtpolicy_tools.launch_runner import parse_launch

ARM3 = REPO / "tests" / "fixtures" / "robots" / "arm3"


def test_shipped_robots_state_their_end_effectors_tolerance_home_and_default_model():
    folders = sorted(p.name for p in ROBOTS_DIR.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert shipped_robots() == folders  # every folder of mtpolicy/robots is a robot: none lacks its robot.yaml
    assert {"planar8", "humanoid", *(v.name for v in VARIANTS)} <= set(shipped_robots())
    humanoid = find_robot("humanoid")
    assert (humanoid.end_effectors, humanoid.reach_tolerance, humanoid.home) == (("left_hand", "right_hand"), 0.03,
                                                                                 "home")
    assert resolve_model_path("humanoid").name == "humanoid_reach.onnx"
    assert reach_tolerance("planar8") == 0.02 and reach_tolerance("humanoid") == 0.03


def test_a_robot_folder_is_found_by_its_path_its_manifest_or_the_mjcf_it_names():
    for name in (ARM3, ARM3 / "robot.yaml", ARM3 / "robot.xml", str(ARM3)):
        assert find_robot(name).name == "arm3"
    spec = load_robot(ARM3)
    assert spec.end_effectors == ("tool",) and spec.velocity_limits.tolist() == [2.0, 2.0, 1.5]
    assert Kinematics(spec).home.tolist() == [0.3, -0.4, 1.0]  # keyframe "ready", not the first
    assert reach_tolerance(str(ARM3)) == 0.05


def test_a_folder_put_in_mtpolicy_robots_is_a_robot_by_name_with_no_other_file_edited(arm3_shipped, tmp_path, capsys):
    """Shipping a robot is adding its folder: arm3 put beside the shipped folders is listed, described and its
    tolerance read by name; the launch files take the name with their one params file, and the list their robot
    argument points to (an unknown name's error) names it."""
    assert shipped_robots() == sorted([*arm3_shipped, "arm3"])
    spec = load_robot("arm3")
    assert (spec.name, spec.end_effectors, reach_tolerance("arm3")) == ("arm3", ("tool",), 0.05)
    launch = parse_launch("sim_controller", {"robot": "arm3", "model": "/m.onnx"})
    assert [n.name for n in launch.nodes] == ["sim", "controller"]
    assert all("robot:=arm3" in n.ros_args and n.ros_args[n.ros_args.index("--params-file") + 1]
               .endswith("config/params.yaml") for n in launch.nodes), launch.nodes
    assert cli._robot_path_args({"robot": "arm3"}, launch.arguments, tmp_path) == {"robot": "arm3"}  # by name
    assert cli.main(["launch", "sim_controller", "robot:=nope"]) == 2
    assert "unknown robot 'nope': not one of [" in (err := capsys.readouterr().err) and "'arm3'" in err, err
    for name in ("controller", "sim_controller", "demo"):  # no launch file keeps a list of its own to edit
        description = parse_launch(name).arguments["robot"][1]
        assert "an unknown name lists them" in description and "arm3" not in description, description


def test_a_bare_mjcf_is_a_robot_with_every_site_and_the_default_tolerance():
    robot = find_robot(REPO / "tests" / "fixtures" / "twoarm" / "robot.xml")
    assert robot.end_effectors is None and robot.reach_tolerance == 0.02 and robot.default_model is None
    with pytest.raises(RobotSpecError, match="unknown robot 'nope'"):
        find_robot("nope")


def test_default_model_is_a_file_of_the_folder_or_a_shipped_name(tmp_path):
    folder = tmp_path / "arm3"
    shutil.copytree(ARM3, folder)
    manifest = folder / "robot.yaml"
    manifest.write_text(manifest.read_text() + "default_model: planar8_digrad\n")
    assert resolve_model_path(folder).name == "planar8_digrad.onnx"
    (folder / "mine.onnx").write_bytes(b"")
    manifest.write_text(manifest.read_text().replace("planar8_digrad", "mine.onnx"))
    assert resolve_model_path(folder) == folder / "mine.onnx"


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("reach_tolerance: 0.05", "reach_tolerance: -1"),
     "field 'reach_tolerance' must be a number > 0"),
    (lambda t: t.replace("end_effectors: [tool]", ""), "missing field 'end_effectors'"),
    (lambda t: t.replace("mjcf: robot.xml", "mjcf: nope.xml"), "field 'mjcf': no file"),
    (lambda t: t + "colour: red\n", "unknown field(s) ['colour']"),
    (lambda t: t.replace("velocity: 1.5", "velocity: 9"), "velocity limit 9.0 of 'elbow' exceeds"),
    (lambda t: t.replace("velocity: 1.5", "velocity: 1.5, effort: 20000"),
     "manifest limits of 'elbow': effort limit 20000 N m is not plausible"),
    (lambda t: t.replace("velocity: 1.5", "velocity: 1.5, acceleration: 0"), "(acceleration of 'elbow': > 0)"),
    (lambda t: t.replace("home: ready", "home: sitting"), "no keyframe 'sitting'"),
    (lambda t: t + "joints: [wrist]\n", "joints ['wrist'] are not actuated joints on an end effector's chain"),
    (lambda t: "- a list\n", "expected a mapping of fields"),
    (lambda t: t + "collision_clearance: 0.5\n", "field 'collision_clearance' must be a number >= 0, <= 0.1 (m)"),
])
def test_a_bad_manifest_is_refused_in_one_line_naming_the_field(tmp_path, edit, message):
    folder = tmp_path / "arm3"
    shutil.copytree(ARM3, folder)
    (folder / "robot.yaml").write_text(edit((folder / "robot.yaml").read_text()))
    with pytest.raises(RobotSpecError) as error:
        load_robot(folder)
    assert message in str(error.value) and "\n" not in str(error.value), str(error.value)


def test_joints_served_restrict_the_policy_and_hold_the_others(tmp_path):
    folder = tmp_path / "arm3"
    shutil.copytree(ARM3, folder)
    (folder / "robot.yaml").write_text((folder / "robot.yaml").read_text().replace("limits:", "joints: [shoulder, "
                                                                                   "elbow]\nlimits:"))
    spec = load_robot(folder)
    assert spec.joint_names == ("shoulder", "elbow") and spec.held_joints == ("base_yaw",)
    assert RobotManifest.read(folder).joints == ("shoulder", "elbow")
