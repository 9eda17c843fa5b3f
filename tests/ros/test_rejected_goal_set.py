"""A goal set the planner rejects, over real DDS (issue 62): the controller warns and keeps following its plan, so
the robot holds still instead of driving to a configuration in self-collision."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from helpers import publish_until, scaled
from mtpolicy.kinematics import Kinematics
from mtpolicy.planner import PlannerConfig
from mtpolicy.robots import load_robot
from test_planned_controller import planned_servo_policy

pytestmark = pytest.mark.timeout(120)


def test_the_controller_keeps_its_plan_on_a_goal_set_the_planner_rejects(start_node, robot_monitor, tmp_path):
    """GR1 with its start as the planner's only candidate, asked to put both hands on one point: the start refines
    into the hands' collision (from anywhere within 0.03 rad of home), so the planner rejects the set (before, the
    servo drove the arms into each other)."""
    spec = load_robot("gr1")
    kin = Kinematics(spec)
    model = onnx.load(planned_servo_policy(tmp_path / "planned.onnx", spec))
    next(p for p in model.metadata_props if p.key == "planner").value = json.dumps(
        PlannerConfig(restarts=0, avoid_collisions=True).to_dict())
    onnx.save(model, str(tmp_path / "planned.onnx"))
    monitor = robot_monitor(spec)
    start_node("mtpolicy_sim", robot="gr1")
    ctrl = start_node("mtpolicy_controller", model=tmp_path / "planned.onnx", rate_hz=20.0)
    home = kin.ee_positions(kin.home)
    assert publish_until(monitor, home, lambda: "running the policy" in ctrl.output(), timeout=scaled(60.0)), \
        ctrl.output()  # the plan of the first goal set: the start itself
    assert np.abs(monitor.q - kin.home).max() < 0.02
    one_point = np.array([[0.25, 0.0, 0.1], [0.25, 0.0, 0.1]])
    publish_until(monitor, one_point, lambda: "goal set rejected" in ctrl.output(), timeout=scaled(20.0))
    assert "planner: goal set rejected (every candidate configuration, or a joint move to it from the start, is " \
           "in self-collision); keeping the previous plan" in ctrl.output(), ctrl.output()
    monitor.spin_for(2.0)  # the robot would have folded by now
    assert np.abs(monitor.q - kin.home).max() < 0.02 and np.abs(monitor.command).max() < 1e-6, ctrl.output()
