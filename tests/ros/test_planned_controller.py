"""A planner-conditioned policy in the controller node over real DDS: the node plans q*, the robot folds to it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from onnx import TensorProto, helper, numpy_helper

from mtpolicy.kinematics import Kinematics, sample_configurations
from mtpolicy.planner import PlannerConfig
from mtpolicy.policy import PolicyContract
from mtpolicy.robots import RobotSpec

pytestmark = pytest.mark.timeout(120)


def planned_servo_policy(path, spec: RobotSpec, gain: float = 4.0):  # noqa: ANN001, ANN201
    """A valid planned policy .onnx: v = clip(gain * (q* - q)) on the goal_config_error segment."""
    contract = PolicyContract.for_robot(spec, control_period=0.05, method="fixture-planned", training_config={},
                                        reach_tolerance=0.02, goal_distribution="workspace",
                                        planner=PlannerConfig().to_dict())
    layout = contract.observation_layout
    w = np.zeros((layout.size, spec.n_joints), dtype=np.float32)
    w[layout.slice("goal_config_error")] = gain * np.eye(spec.n_joints)
    lim = spec.velocity_limits.astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["observation", "W"], ["raw"]),
         helper.make_node("Max", ["raw", "lo"], ["floored"]),
         helper.make_node("Min", ["floored", "hi"], ["joint_velocity"])], "planned_fixture",
        [helper.make_tensor_value_info("observation", TensorProto.FLOAT, ["batch", layout.size])],
        [helper.make_tensor_value_info("joint_velocity", TensorProto.FLOAT, ["batch", spec.n_joints])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(-lim, "lo"), numpy_helper.from_array(lim, "hi")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    for key, value in contract.to_metadata().items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.save(model, str(path))
    return path


def test_controller_plans_the_goal_configuration_and_reaches_a_workspace_goal_set(start_node, monitor, planar8,
                                                                                 tmp_path):
    model = planned_servo_policy(tmp_path / "planned.onnx", planar8)
    diagnostics: list[DiagnosticArray] = []
    monitor.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    start_node("mtpolicy_sim", robot="planar8")
    start_node("mtpolicy_controller", model=model, rate_hz=20.0)
    target = sample_configurations(planar8, np.random.default_rng(8), 1)[0]  # far from home, in the limits
    goals = Kinematics(planar8).ee_positions(target)
    deadline_steps = 60  # 0.5 s each: republish while the nodes start, then let the robot fold
    reached = False
    for _ in range(deadline_steps):
        monitor.publish_goals(goals)
        if monitor.wait_until(lambda: bool(np.all(monitor.errors(goals) < 0.02)), 0.5):
            reached = True
            break
    assert reached, f"errors {monitor.errors(goals)}"
    assert monitor.wait_until(lambda: any(kv.key == "plan_latency_p50_ms" for d in diagnostics for s in d.status
                                          for kv in s.values), 5.0)
    latency = [float(kv.value) for d in diagnostics for s in d.status for kv in s.values
               if kv.key == "plan_latency_p50_ms" and kv.value != "nan"]
    assert latency and latency[-1] > 0
