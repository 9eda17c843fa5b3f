"""The demo's pieces without DDS: the picture at the reach, the camera fit and a framebuffer beyond the MJCF's,
the CLI's one-line errors (what the demo leaves behind over DDS: tests/ros/test_demo_media.py)."""

from __future__ import annotations

import copy
import subprocess

import mujoco
import numpy as np
import pytest

from helpers import REPO, YARM, png_size
from mtpolicy.kinematics import Kinematics
from mtpolicy.offscreen import fit_camera, geom_corners, render_png, robot_geoms
from mtpolicy.reach_task import GOAL_JOINT_RANGE, sample_configurations, sample_free_configurations, self_collisions
from mtpolicy.robots import load_robot
from mtpolicy_tools.demo_media import reached_picture_sample
from mtpolicy_tools.demo_runs import GoalRun, goal_sampler, goal_sets_record
from mtpolicy_tools.launch_runner import find_executable


def _run(goals: np.ndarray, errors: list[float], reach_at: int | None, tolerance: float = 0.02) -> GoalRun:
    """A GoalRun whose single end effector has the given error (m) at each sample, 0.05 s apart."""
    run = GoalRun(goals, np.zeros(2))
    for k, e in enumerate(errors):
        run.times.append(0.05 * k)
        run.qs.append(np.full(2, float(k)))
        run.path.append(goals + np.array([[e, 0.0, 0.0]]))
    if reach_at is not None:
        run.reached, run.seconds, run.reached_sample = True, 0.05 * reach_at, reach_at
        run.held = all(e < tolerance for e in errors[reach_at:])
    return run


def test_reached_picture_is_the_moment_of_reaching_the_last_held_goal_set():
    goal = np.zeros((1, 3))
    held = _run(goal, [0.3, 0.1, 0.01, 0.012, 0.015], reach_at=2)
    left = _run(goal, [0.3, 0.01, 0.2, 0.3], reach_at=1)  # reached, then left: not held
    never = _run(goal, [0.3, 0.3], reach_at=None)
    assert reached_picture_sample([held, left, never]) == (0, 2)
    assert held.error_trace()[2, 0] == pytest.approx(0.01)
    assert reached_picture_sample([never, left]) == (1, 1)  # no held set: the last reached, at its reach
    assert reached_picture_sample([never]) == (0, 1)


def test_the_goal_sets_record_has_each_start_and_what_the_demo_saw():
    goal = np.zeros((1, 3))
    left = _run(goal, [0.3, 0.01, 0.2, 0.01], reach_at=1)
    never = _run(goal, [0.3, 0.3], reach_at=None)
    record = goal_sets_record([left, never], 0.02, "m.onnx")
    assert record["tolerance"] == 0.02 and record["model"] == "m.onnx"
    first, second = record["goal_sets"]
    assert first["start"] == [0.0, 0.0] and first["goals"] == [[0.0, 0.0, 0.0]]
    assert first["reached"] and not first["held"] and first["peak_error_after_reaching"] == pytest.approx(0.2)
    assert not second["reached"] and second["seconds"] is None and second["peak_error_after_reaching"] is None


@pytest.mark.parametrize("robot", ["planar8", "tests/fixtures/twoarm/robot.xml"])
def test_camera_fits_the_robot_and_the_framebuffer_grows(robot, tmp_path):
    spec = load_robot(REPO / robot if robot.endswith(".xml") else robot)
    model = spec.load_model()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    points = geom_corners(model, data, robot_geoms(model, spec.base_body))
    camera = fit_camera(model, points)
    # project the points with MuJoCo's own camera frame: all inside the view, the extent fills most of it
    scene, option = mujoco.MjvScene(model, maxgeom=100), mujoco.MjvOption()
    mujoco.mjv_updateScene(model, data, option, None, camera, mujoco.mjtCatBit.mjCAT_ALL, scene)
    eye = scene.camera[0]  # mono rendering looks from between the two stereo eyes
    forward, up = np.array(eye.forward), np.array(eye.up)
    right = np.cross(forward, up)
    rel = points - (np.array(scene.camera[0].pos) + np.array(scene.camera[1].pos)) / 2
    tan = np.tan(np.radians(model.vis.global_.fovy) / 2)
    x, y = (rel @ right) / (rel @ forward) / tan, (rel @ up) / (rel @ forward) / tan
    assert np.abs(x).max() <= 1 and np.abs(y).max() <= 1
    assert max(np.ptp(x), np.ptp(y)) > 1.6  # more than 80 % of the frame's width or height
    # at a size beyond the MJCF's offscreen framebuffer (the default is 640)
    size = model.vis.global_.offwidth + 80
    render_png(model, data, tmp_path / "big.png", spec.base_body, np.zeros((spec.n_tasks, 3)),
               np.ones((spec.n_tasks, 4)), size, size)
    assert png_size(tmp_path / "big.png") == (size, size)


