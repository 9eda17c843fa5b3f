"""The controller's supervisor without DDS or rclpy: every tick check, the command filter, every joint-state check."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from mtpolicy.state_intake import JointStateIntake, StateTimes
from mtpolicy.supervisor import (NON_FINITE, TICK_CHECKS, WAITING_FOR_PLAN, Hold, HoldKind, Inputs, Severity,
                                 SupervisedRobot, Supervisor, enabled, fresh_states, goals_present,
                                 recent_state_fault)

JOINTS = ["a", "b"]
LIMITS = np.array([[-1.0, 1.0], [-2.0, 2.0]])
VELOCITY_LIMITS = np.array([1.0, 2.0])
ROBOT = SupervisedRobot(JOINTS, ["left", "right"], ["/goals/left", "/goals/right"], "/joint_states")


@dataclass
class Settings:
    """The controller parameters the checks read (the node passes its ParamSet)."""

    state_timeout: float = 0.25
    stamp_tolerance: float = 0.05
    goal_timeout: float = 0.0
    limit_margin: float = 0.0
    state_limit_margin: float = 0.1


def running_inputs(now: float = 10.0) -> Inputs:
    """Inputs with which no check holds: fresh states of both joints, a goal for both end effectors."""
    times = StateTimes(2)
    times.record(np.array([0, 1]), arrival=now, taken=now, lag=0.0, stamp=math.nan)
    return Inputs(times, np.full(2, now), now=now)


def test_with_fresh_states_goals_and_the_e_stop_off_no_check_holds():
    inputs, settings = running_inputs(), Settings()
    assert all(check(inputs, settings, ROBOT) is None for check in TICK_CHECKS)
    assert Supervisor(ROBOT, settings, VELOCITY_LIMITS, LIMITS).hold(inputs) is None


def test_a_state_fault_holds_with_its_error_for_state_timeout():
    inputs, settings = running_inputs(), Settings()
    fault = Hold(HoldKind.POSITION_JUMP, Severity.ERROR, "joint 'a' jumped 1.000 rad")
    inputs.state_fault, inputs.state_fault_time = fault, 9.9
    assert recent_state_fault(inputs, settings, ROBOT) is fault
    assert str(fault) == "implausible joint states (position jump): joint 'a' jumped 1.000 rad"
    inputs.now = 10.2
    assert recent_state_fault(inputs, settings, ROBOT) is None


def test_states_missing_warn_then_stale_by_arrival_or_by_stamp_are_errors():
    settings, times = Settings(), StateTimes(2)
    inputs = Inputs(times, np.full(2, 10.0), now=10.0)
    times.record(np.array([0]), arrival=10.0, taken=10.0, lag=0.0, stamp=math.nan)
    assert fresh_states(inputs, settings, ROBOT) == Hold(HoldKind.STATES_MISSING, Severity.WARN,
                                                         "no joint state yet for ['b'] on /joint_states")
    times.record(np.array([1]), arrival=10.0, taken=10.0, lag=0.0, stamp=math.nan)
    inputs.now = 10.3
    hold = fresh_states(inputs, settings, ROBOT)
    assert hold.severity is Severity.ERROR and str(hold) == "joint states stale (none for state_timeout = 0.25 s)"
    times.record(np.array([0, 1]), arrival=10.3, taken=10.0, lag=0.3, stamp=100.0)  # stamped 0.3 s before arrival
    hold = fresh_states(inputs, settings, ROBOT)
    assert hold.kind is HoldKind.STATES_STALE and hold.severity is Severity.ERROR
    assert "stamped more than state_timeout = 0.25 s ago, beyond stamp_tolerance = 0.05 s" in hold.detail


def test_the_e_stop_holds_with_a_warning():
    inputs = running_inputs()
    inputs.enabled = False
    assert enabled(inputs, Settings(), ROBOT) == Hold(HoldKind.DISABLED, Severity.WARN, "disabled by ~/enable")


def test_a_missing_goal_or_one_older_than_goal_timeout_holds_with_a_warning():
    inputs = running_inputs()
    inputs.goal_stamps[1] = -math.inf
    assert goals_present(inputs, Settings(), ROBOT) == Hold(HoldKind.GOAL_MISSING, Severity.WARN,
                                                            "no goal yet for 'right' on /goals/right")
    inputs.goal_stamps[:] = [9.0, 10.0]
    assert goals_present(inputs, Settings(goal_timeout=0.0), ROBOT) is None  # goals never expire
    assert goals_present(inputs, Settings(goal_timeout=0.5), ROBOT) == Hold(
        HoldKind.GOAL_EXPIRED, Severity.WARN, "goal for 'left' expired (goal_timeout 0.5 s)")


def test_the_first_hold_is_the_most_severe_a_state_fault_before_the_e_stop():
    inputs, supervisor = running_inputs(), Supervisor(ROBOT, Settings(), VELOCITY_LIMITS, LIMITS)
    inputs.enabled = False
    inputs.goal_stamps[0] = -math.inf
    assert supervisor.hold(inputs).kind is HoldKind.DISABLED
    inputs.state_fault = Hold(HoldKind.SEVERAL_PUBLISHERS, Severity.ERROR, "two publishers")
    inputs.state_fault_time = inputs.now
    assert supervisor.hold(inputs) is inputs.state_fault
    assert WAITING_FOR_PLAN.severity is Severity.WARN and NON_FINITE.severity is Severity.ERROR
    assert [s.log_level for s in Severity] == ["info", "warning", "error"]


def test_the_command_is_zeros_for_a_non_finite_output_else_clamped_and_guarded_at_the_limits():
    supervisor = Supervisor(ROBOT, Settings(limit_margin=0.1), VELOCITY_LIMITS, LIMITS)
    velocity, hold = supervisor.command(np.zeros(2), np.array([math.nan, 0.5]))
    assert hold is NON_FINITE and not velocity.any() and supervisor.counts["non_finite"] == 1
    velocity, hold = supervisor.command(np.zeros(2), np.array([3.0, -0.5]))
    assert hold is None and velocity.tolist() == [1.0, -0.5] and supervisor.counts["clamped"] == 1
    velocity, hold = supervisor.command(np.array([0.95, 0.0]), np.array([0.5, 0.5]))  # joint a within 0.1 of 1
    assert velocity.tolist() == [0.0, 0.5] and supervisor.counts["limit_guarded"] == 1
    assert supervisor.command(np.array([0.95, 0.0]), np.array([-0.5, 0.5]))[0].tolist() == [-0.5, 0.5]  # inwards


def test_the_collision_guard_sees_the_clamped_command_and_the_joints_at_a_limit_and_is_counted():
    seen = []

    def halve_joint_b_moves(q: np.ndarray, velocity: np.ndarray, fixed: np.ndarray) -> tuple[np.ndarray, bool]:
        seen.append((velocity.tolist(), fixed.tolist()))
        return (velocity / 2, True) if velocity[1] else (velocity, False)

    supervisor = Supervisor(ROBOT, Settings(limit_margin=0.1), VELOCITY_LIMITS, LIMITS,
                            collision_guard=halve_joint_b_moves)
    assert supervisor.command(np.zeros(2), np.array([3.0, 1.0]))[0].tolist() == [0.5, 0.5]
    assert supervisor.command(np.array([0.95, 0.0]), np.array([-0.5, 0.0]))[0].tolist() == [-0.5, 0.0]
    assert seen == [([1.0, 1.0], [False, False]), ([-0.5, 0.0], [True, False])]  # joint a within 0.1 of its limit
    assert supervisor.counts["collision_guarded"] == 1


def intake(**settings: float) -> JointStateIntake:
    return JointStateIntake(JOINTS, LIMITS, VELOCITY_LIMITS, Settings(**settings), "/joint_states")


def test_a_plausible_state_is_taken_by_joint_name():
    states = intake()
    admission = states.admit(["b", "other", "a"], [0.2, 5.0, 0.1], stamp=100.0, lag=0.01, source=1, now=10.0)
    assert admission.taken and admission.fault is None and admission.ignored is None
    assert states.q.tolist() == [0.1, 0.2] and states.times.taken.tolist() == [10.0, 10.0]  # lag within tolerance


def test_states_of_unequal_lengths_or_out_of_order_are_ignored_with_a_warning():
    states = intake()
    admission = states.admit(["a", "b"], [0.1], stamp=math.nan, lag=0.0, source=None, now=10.0)
    assert not admission.taken and admission.ignored[0] == "state_lengths" and admission.fault is None
    assert states.admit(JOINTS, [0.1, 0.2], stamp=100.0, lag=0.0, source=None, now=10.0).taken
    admission = states.admit(JOINTS, [0.3, 0.3], stamp=99.9, lag=0.0, source=None, now=10.01)
    assert not admission.taken and admission.ignored[0] == "out_of_order" and states.q.tolist() == [0.1, 0.2]
    assert states.counts == dict(rejected_states=1, out_of_order_states=1)


def test_non_finite_positions_are_ignored_and_the_finite_ones_taken():
    states = intake()
    admission = states.admit(JOINTS, [math.nan, 0.2], stamp=math.nan, lag=0.0, source=None, now=10.0)
    assert admission.taken and admission.ignored == ("state_non_finite", "non-finite position of joint(s) ['a'] "
                                                                         "ignored")
    assert states.q.tolist() == [0.0, 0.2] and math.isinf(states.times.taken[0])


@pytest.mark.parametrize("names, positions, lag, kind, text", [
    (["a", "b", "a"], [0.0, 0.0, 0.0], 0.0, HoldKind.DUPLICATED_NAMES, "joint name(s) ['a'] appear more than once"),
    (JOINTS, [0.0, 0.0], -0.2, HoldKind.STAMP_AHEAD, "stamped 0.200 s ahead of this node's clock"),
    (JOINTS, [1.5, 0.0], 0.0, HoldKind.OUTSIDE_LIMITS, "joint 'a' at 1.500 rad is outside its limits"),
])
def test_an_implausible_state_is_refused_as_a_state_fault(names, positions, lag, kind, text):
    states = intake()
    admission = states.admit(names, positions, stamp=100.0, lag=lag, source=None, now=10.0)
    assert not admission.taken and admission.fault.kind is kind and admission.fault.severity is Severity.ERROR
    assert text in admission.fault.detail and states.counts["rejected_states"] == 1


def test_a_second_publisher_or_a_jump_is_a_state_fault_but_the_state_is_taken():
    states = intake()
    assert states.admit(JOINTS, [0.0, 0.0], stamp=100.0, lag=0.0, source=1, now=10.0).taken
    admission = states.admit(JOINTS, [0.01, 0.0], stamp=100.01, lag=0.0, source=2, now=10.01)
    assert admission.taken and admission.fault.kind is HoldKind.SEVERAL_PUBLISHERS
    assert "/joint_states has more than one publisher of joint(s) ['a', 'b']" in admission.fault.detail
    admission = states.admit(JOINTS, [0.9, 0.0], stamp=100.03, lag=0.0, source=2, now=10.03)  # 0.89 rad in 20 ms
    assert admission.taken and admission.fault.kind is HoldKind.POSITION_JUMP and states.q[0] == 0.9
    assert "joint 'a' jumped 0.890 rad in 0.020 s" in admission.fault.detail
    slow = states.admit(JOINTS, [0.95, 0.0], stamp=100.08, lag=0.0, source=2, now=10.08)
    assert slow.taken and slow.fault is None


def test_the_supervisor_and_the_state_checks_import_without_ros():
    code = ("import sys; import mtpolicy.supervisor, mtpolicy.state_intake; "
            "print(sorted(m for m in ('rclpy', 'builtin_interfaces', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
