"""The humanoid over DDS: its bring-up with a fixture policy through the launch runner, and the shipped policy
in ``mtpolicy demo`` (model and chains: tests/unit/test_humanoid.py; env: tests/training/test_humanoid_reach.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from helpers import REPO, make_fixture_policy, run_demo
from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import reach_tolerance
from mtpolicy.observation import ObservationLayout
from mtpolicy.robots import RobotSpec
from mtpolicy_tools.launch_runner import find_executable

SHIPPED_HUMANOID_MODEL = REPO / "models" / "humanoid_reach.onnx"
TOLERANCE = reach_tolerance("humanoid")


def home_fixture_policy(path: Path, spec: RobotSpec, gain: float = 3.0, damping: float = 0.03) -> Path:
    """helpers' fixture policy, linearised at the home keyframe (the humanoid's arms are straight at q = 0)."""
    make_fixture_policy(path, spec, gain, damping)
    model = onnx.load(str(path))
    kin = Kinematics(spec)
    jac = kin.jacobians(kin.home).reshape(-1, spec.n_joints)
    layout = ObservationLayout.for_robot(spec.n_joints, spec.n_tasks)
    (init,) = [i for i in model.graph.initializer if i.name == "W"]
    w = numpy_helper.to_array(init).copy()
    w[layout.slice("goal_error")] = gain * np.linalg.solve(jac @ jac.T + damping ** 2 * np.eye(len(jac)), jac)
    init.CopyFrom(numpy_helper.from_array(w, "W"))
    onnx.save(model, str(path))
    return path


@pytest.mark.timeout(90)
def test_bringup_reaches_goal_sets_near_home_over_dds_and_holds_the_legs(spawn, robot_monitor, humanoid, tmp_path):
    from sensor_msgs.msg import JointState

    from mtpolicy.nodes.interfaces import STATE_SUB_QOS

    model = home_fixture_policy(tmp_path / "humanoid_fixture.onnx", humanoid)
    monitor = robot_monitor(humanoid)
    last_state: list[JointState] = []
    monitor.create_subscription(JointState, "/joint_states", last_state.append, STATE_SUB_QOS)
    runner = spawn("launch", [str(find_executable("mtpolicy", "mtpolicy")), "launch", "sim_controller",
                              "robot:=humanoid", f"model:={model}"])
    kin = Kinematics(humanoid)
    offsets = [np.array([0.1, 0.15, -0.1, 0.1, 0.05, 0.2, -0.1, 0.2, -0.2, -0.15, 0.1, -0.2, 0.25]),
               np.array([-0.15, -0.1, 0.1, 0.0, -0.05, -0.2, 0.15, -0.1, 0.2, 0.2, -0.1, 0.15, -0.2])]
    for offset in offsets:
        goals = kin.ee_positions(kin.home + offset)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and not np.all(monitor.errors(goals) < TOLERANCE):
            monitor.publish_goals(goals)
            monitor.wait_until(lambda: bool(np.all(monitor.errors(goals) < TOLERANCE)), 0.5)
        assert np.all(monitor.errors(goals) < TOLERANCE), (monitor.errors(goals), runner.output()[-3000:])
    assert monitor.commands and all(len(c) == 13 for _, c in monitor.commands)
    state = last_state[-1]
    assert len(state.name) == 27 and set(state.name) == set(humanoid.joint_names + humanoid.held_joints)
    held = [p for n, p in zip(state.name, state.position) if n in humanoid.held_joints]
    assert np.abs(held).max() < 5e-3, dict(zip(state.name, state.position))
    assert "Traceback" not in runner.output()


@pytest.mark.skipif(not SHIPPED_HUMANOID_MODEL.is_file(), reason=f"needs the trained model {SHIPPED_HUMANOID_MODEL}")
@pytest.mark.timeout(240)
def test_shipped_policy_reaches_and_ends_at_every_published_goal_set(ros_env, tmp_path):
    """``mtpolicy demo`` on the humanoid: sim + controller over DDS, 10 seeded goal sets published one by one, each
    reached and every hand within tolerance when the demo moves on (1 s after the first reach). Whether a hand also
    stayed within it for that whole second depends on the loop's timing (a command late on a loaded machine carries
    the hand past the goal and back), which ``benchmarks.late_ticks`` and ``benchmarks.demo_replay`` measure."""
    _, reached, demo = run_demo(ros_env, "--robot", "humanoid", "--model", str(SHIPPED_HUMANOID_MODEL), "--seed", "5",
                                "--reach-tolerance", str(TOLERANCE), "--out-dir", str(tmp_path))
    assert reached == 10, demo.stdout + demo.stderr
    sets = json.loads((tmp_path / "goal_sets.json").read_text())["goal_sets"]
    assert all(max(s["final_errors"]) < TOLERANCE for s in sets), demo.stdout + demo.stderr
    assert demo.returncode == 0, demo.stdout + demo.stderr
