"""launch_testing version of the stack tests, for ROS 2 installs (``launch_test`` or pytest with launch_testing).

(This folder is not called launch_testing: with tests/ on sys.path it would shadow the real package.)

Brings up ``sim_controller.launch.xml`` with real ``ros2 launch`` machinery
and checks what tests/test_nodes.py checks through the pip-only runner: goals
near home are reached, the e-stop yields zeros, NaN and wrong-frame goals are
rejected while the robot keeps working. The policy is the shipped planar8
model unless ``MTPOLICY_TEST_MODEL`` names another one. Skipped where
launch_testing is not installed (PyPI-only ROS 2).
"""

from __future__ import annotations

import math
import os
import unittest

import pytest

for _name in ("launch_testing", "launch", "launch_xml"):
    pytest.importorskip(_name)

import launch  # noqa: E402
import launch_testing  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import AnyLaunchDescriptionSource  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from mtpolicy.kinematics import Kinematics  # noqa: E402
from mtpolicy.nodes.common import ros_env  # noqa: E402
from mtpolicy.nodes.monitor import ReachMonitor  # noqa: E402
from mtpolicy.robots import load_robot  # noqa: E402

MODEL = os.environ.get("MTPOLICY_TEST_MODEL", "")


@pytest.mark.launch_test
def generate_test_description():  # noqa: ANN201
    os.environ.update(ros_env(isolate=True))  # the launched nodes inherit it
    share = get_package_share_directory("mtpolicy")
    args = {"robot": "planar8", "rate_hz": "20.0", **({"model": MODEL} if MODEL else {})}
    stack = IncludeLaunchDescription(AnyLaunchDescriptionSource(f"{share}/launch/sim_controller.launch.xml"),
                                     launch_arguments=args.items())
    return launch.LaunchDescription([stack, launch_testing.actions.ReadyToTest()])


class TestStack(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        rclpy.init()
        cls.spec = load_robot("planar8")
        cls.monitor = ReachMonitor(cls.spec, name="launch_test_monitor")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.monitor.destroy_node()
        rclpy.shutdown()

    def reach(self, goals: np.ndarray, timeout: float = 20.0) -> bool:
        m = self.monitor
        for _ in range(int(timeout / 0.5)):
            m.publish_goals(goals)
            if m.wait_until(lambda: bool(np.all(m.errors(goals) < 0.02)), 0.5):
                return True
        return False

    def test_reach_estop_and_bad_goals(self, proc_output) -> None:  # noqa: ANN001
        m = self.monitor
        goals = Kinematics(self.spec).ee_positions(np.full(self.spec.n_joints, 0.15))
        self.assertTrue(self.reach(goals), m.errors(goals))

        bad = goals.copy()
        bad[0] = [math.nan, 0.0, 0.0]
        m.publish_goals([bad[0], None, None])
        m.publish_goals([None, goals[1], None], frame_id="world")
        proc_output.assertWaitFor("rejected: non-finite goal", timeout=5)
        proc_output.assertWaitFor("rejected: goal in frame 'world'", timeout=5)
        m.spin_for(1.0)
        self.assertTrue(np.all(m.errors(goals) < 0.02))

        self.assertTrue(m.call(SetBool, "/controller/enable", SetBool.Request(data=False)).success)
        m.spin_for(0.5)
        self.assertTrue(all(not np.any(c) for _, c in m.commands[-3:]))
        self.assertTrue(m.call(SetBool, "/controller/enable", SetBool.Request(data=True)).success)
        self.assertTrue(self.reach(Kinematics(self.spec).ee_positions(np.full(self.spec.n_joints, -0.15))))


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_clean_exit(self, proc_info) -> None:  # noqa: ANN001
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2, -15])
