"""The controller takes its robot as ROS users have it, a URDF in the ``robot_description`` parameter (issue 52).
Over DDS, the processes started as a user starts them.

The Panda, given to the controller as tests/fixtures/panda_urdf/panda.urdf (meshes package://robosuite/...), with
its shipped policy ``panda_reach`` (the controller observes the end effectors on the URDF's kinematics), while
the simulator runs the shipped folder; the refusals with a fixture policy made for that folder. The URDF helpers
without ROS: tests/unit/test_urdf_description.py.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from helpers import REPO, make_fixture_policy, reach, scaled
from mtpolicy.kinematics import Kinematics
from mtpolicy.robots import load_robot

PANDA_URDF = REPO / "tests" / "fixtures" / "panda_urdf" / "panda.urdf"


@pytest.fixture(scope="module")
def panda():  # noqa: ANN201
    if importlib.util.find_spec("robosuite") is None:  # its files only: importing it needs what --no-deps left out
        pytest.skip("the Panda's meshes are robosuite's (make setup installs it with --no-deps)")
    return load_robot("panda")


@pytest.fixture(scope="module")
def panda_model(panda, tmp_path_factory):  # noqa: ANN001, ANN201
    """A policy for the shipped Panda (damped least squares linearised at home, as an ONNX graph)."""
    return make_fixture_policy(tmp_path_factory.mktemp("models") / "panda_fixture.onnx", panda,
                               at=Kinematics(panda).home)


def test_the_panda_from_its_urdf_reaches_a_goal_commanding_within_its_limits(start_node, robot_monitor, panda):
    """`-p robot_description:=<URDF>` and the shipped Panda policy: the simulated Panda reaches goals, every command
    within the velocity limits and stepping no faster than the acceleration limits (the shipped folder's), zeros at
    the goal."""
    start_node("mtpolicy_sim", robot="panda")
    ctrl = start_node("mtpolicy_controller", model="panda_reach", robot_description=PANDA_URDF.read_text())
    monitor = robot_monitor(panda)
    kin = Kinematics(panda)
    for offset in ([0.2, -0.15, 0.2, 0.2, -0.2, 0.2, 0.1], [-0.2, 0.15, -0.15, -0.2, 0.2, -0.2, 0.0]):
        goals = kin.ee_positions(kin.home + np.array(offset))
        assert reach(monitor, goals, timeout=scaled(40.0)), (monitor.errors(goals), ctrl.output()[-3000:])
    settled = lambda: monitor.command is not None and np.abs(monitor.command).max() < 1e-3  # noqa: E731
    assert monitor.wait_until(settled, scaled(10.0)), monitor.command  # at the goal: zeros
    monitor.wait_until(lambda: len(monitor.commands) > 20, scaled(10.0))  # the policy reaches in ~8 ticks a goal
    out = ctrl.output()
    assert "on robot 'panda' (robot_description): 7 joints, end effectors ['right_hand'] in frame 'base'" in out, out
    assert "refusing" not in out and "Traceback" not in out, out[-3000:]
    commands = np.array([c for _, c in monitor.commands])
    assert len(commands) > 20 and np.abs(commands).max() > 0.05, commands  # it moved the robot
    assert np.all(np.abs(commands) <= panda.velocity_limits + 1e-9)
    step = 2 * 0.05 * panda.acceleration_limits  # the ramp's largest step: a_max for 2 control periods
    assert np.all(np.abs(np.diff(commands, axis=0)) <= step + 1e-9), np.abs(np.diff(commands, axis=0)).max(axis=0)


def test_a_bad_robot_description_is_refused_in_one_line(start_node, ros_env, panda, panda_model):
    """Malformed XML, a URDF lacking one of the model's joints, a package:// that is not found: the controller exits 1
    saying so in one line, without a traceback."""
    ros_env.pop("ROS_PACKAGE_PATH", None)
    ros_env.pop("AMENT_PREFIX_PATH", None)
    urdf = PANDA_URDF.read_text()
    cases = {"<robot name='panda'><link name='base'>": "robot_description is not well-formed XML: ",
             urdf.replace('name="joint7"', 'name="panda_joint7"'): "robot_description lacks the model's joint(s) "
                                                                    "['joint7'] (its movable joints: ",
             urdf.replace("package://robosuite/", "package://panda_description/"):
                 "package 'panda_description' not found on ROS_PACKAGE_PATH (unset)"}
    started = [(start_node("mtpolicy_controller", model=panda_model, robot_description=text), expected)
               for text, expected in cases.items()]
    for proc, expected in started:
        assert proc.wait(scaled(40)) == 1, proc.output()
        out = proc.output()
        refusals = [line for line in out.splitlines() if "refusing to start" in line]
        assert len(refusals) == 1 and expected in refusals[0] and "Traceback" not in out, out
