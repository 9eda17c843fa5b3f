"""Bring your own robot: docs/own_robot.md followed step by step on a robot the package has never seen, served
over DDS (the robot files alone: tests/unit/test_own_robot_spec.py).

The robot is tests/fixtures/yarm (a Y-shaped two-arm manipulator, MJCF and the
same robot in URDF). The recipe's commands run as a user types them, each in
its own process: train (tiny budget), inspect the exported policy, write the
params YAML, bring up sim + controller with the launch runner, publish goals
with the goal tool -- and the controller accepts the model and drives the
simulated robot over DDS. Reaching is not asked of a policy trained for a few
hundred steps. Then gymnasium's pusher made a robot by the docs' recipe,
and the twoarm fixture in the demo.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from helpers import REPO, TWOARM, YARM, YARM_END_EFFECTORS, make_fixture_policy
from mtpolicy.kinematics import Kinematics
from mtpolicy.robots import load_robot
from mtpolicy_tools.launch_runner import find_executable

PARAMS_YAML = """\
controller:
  ros__parameters:
    joints: [base_yaw, base_pitch, left_shoulder_roll, left_shoulder_pitch, left_elbow,
             right_shoulder_roll, right_shoulder_pitch, right_elbow]
    state_timeout: 0.25
    limit_margin: 0.02
sim:
  ros__parameters:
    end_effectors: [left_tip, right_tip]
"""
"""The params file of the recipe's step 3, for the yarm."""


