"""Fixtures of the ROS tier: a private DDS domain per test, processes in it, monitors, the colcon build.

Every ROS process of a test (the test's own rclpy context included) runs
with ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a test-unique
``ROS_DOMAIN_ID``, so tests neither multicast on the network nor hear each
other.

A test that needs colcon, the ROS 2 launch tools or the ``ros2`` CLI skips where they are missing, naming them;
under ``CI=true`` (what CI runs with) it fails instead, so CI cannot go green without them (``needs``).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterator

import pytest

from mtpolicy.robots import RobotSpec

LAUNCHER_SIGNALS = {signal.SIGHUP: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}
"""The test process's own handling of the signals the launch tests send: a child inherits an ignored signal
through exec, so a launcher started while the test process ignores one ignores it too."""


@pytest.fixture(autouse=True)
def launcher_signals_not_ignored(request: pytest.FixtureRequest) -> None:
    """Before each ROS test, SIGHUP at its default and SIGINT at Python's KeyboardInterrupt handler, with a warning
    naming the test that found either otherwise (ignored under nohup, or left so by an earlier test)."""
    for sig, handler in LAUNCHER_SIGNALS.items():
        if signal.getsignal(sig) is not handler:
            warnings.warn(f"{request.node.nodeid}: {signal.Signals(sig).name} was {signal.getsignal(sig)!r} in the "
                          "test process; reset")
            signal.signal(sig, handler)


@pytest.fixture
def ros_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for this test's ROS processes; the test process itself joins the same domain."""
    from mtpolicy_tools.environment import ros_env as make_env
    from helpers import unique_domain_id

    env = make_env(domain_id=unique_domain_id())
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_LOG_DIR"] = str(tmp_path / "ros_log")  # not ~/.ros/log
    # ros2 launch writes each node's parameters to a file in the temp folder that it never removes
    # (ros2/launch_ros#5), and a KILLed `mtpolicy launch` leaves its folder: both go into one removed after the test
    # (short: AF_UNIX socket paths under TMPDIR have a 107-byte limit)
    env["TMPDIR"] = scratch = tempfile.mkdtemp(prefix="ros-test-")
    for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID", "MUJOCO_GL"):
        monkeypatch.setenv(key, env[key])
    yield env
    shutil.rmtree(scratch, ignore_errors=True)


def needs(reason: str | None) -> None:
    """Skip the test for ``reason`` (what it needs is missing; None: nothing is); under CI=true, fail naming it."""
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI=true, and the ROS 2 tools this test needs are missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ros2_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A colcon build of ros2_ws, once per session: its install folder. Skips where colcon or the ROS 2 launch
    tools are missing, saying which (``needs``)."""
    import launchers

    needs(launchers.missing())
    return launchers.colcon_build(tmp_path_factory.mktemp("colcon"))


@pytest.fixture
def ros2_env(ros_env: dict[str, str], ros2_install: Path) -> dict[str, str]:
    """This test's ROS environment after ``. install/setup.sh`` of the colcon build (``ros2 launch mtpolicy``)."""
    from launchers import install_env

    return install_env(ros2_install, ros_env)


@pytest.fixture
def ros2_cli_env(ros2_env: dict[str, str]) -> dict[str, str]:
    """``ros2_env`` where the ``ros2`` verbs the docs use are installed too (``needs``)."""
    from launchers import CLI_VERBS, missing

    needs(missing(CLI_VERBS))
    return ros2_env


@pytest.fixture(params=["ros2", "mtpolicy"])
def launcher(request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    """Each launcher with its environment: ``ros2 launch`` from the colcon build, the pip-only ``mtpolicy launch``."""
    env = request.getfixturevalue("ros2_env" if request.param == "ros2" else "ros_env")
    return request.param, env


@pytest.fixture
def monitor(ros_env: dict[str, str], planar8: RobotSpec) -> Iterator["object"]:
    """A ReachMonitor node in this test's private domain (rclpy context set up and torn down)."""
    import rclpy

    from mtpolicy_tools.monitor import ReachMonitor

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
    from mtpolicy_tools.launch_runner import ManagedProcess

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
    from mtpolicy_tools.launch_runner import find_executable

    def start(executable: str, **params: object) -> "object":
        ros_args = [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
        return spawn(executable, [str(find_executable("mtpolicy", executable)), "--ros-args", *ros_args])

    return start


@pytest.fixture
def robot_monitor(ros_env: dict[str, str]) -> Iterator:
    """``robot_monitor(spec)``: a ReachMonitor of any robot in this test's private domain, torn down after it."""
    import rclpy

    from mtpolicy_tools.monitor import ReachMonitor

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    nodes = []

    def make(spec: RobotSpec) -> ReachMonitor:
        nodes.append(ReachMonitor(spec, context=context))
        return nodes[-1]

    try:
        yield make
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.shutdown(context=context)
