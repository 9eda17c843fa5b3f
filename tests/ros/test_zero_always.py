"""Nothing a user sets or sends takes the robot's zero away: over real DDS, a parameter value that would stop the
commands is refused (at start and at run time) and the commands go on; an error raised in a callback (the tick, a
timer, a parameter callback) sends a zero and the controller survives it; the e-stop's zero goes out within the
service call, whatever the rate. Shared pieces: tests/ros/faults.py."""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import pytest
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from std_srvs.srv import SetBool

from faults import diagnostics, one_line_refusal, seen, start_driven_controller, stamped_states
from helpers import scaled


def set_parameter(monitor, name: str, value: object):  # noqa: ANN001, ANN201
    """Set one controller parameter over its set_parameters service (as `ros2 param set` does); the result."""
    request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    return monitor.call(SetParameters, "/controller/set_parameters", request).results[0]


def commands_go_on(monitor, driver, spec, count: int = 5) -> bool:  # noqa: ANN001
    """``count`` more commands arrive while the driver publishes states at home."""
    first = len(monitor.commands)
    return driver.publish_until(lambda: stamped_states(monitor, spec, np.zeros(spec.n_joints)),
                                lambda: len(monitor.commands) >= first + count, scaled(10.0))


STOPPING_VALUES = [("rate_hz", 0.001), ("rate_hz", 1e-300), ("marker_rate_hz", 1e-300), ("state_timeout", math.nan),
                   ("state_limit_margin", math.nan), ("workspace_margin", math.nan), ("rate_hz", math.inf),
                   ("goal_timeout", -1.0)]
"""Values the held-out probe set over DDS on a moving controller: each stopped its commands, or a check."""


def test_a_value_that_would_stop_the_commands_is_refused_at_run_time_and_they_go_on(start_node, monitor, planar8,
                                                                                    fixture_model):
    ctrl, driver, goals = start_driven_controller(start_node, monitor, planar8, model=fixture_model)
    for name, value in STOPPING_VALUES:
        result = set_parameter(monitor, name, value)
        assert not result.successful and f"parameter {name!r}: must be" in result.reason, (name, result.reason)
        assert "\n" not in result.reason
        assert commands_go_on(monitor, driver, planar8), ctrl.output()
        assert any(np.any(c) for _, c in monitor.commands[-3:])  # still the policy's, not a hold
    assert ctrl.returncode is None, ctrl.output()


@pytest.mark.parametrize("name, value", [("state_timeout", ".nan"), ("rate_hz", "0.001"), ("marker_rate_hz", "-.inf")])
def test_a_value_that_would_stop_the_commands_is_refused_at_start_in_one_line(start_node, fixture_model, name, value):
    ctrl = start_node("mtpolicy_controller", model=fixture_model, **{name: value})
    one_line_refusal(ctrl, f"refusing to start: parameter {name!r}: must be")


def test_the_e_stop_publishes_its_zero_within_the_call_at_the_slowest_rate(start_node, monitor, planar8,
                                                                              fixture_model):
    ctrl, driver, goals = start_driven_controller(start_node, monitor, planar8, model=fixture_model, rate_hz=1.0)
    assert np.any(monitor.command)
    first = len(monitor.commands)
    assert monitor.call(SetBool, "/controller/enable", SetBool.Request(data=False)).success
    # the zero was published before the answer: it arrives long before the next tick, a second away
    assert monitor.wait_until(lambda: any(not np.any(c) for _, c in monitor.commands[first:]), scaled(0.5)), \
        [c for _, c in monitor.commands[first:]]


INJECTED = '''
import sys
from mtpolicy.nodes import controller, process

TRIGGER = 123.0  # progress_timeout set to this (at run time) raises in the method under test


def inject(name):
    original = getattr(controller.PolicyController, name)

    def failing(self, *args):
        if self.params.progress_timeout == TRIGGER:
            raise RuntimeError(f"injected into {name}")
        return original(self, *args)
    setattr(controller.PolicyController, name, failing)


inject(sys.argv[1])
sys.argv[1:2] = []
sys.exit(process.controller())
'''