def _cli(*args: str) -> tuple[int, str]:
    done = subprocess.run([str(find_executable("mtpolicy", "mtpolicy")), *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("args, message", [
    (["demo", "--episodes", "-3"], "--episodes must be >= 1, got -3"),
    (["demo", "--reach-tolerance", "0"], "--reach-tolerance must be > 0 m, got 0.0"),
    (["demo", "--goal", "3"], "unrecognized arguments: --goal 3"),
    (["demo", "--robot", "nope"], "unknown robot 'nope'"),
    (["demo", "--model", "nope"], "model 'nope' is neither a file nor a shipped model"),
    (["demo", "--robot", "humanoid", "--model", "planar8_digrad"], "is for robot 'planar8', not 'humanoid'"),
    (["demo", "--robot", "tests/fixtures/twoarm/robot.xml"], "has no default_model"),
    (["demo", "--robot", "tests/fixtures/twoarm/robot.xml", "--model", "planar8_digrad"], "does not fit"),
    (["demo", "--params", "nope.yaml"], "params file nope.yaml not found"),
    (["render", "--robot", "nope"], "unknown robot 'nope'"),
    (["render", "--size", "0"], "--size must be > 0"),
    (["render", "--rob", "planar8"], "unrecognized arguments: --rob"),
    (["render", "--robot", "planar8", "--end-effectors", "ee_1", "nope"],
     "end effector 'nope' is neither a site nor a body"),
    (["render", "--end-effectors", "ee_1", "--params", "config/params.yaml"], "give the end effectors once"),
    (["launch", "sim_controller", "robot:=nope.xml"], "unknown robot 'nope.xml'"),
    (["launch", "sim_controller", "robot:=tests/fixtures/twoarm/robot.xml"], "give its policy too, model:="),
])
def test_user_mistakes_get_one_line_errors(args, message):
    code, output = _cli(*args)
    assert code == 2 and message in output and "Traceback" not in output, output
    assert len(output.strip().splitlines()) == 1, output


def test_render_takes_the_end_effectors_in_the_words_of_every_command(tmp_path, capsys):
    """Issue 52: ``mtpolicy render --end-effectors`` means what it means to ``mtpolicy goals``: the end-effector
    sites, in task order. One of the Y-arm's two tips: one goal, one error."""
    from mtpolicy_tools.cli import main

    out = tmp_path / "right.png"
    assert main(["render", "--robot", str(YARM / "robot.xml"), "--end-effectors", "right_tip", "--seconds", "0.5",
                 "--size", "64", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith(f"wrote {out}: end-effector errors ") and printed.out.count(" mm") == 1, printed
    assert "has no default_model (robot.yaml): driving it with dls" in printed.err  # a robot file: no model
    assert png_size(out)[0] == 64


def test_render_defaults_like_every_command_planar8_and_its_model_planned_as_the_node_plans(tmp_path, capsys):
    """Issue 64: without options render drives planar8 with its default model (planner-conditioned: the goal
    configuration planned once from the start), as the demo does; ``--model dls`` is the baseline."""
    from mtpolicy.robots import find_robot
    from mtpolicy_tools.cli import main
    from mtpolicy_tools.render import render_choice

    policy, robot = render_choice(None, None, "mtpolicy render")
    assert robot == "planar8" and policy is not None
    assert policy.path.stem == find_robot("planar8").default_model and policy.contract.planner
    assert render_choice("dls", None, "mtpolicy render") == (None, "planar8")
    out = tmp_path / "reach.png"
    assert main(["render", "--size", "64", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    errors = [float(e.split()[0]) for e in printed.split("errors ")[1].split(", ")]
    assert len(errors) == 3 and max(errors) < 1e3 * find_robot("planar8").reach_tolerance, printed
    assert png_size(out)[0] == 64


def test_the_demo_draws_goal_sets_from_configurations_free_of_self_collision_as_the_env_does():
    """GR1: every goal set is the env's draw (``sample_free_configurations``) from where the robot is; plain draws
    from the same random stream, which the demo took before, come from a body in self-collision on some (the
    collision guard then held the robot short of some of them)."""
    kin = Kinematics(load_robot("gr1"))
    rng = np.random.default_rng(22)
    next_goals = goal_sampler(kin, rng, "local")
    q, plain_collisions = kin.home, 0
    for _ in range(20):  # each set from the configuration of the one before, where the robot went
        env_draw, plain_draw = copy.deepcopy(rng), copy.deepcopy(rng)
        goals = next_goals(q)
        plain = sample_configurations(kin.spec, plain_draw, 1, around=q, joint_range=GOAL_JOINT_RANGE)
        plain_collisions += int(self_collisions(kin, plain)[0])
        config = sample_free_configurations(kin, env_draw, 1, around=q, joint_range=GOAL_JOINT_RANGE)
        np.testing.assert_allclose(goals, kin.ee_positions(config[0]))
        assert not self_collisions(kin, config)[0]
        q = config[0]
    assert plain_collisions > 0
