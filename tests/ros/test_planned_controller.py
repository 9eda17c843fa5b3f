"""A planner-conditioned policy in the controller node over real DDS: the node plans q*, the robot folds to it,
and planning never holds up the command stream (issue 49)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import onnx
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from onnx import TensorProto, helper, numpy_helper

from helpers import publish_until, scaled
from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import sample_configurations
from mtpolicy.planner import PlannerConfig
from mtpolicy.policy import PolicyContract
from mtpolicy.robots import RobotSpec

pytestmark = pytest.mark.timeout(120)


def planned_servo_policy(path, spec: RobotSpec, gain: float = 4.0):  # noqa: ANN001, ANN201
    """A valid planned policy .onnx: v = clip(gain * (q* - q)) on the goal_config_error segment; its ik planner
    tries fallback candidates, so that the reachable goal sets the tests send are reached whatever the start."""
    contract = PolicyContract.for_robot(spec, control_period=0.05, method="fixture-planned", training_config={},
                                        reach_tolerance=0.02, goal_distribution="workspace",
                                        planner=PlannerConfig(fallback_restarts=96).to_dict())
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


@pytest.mark.parametrize("delay", [0.0, 4.0], ids=["starting", "serving"])
def test_ctrl_c_to_the_process_group_stops_the_controller_and_its_planner_without_a_traceback(start_node, planar8,
                                                                                             tmp_path, delay):
    """Issue 62: SIGINT to the process group (a terminal's Ctrl-C) reached the planning process too, which printed a
    KeyboardInterrupt traceback, in its start-up (0 s) and while it waited for a goal set (4 s), 3 of 3 times."""
    ctrl = start_node("mtpolicy_controller", model=planned_servo_policy(tmp_path / "planned.onnx", planar8))
    assert ctrl.wait_for_output("policy planned.onnx", scaled(30.0)), ctrl.output()
    time.sleep(delay)
    seen = len(ctrl.lines)
    os.killpg(ctrl.pid, signal.SIGINT)  # the node runs in a session of its own: its group is its pid
    assert ctrl.wait(scaled(20.0)) == 0, ctrl.output()
    after = ctrl.lines[seen:]
    assert [line for line in after if "stopping: published" not in line and "publishing zeros" not in line] == [], \
        "\n".join(after)


RATE = 250.0


def goal_sets(spec: RobotSpec, count: int, seed: int) -> list[np.ndarray]:
    """``count`` reachable goal sets anywhere in the workspace."""
    kin = Kinematics(spec)
    return [kin.ee_positions(q) for q in sample_configurations(spec, np.random.default_rng(seed), count)]


class ControllerDiagnostics:
    """The controller's /diagnostics values, as they arrive."""

    def __init__(self, monitor):  # noqa: ANN001
        self.monitor, self.values = monitor, []
        monitor.create_subscription(DiagnosticArray, "/diagnostics", lambda m: self.values.extend(
            {kv.key: kv.value for kv in s.values} for s in m.status), 10)

    def next(self, condition=lambda v: True, timeout: float = 10.0) -> dict[str, str]:  # noqa: ANN001
        """The first message from now on whose values satisfy ``condition``."""
        seen = len(self.values)
        assert self.monitor.wait_until(lambda: any(condition(v) for v in self.values[seen:]), scaled(timeout))
        return next(v for v in self.values[seen:] if condition(v))


def start_planned_stack(start_node, monitor, spec, tmp_path, first: np.ndarray, **params):  # noqa: ANN001, ANN201
    """Sim + controller at RATE with the planned fixture policy, moving towards goal set ``first``."""
    start_node("mtpolicy_sim", robot="planar8")
    ctrl = start_node("mtpolicy_controller", model=planned_servo_policy(tmp_path / "planned.onnx", spec),
                      rate_hz=RATE, **params)
    diagnostics = ControllerDiagnostics(monitor)
    assert publish_until(monitor, first, lambda: monitor.command is not None and bool(np.any(monitor.command)),
                         timeout=scaled(30.0)), ctrl.output()
    return ctrl, diagnostics


def count(values: dict[str, str], key: str) -> int:
    """Counter ``key`` (``key``_total) of a diagnostics message."""
    return int(values[key + "_total"])


def grown(since: dict[str, str], values: dict[str, str], *keys: str) -> int:
    """How much the counters ``keys`` grew together from diagnostics ``since`` to ``values``."""
    return sum(count(values, key) - count(since, key) for key in keys)


def receive_gaps(monitor, since: float) -> np.ndarray:  # noqa: ANN001
    times = np.array([t for t, _ in monitor.commands if t >= since])
    return np.diff(times)


def assert_command_stream_unbroken(before: dict[str, str], after: dict[str, str], gaps: np.ndarray) -> None:
    """Hardly an interval between two of the controller's commands above 2 periods while its control thread
    computed for more than 2 periods (``late_commands_busy``, at most 0.5 % of the ticks): nothing in the node
    held the stream up.

    Counted in the controller from its own tick times and its control thread's CPU time, not from the stream
    this process receives: on this loaded 2-core machine any process, this one included, waits for a core for
    tens of ms now and then (the soak counted 5.7-7.1 % received gaps above 2 periods at a load average of 5-7
    with no planner), so the gaps themselves (``late_commands``, the received ones: in the message) measure the
    load; a tick that waited while its own thread computed measures the node. With planning in the tick, every
    plan (20-190 ms of CPU) made such a gap: 80 gaps in 82 commands in 10 s. What remains, 0 or 1 in a run, is
    a burst of goal callbacks (the flood: 1500 goals/s) beside a /diagnostics message. Late ticks of any cause
    are bounded at 25 %, against a stalled stream.
    """
    ticks, late, busy = (count(after, key) - count(before, key) for key in ("ticks", "late_commands",
                                                                           "late_commands_busy"))
    message = (f"{late} of {ticks} commands more than 2 periods after the previous one, {busy} of them after the "
               f"control thread computed for 2 periods (longest interval {after['command_gap_max_ms']} ms in the last "
               f"second); received gaps > 2 periods: {int(np.sum(gaps > 2 / RATE))}, "
               f"longest {gaps.max(initial=0) * 1e3:.1f} ms")
    assert busy <= 0.005 * ticks and late <= 0.25 * ticks, message


def publish_one_by_one(monitor, sets: list[np.ndarray], period: float, spacing: float = 0.01) -> None:  # noqa: ANN001
    """Publish a goal set every ``period`` s, its end effectors' goals ``spacing`` s apart."""
    start = time.monotonic()
    for k, goals in enumerate(sets):
        for i, goal in enumerate(goals):
            monitor.publish_goals([goal if j == i else None for j in range(len(goals))])
            monitor.spin_for(spacing)
        monitor.spin_for(start + period * (k + 1) - time.monotonic())


@pytest.mark.timeout(180)
def test_goal_sets_arriving_while_moving_are_planned_once_each_and_never_stop_the_commands(start_node, monitor,
                                                                                          planar8, tmp_path):
    """Issue: planning ran in the control tick (gaps of 38-126 ms at 250 Hz) and once per end-effector goal.

    First 10 goal sets, each once the previous one's plan is done (counted in /diagnostics): exactly one plan
    each (a set split by a stall, below, is two sets). Then 200 goal sets, one every
    50 ms: each planned once or, when a newer set arrived before its planning began, superseded (the latest wins);
    never once per goal message. The end effectors' goals come 10 ms apart; goal_set_window is 0.15 s here, as
    this process, which publishes them, stalls for up to ~65 ms under load, and a stalled controller may take a
    late goal for the start of a new set (seen once in six runs at a load average of 5-8: 201 sets).
    """
    sets = goal_sets(planar8, 211, seed=9)
    ctrl, diagnostics = start_planned_stack(start_node, monitor, planar8, tmp_path, sets.pop(), goal_set_window=0.15)
    before = after = diagnostics.next()
    for k, goals in enumerate(sets[:10]):
        publish_one_by_one(monitor, [goals], 0.0)
        after = diagnostics.next(lambda v: grown(before, v, "plans") >= k + 1
                                 and grown(before, v, "plans", "plans_superseded") == grown(before, v, "goal_sets"),
                                 timeout=10.0)
    closed = grown(before, after, "goal_sets")
    assert 10 <= closed <= 11 and grown(before, after, "plans") == closed, (before, after)  # 11: a set split

    before, start = after, time.monotonic()
    publish_one_by_one(monitor, sets[10:], 0.05)
    gaps = receive_gaps(monitor, start)
    after = diagnostics.next(lambda v: grown(before, v, "plans", "plans_superseded")  # every closed set's plan done
                             >= max(grown(before, v, "goal_sets"), 200), timeout=20.0)
    closed = grown(before, after, "goal_sets")
    assert 200 <= closed <= 204, (before, after)  # a set split by a stall longer than the window counts twice
    assert grown(before, after, "plans", "plans_superseded") == closed, (before, after)
    assert_command_stream_unbroken(before, after, gaps)
    assert publish_until(monitor, sets[-1], lambda: bool(np.all(monitor.errors(sets[-1]) < 0.02)), 20.0), \
        monitor.errors(sets[-1])


@pytest.mark.timeout(180)
def test_a_flood_of_goals_from_three_publishers_plans_the_latest_and_never_stops_the_commands(start_node, monitor,
                                                                                             planar8, tmp_path):
    """Three goal publishers, one per end effector, each sending a new goal every 2 ms for 2 s: one plan in flight
    at a time (sets closed meanwhile are superseded), the stream unbroken, and the robot ends at the last goal set.

    The flood does not spin this process: spinning, it also took in its own 1,500 goals/s (2.3 ms of CPU a goal
    set, against 0.5 ms publishing and sleeping), and on a loaded machine the sets then came every 46 ms, no faster
    than plans (25 plans of 46 sets). The commands it receives meanwhile wait in their queue."""
    sets = goal_sets(planar8, 1001, seed=10)
    ctrl, diagnostics = start_planned_stack(start_node, monitor, planar8, tmp_path, sets.pop())
    before = diagnostics.next()
    start, k = time.monotonic(), 0
    while time.monotonic() < start + 2.0 and k < len(sets):
        monitor.publish_goals(sets[k])  # on the monitor's three goal publishers
        time.sleep(0.002)
        k += 1
    last = sets[k - 1]
    after = diagnostics.next(lambda v: grown(before, v, "plans", "plans_superseded") == grown(before, v, "goal_sets"),
                             timeout=20.0)
    plans, closed = grown(before, after, "plans"), grown(before, after, "goal_sets")
    # the latest wins: sets closed while a plan was in flight are superseded, not queued. How many a plan covers
    # depends on the load (sets published every 2 ms, plans of >= 20 ms): 4 or more on a quiet machine, 2.9 seen
    # (17 plans of 49 sets) beside two busy processes, where the controller closes sets only every ~40 ms
    assert 0 < plans < closed, (plans, closed, k)
    assert_command_stream_unbroken(before, after, receive_gaps(monitor, start))
    assert publish_until(monitor, last, lambda: bool(np.all(monitor.errors(last) < 0.02)), 20.0), \
        (monitor.errors(last), diagnostics.values[-1:], ctrl.output()[-3000:])
