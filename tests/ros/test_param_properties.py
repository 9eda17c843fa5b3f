"""Property-based tests (hypothesis) of every parameter of the controller, the sim and the goal tool: NaN, +-inf, 0,
subnormals, huge and negative values and wrong types, at start and at run time. A bad value is refused with a
one-line reason and nothing changes; an accepted one is finite and within its rule; at run time the nodes stay up,
the controller's commands go on, and its e-stop's zero goes out within the call.

The nodes run in this test process (real rclpy, a private domain): what is checked is the parameter path itself,
the one the set-parameters service and ``-p`` take (``mtpolicy.nodes.params.ParamSet``)."""

from __future__ import annotations

import math
import time
from typing import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from std_srvs.srv import SetBool

from helpers import scaled, unique_domain_id
from mtpolicy.nodes import controller_params, goals, sim
from mtpolicy.nodes.params import PARAMETER_OPTIONS, Param, ParamSet, StartupError, _coerce

NASTY = [math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1e-310, 1e-300, 2.2e-308, 1e300, 1.7e308, -1.0, -1e-9,
         -1e300, 0.001, 1e9]
VALUES = st.one_of(
    st.sampled_from(NASTY), st.floats(), st.integers(-2 ** 63, 2 ** 63 - 1), st.booleans(), st.text(max_size=4),
    st.lists(st.sampled_from(NASTY), min_size=1, max_size=3), st.lists(st.integers(-5000, 5000), min_size=1,
                                                                        max_size=3))
"""What a user can send as a ROS parameter value: doubles (the nasty ones often), integers, bools, strings, arrays."""
NODES = {"controller": controller_params.PARAMS, "sim": sim.PARAMS, "goals": goals.PARAMS}


def parameter(name: str, value: object) -> Parameter:
    try:
        return Parameter(name, value=value)
    except (TypeError, ValueError):  # a value no ROS parameter can hold
        assume(False)


def assert_accepted_value_is_sound(p: Param, value: object) -> None:
    """An accepted value has the declared type, is finite, and passes its check."""
    coerced, reason = _coerce(value, p.default, p.items)
    assert reason is None, (p.name, value, reason)
    for v in coerced if isinstance(coerced, list) else [coerced]:
        assert not isinstance(v, float) or math.isfinite(v), (p.name, value)
    assert p.check is None or p.check(coerced) is None, (p.name, value)


@pytest.fixture(scope="module")
def context() -> Iterator[rclpy.Context]:
    import os

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=unique_domain_id())
    yield context
    rclpy.shutdown(context=context)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(node=st.sampled_from(sorted(NODES)), data=st.data(), value=VALUES)
def test_a_value_at_start_is_refused_in_one_line_or_sound(context, node, data, value):
    p = data.draw(st.sampled_from(NODES[node]))
    given_value = parameter(p.name, value)
    ros_node = rclpy.create_node(node, context=context, parameter_overrides=[given_value], **PARAMETER_OPTIONS)
    try:
        params = ParamSet(ros_node, NODES[node])
    except StartupError as e:
        assert "\n" not in str(e) and str(e).startswith(f"parameter {p.name!r}: "), str(e)
        return
    finally:
        ros_node.destroy_node()
    assert_accepted_value_is_sound(p, value)
    assert getattr(params, p.name) == _coerce(value, p.default, p.items)[0]


@pytest.fixture(scope="module")
def running(context, fixture_model, planar8) -> Iterator[tuple]:
    """The controller (fixture policy, states published at home by the test, a goal set near home) and the sim,
    spun by one executor in this process."""
    from geometry_msgs.msg import PointStamped
    from sensor_msgs.msg import JointState

    from helpers import goals_near_home
    from mtpolicy.nodes.controller import PolicyController
    from mtpolicy.nodes.interfaces import GOAL_QOS, STATE_PUB_QOS, goal_message, goal_topic
    from mtpolicy.nodes.sim import MujocoSim

    args = ["--ros-args", "-p", f"controller:model:={fixture_model}", "-p", "controller:predict_state:=false",
            "-p", "sim:command_topic:=/unused/commands", "-p", "controller:state_timeout:=10.0"]
    rclpy.init(args=args, domain_id=unique_domain_id())  # the default context: the nodes' own
    controller, simulation = PolicyController(), MujocoSim()
    driver = rclpy.create_node("driver")
    states = driver.create_publisher(JointState, "/joint_states", STATE_PUB_QOS)
    goal_pubs = [driver.create_publisher(PointStamped, goal_topic(ee), GOAL_QOS) for ee in planar8.end_effectors]
    goal_set = goals_near_home(planar8, [0.2, -0.2, 0.2, -0.2, 0.2, -0.2, 0.2, -0.2])
    executor = SingleThreadedExecutor()
    for n in (controller, simulation, driver):
        executor.add_node(n)

    def feed() -> None:
        now = driver.get_clock().now().to_msg()
        msg = JointState(name=list(planar8.joint_names), position=[0.0] * planar8.n_joints)
        msg.header.stamp = now
        states.publish(msg)
        for pub, g in zip(goal_pubs, goal_set):
            pub.publish(goal_message(planar8.base_body, now, g))

    def spin_until(condition, timeout: float) -> bool:  # noqa: ANN001
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            feed()
            executor.spin_once(timeout_sec=0.01)
            if condition():
                return True
        return False

    assert spin_until(lambda: controller.hold is None, scaled(20.0)), controller.hold
    yield controller, simulation, spin_until
    executor.shutdown()
    for n in (controller, simulation, driver):
        n.destroy_node()
    rclpy.shutdown()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(node=st.sampled_from(["controller", "sim"]), data=st.data(), value=VALUES)
def test_a_value_at_run_time_is_refused_and_nothing_changes_or_sound_and_the_commands_go_on(running, node, data,
                                                                                             value):
    controller, simulation, spin_until = running
    target = controller if node == "controller" else simulation
    p = data.draw(st.sampled_from(NODES[node]))
    before = dict(target.params._values)
    result = target.set_parameters([parameter(p.name, value)])[0]
    if not result.successful:
        assert "\n" not in result.reason and target.params._values == before, (p.name, value, result.reason)
    else:
        assert_accepted_value_is_sound(p, value)
        assert 0 < controller._timer.timer_period_ns <= 2e9  # a tick at least every 2 periods of 1 Hz
    ticks = controller.counts["ticks"]
    assert spin_until(lambda: controller.counts["ticks"] >= ticks + 2, scaled(10.0)), (p.name, value)
    if result.successful:
        assert target.set_parameters([Parameter(p.name, value=before[p.name])])[0].successful


def test_the_e_stop_zero_goes_out_within_the_call(running):
    controller, _, spin_until = running
    assert spin_until(lambda: controller.hold is None and bool(np.any(controller.output.ramp.velocity)),
                      scaled(10.0))
    ticks = controller.counts["ticks"]
    response = controller._on_enable(SetBool.Request(data=False), SetBool.Response())
    assert response.success and controller.counts["ticks"] == ticks + 1  # ticked within the call
    assert not np.any(controller.output.ramp.velocity), controller.output.ramp.velocity  # planar8: no ramp
    controller._on_enable(SetBool.Request(data=True), SetBool.Response())
