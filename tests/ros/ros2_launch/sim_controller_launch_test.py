"""launch_testing test of ``sim_controller.launch.xml``, run by ``launch_test`` (tests/ros/ros2_launch/
test_ros2_launch.py runs it against a colcon build of ros2_ws; by hand:
``launch_test tests/ros/ros2_launch/sim_controller_launch_test.py`` with the install sourced).

(This folder is not called launch_testing: with tests/ros on sys.path it would shadow the real package. The file
name does not start with ``test_``: pytest, whose launch_testing plugin is off in pytest.ini, does not collect it.)

Real ``ros2 launch`` machinery brings up sim + controller; the test checks
over DDS what tests/ros/test_nodes.py checks on single nodes: goal sets near home
are reached, NaN and wrong-frame goals are rejected while the robot holds
its goal, the e-stop yields zeros and releasing it lets the robot reach the
next goal set; after the shutdown every process exited 0, none printed a
traceback, and the controller left one zero command. The policy is the
shipped planar8 model unless ``MTPOLICY_TEST_MODEL`` names another one.
"""

from __future__ import annotations

import math
import os
import unittest

import launch
import launch_testing
import launch_testing.actions
import launch_testing.asserts
import numpy as np
import rclpy
from ament_index_python.packages import get_package_share_directory
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import AnyLaunchDescriptionSource
from std_srvs.srv import SetBool

from mtpolicy.kinematics import Kinematics
from mtpolicy.robots import load_robot
from mtpolicy_tools.environment import ros_env
from mtpolicy_tools.monitor import ReachMonitor

MODEL = os.environ.get("MTPOLICY_TEST_MODEL", "")
TOLERANCE = 0.02
"""m: every end effector this close to its goal counts as reached (the shipped models' training tolerance)."""


def generate_test_description():  # noqa: ANN201
    os.environ.update(ros_env(isolate=True))  # the launched nodes inherit it (a given ROS_DOMAIN_ID is kept)
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
        cls.kin = Kinematics(cls.spec)
        cls.monitor = ReachMonitor(cls.spec, name="launch_test_monitor")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.monitor.destroy_node()
        rclpy.shutdown()

    def reach(self, goals: np.ndarray, timeout: float = 30.0) -> bool:
        """Publish ``goals`` every 0.5 s (the stack may still be starting) until every end effector is there."""
        m = self.monitor
        for _ in range(int(timeout / 0.5)):
            m.publish_goals(goals)
            if m.wait_until(lambda: bool(np.all(m.errors(goals) < TOLERANCE)), 0.5):
                return True
        return False

    def test_reach_reject_bad_goals_estop(self, proc_output) -> None:  # noqa: ANN001
        m = self.monitor
        goals = self.kin.ee_positions(np.full(self.spec.n_joints, 0.15))
        self.assertTrue(self.reach(goals), m.errors(goals))

        m.publish_goals([[math.nan, 0.0, 0.0], None, None])
        m.publish_goals([None, goals[1], None], frame_id="world")
        proc_output.assertWaitFor("rejected: non-finite goal", timeout=10)
        proc_output.assertWaitFor("rejected: goal in frame 'world'", timeout=10)
        states = m.states  # the robot holds the goal it had: 50 joint states later it is still there
        self.assertTrue(m.wait_until(lambda: m.states >= states + 50, 10.0))
        self.assertTrue(np.all(m.errors(goals) < TOLERANCE), m.errors(goals))

        self.assertTrue(m.call(SetBool, "/controller/enable", SetBool.Request(data=False)).success)
        self.assertTrue(m.wait_until(lambda: len(m.commands) >= 3 and not any(np.any(c) for _, c in m.commands[-3:]),
                                     10.0), m.commands[-3:])
        self.assertTrue(m.call(SetBool, "/controller/enable", SetBool.Request(data=True)).success)
        self.assertTrue(self.reach(self.kin.ee_positions(np.full(self.spec.n_joints, -0.15))))


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_clean_exit(self, proc_info, proc_output) -> None:  # noqa: ANN001
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])
        text = "\n".join(io.text.decode(errors="replace") for io in proc_output)
        self.assertNotIn("Traceback", text)
        self.assertIn("stopping: published one zero command", text)