def _run(*args: str) -> str:
    done = subprocess.run(list(args), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.timeout(150)
def test_recipe_from_model_file_to_running_controller(spawn, robot_monitor, tmp_path):
    pytest.importorskip("torch", reason="step 1 trains: needs the training extra")
    run = tmp_path / "runs" / "yarm"
    # 1. train (the recipe's command with a tiny budget)
    _run(sys.executable, "-m", "mtpolicy_training.train", "digrad", "--robot", "tests/fixtures/yarm/robot.xml",
         "--end-effectors", *YARM_END_EFFECTORS, "--out-dir", str(run), "--no-progress",
         "--budget-steps", "256", "--loop.learning-starts", "128", "--loop.eval-every", "256",
         "--periodic-eval-episodes", "4", "--loop.checkpoint-every", "256", "--final-eval-episodes", "4")
    # 2. the exported policy and its contract
    contract = _run(sys.executable, "-c", "from mtpolicy.policy import OnnxPolicy; "
                    f"c = OnnxPolicy('{run / 'policy.onnx'}').contract; print(c.robot, c.joints, c.end_effectors)")
    assert "yarm" in contract and "left_tip" in contract and "base_pitch" in contract
    # 3. the params file, 4. sim + controller, then goals from the goal tool
    (tmp_path / "yarm.yaml").write_text(PARAMS_YAML)
    mtpolicy = str(find_executable("mtpolicy", "mtpolicy"))
    launch = spawn("launch", [mtpolicy, "launch", "sim_controller", f"robot:={YARM / 'robot.xml'}",
                              f"model:={run / 'policy.onnx'}", f"params_file:={tmp_path / 'yarm.yaml'}"])
    spec = load_robot(YARM / "robot.xml")
    kin = Kinematics(spec)
    goals = kin.ee_positions(kin.home + np.array([0.4, 0.2, 0.3, -0.3, 0.4, -0.3, 0.3, -0.4]))
    spawn("goals", [mtpolicy, "goals", "--robot", str(YARM / "robot.xml"), "--end-effectors", "left_tip", "right_tip",
                    "--episodes", "1", "--period", "20", "--xyz", *(f"{v:.4f}" for v in goals.ravel())])
    monitor = robot_monitor(spec)

    def commanding() -> bool:
        return monitor.states > 0 and len(monitor.commands) > 5 and bool(np.any(monitor.commands[-1][1]))
    assert monitor.wait_until(commanding, 60.0), launch.output()[-4000:]
    start = monitor.q.copy()  # the commands move the simulated robot:
    assert monitor.wait_until(lambda: np.abs(monitor.q - start).max() > 1e-3, 5.0), (start, monitor.q)
    # the controller logs this line after its first policy command: the command may arrive first
    assert launch.wait_for_output("joint states and goals present: running the policy", 10.0), launch.output()[-4000:]
    out = launch.output()
    assert "policy policy.onnx (digrad" in out and "on robot 'yarm'" in out, out[-4000:]
    assert "refusing" not in out and "Traceback" not in out and "command rejected" not in out, out[-4000:]
    assert all(len(c) == 8 and np.all(np.isfinite(c)) for _, c in monitor.commands)
    assert monitor.wait_until(lambda: np.allclose(monitor.goals, goals, atol=1e-4), 10.0), monitor.goals


# -- robots of other origins served over DDS ----------------------------------------------------------
def pusher_recipe() -> str:
    """The Python block of docs/own_robot.md that makes pusher_robot.xml from gymnasium's pusher.xml."""
    text = (REPO / "docs" / "own_robot.md").read_text()
    block = re.search(r"<!-- pusher recipe -->\n```python\n(.*?)```", text, re.S)
    assert block, "docs/own_robot.md lost its pusher recipe"
    return block.group(1)


def reach_over_dds(monitor, goals: np.ndarray, tolerance: float, timeout: float) -> bool:  # noqa: ANN001
    """Publish ``goals`` (republished every 0.5 s, as the demo does) until every end effector is within tolerance."""
    import time

    last = -math.inf

    def reached() -> bool:
        nonlocal last
        if time.monotonic() - last > 0.5:
            monitor.publish_goals(goals)
            last = time.monotonic()
        return monitor.states > 0 and bool(np.all(monitor.errors(goals) < tolerance))
    return monitor.wait_until(reached, timeout)


@pytest.mark.timeout(180)
def test_pusher_from_gymnasium_served_over_ros2(spawn, robot_monitor, tmp_path):
    """docs/own_robot.md's pusher recipe, then `mtpolicy launch` with the robot path and no params file."""
    pytest.importorskip("gymnasium", reason="the recipe starts from gymnasium's pusher.xml")
    subprocess.run([sys.executable, "-c", pusher_recipe()], cwd=tmp_path, check=True, timeout=60)
    robot = tmp_path / "pusher_robot.xml"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ServoWarning: the recipe's kv tracks
        spec = load_robot(robot)
    assert (spec.base_body, spec.end_effectors, spec.n_joints) == ("base", ("tip",), 7)
    kin = Kinematics(spec)
    model = make_fixture_policy(tmp_path / "pusher_fixture.onnx", spec, at=kin.home)
    launch = spawn("launch", [str(find_executable("mtpolicy", "mtpolicy")), "launch", "sim_controller",
                              f"robot:={robot}", f"model:={model}"])
    monitor = robot_monitor(spec)
    offsets = np.array([[0.3, -0.2, 0.2, 0.25, -0.2, 0.2, 0.1], [-0.25, 0.2, -0.2, -0.2, 0.2, -0.2, 0.0]])
    for offset in offsets:
        goals = kin.ee_positions(kin.home + offset)
        assert reach_over_dds(monitor, goals, 0.02, 60.0), (monitor.errors(goals), launch.output()[-3000:])
    out = launch.output()
    assert "no params_file:= was given; using" in out and "end effectors ['tip']" in out, out[-3000:]
    assert "refusing" not in out and "Traceback" not in out, out[-3000:]


@pytest.mark.timeout(300)
def test_twoarm_demo_by_robot_path(ros_env, tmp_path):
    """`mtpolicy demo --robot PATH --model ...`: params written from the model, the table, the pictures."""
    spec = load_robot(TWOARM)
    model = make_fixture_policy(tmp_path / "twoarm_fixture.onnx", spec, at=Kinematics(spec).home)
    out = tmp_path / "out"
    demo = subprocess.run([str(find_executable("mtpolicy", "mtpolicy")), "demo", "--robot", str(TWOARM),
                           "--model", str(model), "--episodes", "3", "--seed", "1", "--timeout", "5",
                           "--out-dir", str(out), "--no-video"],
                          env=ros_env, capture_output=True, text=True, timeout=280, cwd=tmp_path)
    assert demo.returncode in (0, 1) and "Traceback" not in demo.stdout + demo.stderr, demo.stdout + demo.stderr
    assert re.search(r"held \d/3 goal sets", demo.stdout), demo.stdout + demo.stderr
    assert "twoarm driven by twoarm_fixture (fixture)" in demo.stdout
    params = (out / "params.yaml").read_text()
    assert "end_effectors: [left_tool, right_tool]" in params and "joints: [waist_yaw, waist_pitch," in params
    stack = (out / "stack.log").read_text()
    assert f"--params-file {out / 'params.yaml'}" in stack and "refusing" not in stack, stack[-3000:]
    for name in ("summary.png", "reached.png", "ee_paths.png"):
        assert (out / name).stat().st_size > 10_000, name
