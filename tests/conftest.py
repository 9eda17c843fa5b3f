"""Fixtures of the ROS tests: a private DDS domain per test, a fixture policy, process helpers, colcon.

Every ROS process of a test (the test's own rclpy context included) runs
with ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a test-unique
``ROS_DOMAIN_ID``, so tests neither multicast on the network nor hear each
other. Tests wait on events; the few deadlines that cannot be events (how
long a goal set is held) go through ``scaled``. Without the training extra
(torch, gymnasium, metaworld: e.g. ``colcon test`` on a robot computer), test
modules that import it at the top are skipped, saying so, and the runtime and
ROS tests run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is first imported

from mtpolicy.kinematics import Kinematics
from mtpolicy.policy import PolicyContract
from mtpolicy.robots import RobotSpec, load_robot

REPO = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = REPO / "models" / "planar8_digrad.onnx"
TIME_SCALE = float(os.environ.get("MTPOLICY_TEST_TIME_SCALE", "1"))
"""Multiplies the deadlines that are not events (set it above 1 on a machine slower than a loaded 2-core VM)."""
TRAINING_MISSING = [m for m in ("torch", "gymnasium", "metaworld") if importlib.util.find_spec(m) is None]
_TRAINING_IMPORT = re.compile(r"^(?:from|import)\s+(?:mtpolicy_training|torch|gymnasium|metaworld)\b", re.M)
_TEST_MODULE_IMPORT = re.compile(r"^from\s+(test_\w+)\s+import\b", re.M)


def scaled(seconds: float) -> float:
    return seconds * TIME_SCALE


class NeedsTraining(pytest.Module):
    """A test module that imports the training extra on a machine without it: reported as skipped."""

    def collect(self):  # noqa: ANN201
        pytest.skip(f"needs the training extra (missing: {', '.join(TRAINING_MISSING)}; pip install -e '.[train]')")


def imports_training(module_path: Path) -> bool:
    """Whether a test module imports the training extra at its top, itself or through a test module it imports."""
    text = module_path.read_text()
    return bool(_TRAINING_IMPORT.search(text)) or any(
        imports_training(module_path.with_name(f"{name}.py")) for name in _TEST_MODULE_IMPORT.findall(text)
        if module_path.with_name(f"{name}.py").is_file())


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if TRAINING_MISSING and imports_training(module_path):
        return NeedsTraining.from_parent(parent, path=module_path)
    return None


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
    """``mtpolicy demo --goals 10 --no-video ARGS`` (sim + controller over DDS): goal sets held and reached of 10,
    the process."""
    from mtpolicy.launch_runner import find_executable

    demo = subprocess.run([str(find_executable("mtpolicy", "mtpolicy")), "demo", "--goals", "10", "--no-video", *args],
                          env=env, capture_output=True, text=True, timeout=220, check=False)  # callers check the exit
    counts = re.search(r"held (\d+)/10 goal sets .*; reached (\d+)\)", demo.stdout)
    assert counts, demo.stdout + demo.stderr
    return int(counts.group(1)), int(counts.group(2)), demo


@pytest.fixture(scope="session")
def planar8() -> RobotSpec:
    return load_robot("planar8")


@pytest.fixture(scope="session")
def fixture_model(tmp_path_factory: pytest.TempPathFactory, planar8: RobotSpec) -> Path:
    return make_fixture_policy(tmp_path_factory.mktemp("models") / "planar8_fixture.onnx", planar8)


@pytest.fixture
def ros_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for this test's ROS processes; the test process itself joins the same domain."""
    from mtpolicy.nodes.common import ros_env as make_env, unique_domain_id

    env = make_env(domain_id=unique_domain_id())
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_LOG_DIR"] = str(tmp_path / "ros_log")  # not ~/.ros/log
    for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID", "MUJOCO_GL"):
        monkeypatch.setenv(key, env[key])
    yield env


@pytest.fixture(scope="session")
def ros2_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A colcon build of ros2_ws, once per session: its install folder. Skips where colcon or the ROS 2 launch
    tools are missing, saying which."""
    from mtpolicy import launchers

    reason = launchers.missing()
    if reason:
        pytest.skip(reason)
    return launchers.colcon_build(tmp_path_factory.mktemp("colcon"))


@pytest.fixture
def ros2_env(ros_env: dict[str, str], ros2_install: Path) -> dict[str, str]:
    """This test's ROS environment after ``. install/setup.sh`` of the colcon build (``ros2 launch mtpolicy``)."""
    from mtpolicy.launchers import install_env

    return install_env(ros2_install, ros_env)


@pytest.fixture(params=["ros2", "mtpolicy"])
def launcher(request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    """Each launcher with its environment: ``ros2 launch`` from the colcon build, the pip-only ``mtpolicy launch``."""
    env = request.getfixturevalue("ros2_env" if request.param == "ros2" else "ros_env")
    return request.param, env


@pytest.fixture
def monitor(ros_env: dict[str, str], planar8: RobotSpec) -> Iterator["object"]:
    """A ReachMonitor node in this test's private domain (rclpy context set up and torn down)."""
    import rclpy

    from mtpolicy.nodes.monitor import ReachMonitor

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    node = ReachMonitor(planar8, context=context)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


@pytest.fixture
def spawn(ros_env: dict[str, str]) -> Iterator[Callable[..., "object"]]:
    """Start a process in this test's ROS domain: ``spawn(name, cmd, env=ros_env)``; all are stopped when the
    test ends."""
    from mtpolicy.launch_runner import ManagedProcess

    started: list[ManagedProcess] = []

    def start(name: str, cmd: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        proc = ManagedProcess(name, cmd, env=ros_env if env is None else env, echo=None)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop(grace=3.0)


@pytest.fixture
def start_node(spawn: Callable[..., "object"]) -> Callable[..., "object"]:
    """Start one of the package's node executables with ``-p`` parameters."""
    from mtpolicy.launch_runner import find_executable

    def start(executable: str, **params: object) -> "object":
        ros_args = [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
        return spawn(executable, [str(find_executable("mtpolicy", executable)), "--ros-args", *ros_args])

    return start