@pytest.mark.parametrize("method", ["tick", "_housekeeping", "_on_params_set"])
def test_an_error_in_a_callback_sends_a_zero_and_the_controller_survives(spawn, ros_env, monitor, planar8,
                                                                          fixture_model, tmp_path, method):
    script = tmp_path / "injected_controller.py"
    script.write_text(INJECTED)

    def start_node(executable: str, **params: object):  # noqa: ANN202 - the controller with a fault injected
        args = [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
        return spawn(executable, [sys.executable, str(script), method, "--ros-args", *args])

    statuses = diagnostics(monitor)
    ctrl, driver, goals = start_driven_controller(start_node, monitor, planar8, model=fixture_model)
    first = len(monitor.commands)
    set_parameter(monitor, "progress_timeout", 123.0)  # the injected error: once, or in every tick from now on
    assert driver.publish_until(lambda: stamped_states(monitor, planar8, np.zeros(planar8.n_joints)),
                                lambda: any(not np.any(c) for _, c in monitor.commands[first:]), scaled(10.0)), \
        ctrl.output()
    assert ctrl.wait_for_output(f"internal error, publishing zeros: RuntimeError: injected into {method}",
                                scaled(10.0)), ctrl.output()
    set_parameter(monitor, "progress_timeout", 5.0)  # (an error in every housekeeping round publishes no report)
    assert driver.publish_until(lambda: stamped_states(monitor, planar8, np.zeros(planar8.n_joints)),
                                lambda: seen(statuses, b"\x02", "internal error: RuntimeError"), scaled(10.0))
    assert commands_go_on(monitor, driver, planar8), ctrl.output()
    assert driver.publish_until(lambda: stamped_states(monitor, planar8, np.zeros(planar8.n_joints)),
                                lambda: bool(np.any(monitor.command)), scaled(10.0))  # the policy commands again
    assert ctrl.returncode is None and "Traceback" not in ctrl.output(), ctrl.output()


def test_a_flood_of_new_goal_sets_does_not_raise_the_control_rate(start_node, monitor, planar8, fixture_model):
    """Each goal set differs from the last, 200 a second for 2 s: the commands stay at rate_hz (20 Hz)."""
    ctrl, driver, goals = start_driven_controller(start_node, monitor, planar8, model=fixture_model, rate_hz=20.0)
    rng = np.random.default_rng(0)
    first, start = len(monitor.commands), time.monotonic()
    while time.monotonic() - start < 2.0:
        monitor.publish_goals(goals + rng.uniform(-1e-3, 1e-3, goals.shape))
        driver.pub.publish(stamped_states(monitor, planar8, np.zeros(planar8.n_joints)))
        monitor.spin_for(0.005)
    elapsed = time.monotonic() - start
    # an upper bound only (a loaded machine ticks less, never more): 20 Hz and one tick of slack at either end
    assert len(monitor.commands) - first <= 20.0 * elapsed + 2, (len(monitor.commands) - first, elapsed)


@pytest.mark.parametrize("case, period, age, text", [
    ("slow", 0.2, 0.0, "joint states at 5.0 Hz, slower than the control rate 20.0 Hz"),
    ("late", 0.01, 0.1, "ms after their stamps (median), over one control period (50 ms)"),
])
def test_degraded_joint_states_are_said_in_the_diagnostics(start_node, monitor, planar8, fixture_model, case, period,
                                                           age, text):
    """States at 5 Hz (within state_timeout, so the policy runs on), or stamped 100 ms before they arrive (within
    state_timeout): WARN, saying which."""
    statuses = diagnostics(monitor)
    ctrl, driver, goals = start_driven_controller(start_node, monitor, planar8, model=fixture_model)

    def degraded() -> object:
        monitor.publish_goals(goals)
        return stamped_states(monitor, planar8, np.zeros(planar8.n_joints), age)

    assert driver.publish_until(degraded, lambda: seen(statuses, b"\x01", text), scaled(10.0), period), \
        [s.message for s in statuses[-3:]]
