"""Bring your own robot: docs/own_robot.md followed step by step on a robot the package has never seen.

The robot is tests/fixtures/yarm (a Y-shaped two-arm manipulator, MJCF and the
same robot in URDF). The recipe's commands run as a user types them, each in
its own process: train (tiny budget), inspect the exported policy, write the
params YAML, bring up sim + controller with the launch runner, publish goals
with the goal tool -- and the controller accepts the model and drives the
simulated robot over DDS. Reaching is not asked of a policy trained for a few
hundred steps.
"""

from __future__ import annotations

import subprocess
import sys

import mujoco
import numpy as np
import pytest

from conftest import REPO
from mtpolicy.kinematics import Kinematics
from mtpolicy.launch_runner import find_executable
from mtpolicy.robots import load_robot
from test_humanoid import robot_monitor  # noqa: F401  (fixture)

YARM = REPO / "tests" / "fixtures" / "yarm"
END_EFFECTORS = ["left_tip", "right_tip"]
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


def test_urdf_gives_the_same_robot_as_the_mjcf():
    mjcf = load_robot(YARM / "robot.xml", END_EFFECTORS)
    urdf = load_robot(YARM / "robot.urdf", END_EFFECTORS)
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
        load_robot(tmp_path / "bad.urdf", END_EFFECTORS)


def _run(*args: str) -> str:
    done = subprocess.run(list(args), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.timeout(150)
def test_recipe_from_model_file_to_running_controller(spawn, robot_monitor, tmp_path):  # noqa: F811
    run = tmp_path / "runs" / "yarm"
    # 1. train (the recipe's command with a tiny budget)
    _run(sys.executable, "-m", "mtpolicy_training.train", "digrad", "--env.robot", "tests/fixtures/yarm/robot.xml",
         "--env.end-effectors", *END_EFFECTORS, "--out-dir", str(run), "--no-progress",
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
                    "--count", "1", "--period", "20", "--xyz", *(f"{v:.4f}" for v in goals.ravel())])
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
