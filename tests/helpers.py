"""Helpers the test modules import (``from helpers import ...``; pytest.ini puts tests/ on the path).

Plain functions and constants shared across modules and tiers: a fixture
policy that needs no trained model, the deadlines that are not events
(``scaled``), the tests' ROS domain ids, the demo run, goal publishing over
DDS, and training-run probes. Fixtures live in the conftest.py files; the
launch files under either launcher: tests/launchers.py.
"""

from __future__ import annotations

import itertools
import os
import re
import struct
import subprocess
import time
from pathlib import Path
from typing import Callable

import numpy as np

from mtpolicy.kinematics import Kinematics
from mtpolicy.policy import PolicyContract
from mtpolicy.robots import RobotSpec

REPO = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = REPO / "models" / "planar8_digrad.onnx"
TIME_SCALE = float(os.environ.get("MTPOLICY_TEST_TIME_SCALE", "1"))
"""Multiplies the deadlines that are not events (set it above 1 on a machine slower than a loaded 2-core VM)."""
YARM = REPO / "tests" / "fixtures" / "yarm"
"""A Y-shaped two-arm manipulator the package has never seen, as MJCF and as URDF (docs/own_robot.md)."""
YARM_END_EFFECTORS = ["left_tip", "right_tip"]
TWOARM = REPO / "tests" / "fixtures" / "twoarm" / "robot.xml"
"""Two arms on a shared waist (docs/own_robot.md)."""


UNREACHABLE_GOAL_SETS = {
    "gr1": [np.array([[x, y, z], [x, -y, z]]) for x, y, z in  # hands crossed: right_eef's goal far to the left
            ((0.0, 0.9, -0.2), (0.0, 0.9, 0.1), (0.0, 0.9, 0.4), (0.2, 0.6, -0.2), (0.2, 0.9, -0.2),
             (0.4, 0.9, 0.7), (0.5, 0.29, 0.02))]
           + [np.array([[x, -0.75, z], [x, 0.75, z]]) for x, z in ((0.0, 0.4), (0.2, 0.1), (0.4, 0.7), (0.2, -0.2))],
    "tiago": [np.array([[0.0, 0.9, z], [0.0, -0.9, z]]) for z in (0.5, 0.9, 1.3)],  # right_hand, left_hand crossed
}
"""Goal sets no configuration reaches, from the robot's home (base frame, m; GR1's hands are at y -0.32 / +0.32
there, Tiago's at -0.99 / +0.99): hands crossed, and GR1's hands 1.5 m apart. On the crossed ones the closest
configuration the ik planner found was in self-collision (issue 62)."""


def scaled(seconds: float) -> float:
    return seconds * TIME_SCALE


_domain_counter = itertools.count()


def unique_domain_id() -> int:
    """A ROS domain id in 1..100 that differs between calls of one process and between processes: each test's own
    (tests/ros/conftest.py ``ros_env``), apart from the self-contained runs' ``ISOLATED_DOMAINS``
    (``mtpolicy_tools.environment``). Under pytest-xdist worker w of W draws only ids = 1 + w (mod W), so tests
    running at once in two workers never share one."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return 1 + worker + workers * ((os.getpid() * 7 + next(_domain_counter) * 13) % (100 // workers))


def make_fixture_policy(path: Path, spec: RobotSpec, gain: float = 3.0, damping: float = 0.03,
                        metadata: dict[str, str] | None = None, at: np.ndarray | None = None) -> Path:
    """A valid policy .onnx: v = Clip(obs @ W), W = gain * pinv(J(at)) on the goal-error segment.

    A damped-pseudo-inverse reach controller linearised at ``at`` (default:
    all joints at 0, the home pose of the shipped robots): it reaches goal sets
    of configurations within ~0.3 rad of it, enough to check the plumbing
    without a trained model. ``metadata`` overrides contract entries.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    contract = PolicyContract.for_robot(spec, control_period=0.05, method="fixture", training_config={})
    layout = contract.observation_layout
    kin = Kinematics(spec)
    jac = kin.jacobians(np.zeros(spec.n_joints) if at is None else at).reshape(-1, spec.n_joints)
    w = np.zeros((layout.size, spec.n_joints), dtype=np.float32)
    w[layout.slice("goal_error")] = gain * np.linalg.solve(jac @ jac.T + damping ** 2 * np.eye(len(jac)), jac)
    lim = spec.velocity_limits.astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["observation", "W"], ["raw"]),
         helper.make_node("Max", ["raw", "lo"], ["floored"]),
         helper.make_node("Min", ["floored", "hi"], ["joint_velocity"])],
        "fixture_policy",
        [helper.make_tensor_value_info("observation", TensorProto.FLOAT, ["batch", layout.size])],
        [helper.make_tensor_value_info("joint_velocity", TensorProto.FLOAT, ["batch", spec.n_joints])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(-lim, "lo"), numpy_helper.from_array(lim, "hi")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    for key, value in {**contract.to_metadata(), **(metadata or {})}.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def goals_near_home(spec: RobotSpec, offset: list[float]) -> np.ndarray:
    """(n_ee, 3) goals: end effectors of the configuration home + offset (rad) -- the fixture policy reaches them."""
    return Kinematics(spec).ee_positions(np.asarray(offset, dtype=np.float64))


def record_update_metric(method, name: str) -> list[float]:
    """Wrap ``method.update`` so each call appends its metric ``name`` to the returned list."""
    values: list[float] = []
    update = method.update

    def recorded(batch):
        metrics = update(batch)
        values.append(float(metrics[name]))
        return metrics

    method.update = recorded
    return values


def kill_when_checkpointed(cmd: list[str], checkpoint: Path, ready: Callable[[dict], bool],
                           timeout: float = 300.0) -> dict:
    """Run ``cmd``, SIGKILL it once its (atomically written) ``checkpoint`` satisfies ``ready``; that checkpoint."""
    import torch

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if checkpoint.exists() and ready(torch.load(checkpoint, weights_only=False)):
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    return torch.load(checkpoint, weights_only=False)


def run_demo(env: dict[str, str], *args: str) -> tuple[int, int, subprocess.CompletedProcess]:
    """``mtpolicy demo --episodes 10 --no-video ARGS`` (sim + controller over DDS): goal sets held and reached of 10,
    the process."""
    from mtpolicy_tools.launch_runner import find_executable

    demo = subprocess.run([str(find_executable("mtpolicy", "mtpolicy")), "demo", "--episodes", "10", "--no-video",
                           *args],
                          env=env, capture_output=True, text=True, timeout=220, check=False)  # callers check the exit
    counts = re.search(r"held (\d+)/10 goal sets .*; reached (\d+)\)", demo.stdout)
    assert counts, demo.stdout + demo.stderr
    return int(counts.group(1)), int(counts.group(2)), demo


def publish_until(monitor, goals: np.ndarray, condition, timeout: float = 20.0) -> bool:  # noqa: ANN001
    """Publish goals every 0.5 s (nodes may still be starting) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        monitor.publish_goals(goals)
        if monitor.wait_until(condition, 0.5):
            return True
    return False


def reach(monitor, goals: np.ndarray, timeout: float = 20.0) -> bool:  # noqa: ANN001
    """Every end effector within 2 cm of its goal within ``timeout`` s."""
    return publish_until(monitor, goals, lambda: bool(np.all(monitor.errors(goals) < 0.02)), timeout)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG file."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])
