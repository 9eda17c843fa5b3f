"""What the fault-injection tests share (tests/ros/test_faults*.py): the stack they start, the goal sets they
send, the controller's diagnostics and log as they read them, and a test-driven publisher of joint states."""

from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.duration import Duration
from sensor_msgs.msg import JointState

from helpers import goals_near_home, scaled
from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import sample_goal_sets
from mtpolicy.nodes.interfaces import DIAGNOSTICS_QOS, STATE_PUB_QOS

MODEL = "planar8_digrad"


def start_stack(start_node, **controller):  # noqa: ANN001, ANN201
    sim = start_node("mtpolicy_sim", robot="planar8")
    return sim, start_node("mtpolicy_controller", model=MODEL, **controller)


def goal_set(spec, seed: int = 0) -> np.ndarray:  # noqa: ANN001
    """A reachable goal set (the goal tool's distribution): the shipped policy reaches it in about a second."""
    return sample_goal_sets(Kinematics(spec), np.random.default_rng(seed), 1)[0]


def diagnostics(monitor) -> list[DiagnosticStatus]:  # noqa: ANN001
    """The controller's diagnostic statuses from now on, filled while the monitor spins."""
    statuses: list[DiagnosticStatus] = []
    monitor.create_subscription(DiagnosticArray, "/diagnostics", lambda m: statuses.extend(m.status),
                                DIAGNOSTICS_QOS)
    return statuses


def seen(statuses: list[DiagnosticStatus], level: bytes, text: str) -> bool:
    return any(s.level == level and text in s.message for s in statuses)


def hold_goals(monitor, goals, seconds: float) -> None:  # noqa: ANN001
    """Publish ``goals`` every 0.1 s for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        monitor.publish_goals(goals)
        monitor.spin_for(0.1)


class StatePublisher:
    """A second publisher of /joint_states, beside the sim's (or instead of it)."""

    def __init__(self, monitor):  # noqa: ANN001
        """Returns once the controller's subscription has matched it (the monitor's and the controller's:
        two), so its first message is not lost to discovery while the sim's states still arrive."""
        self.monitor = monitor
        self.pub = monitor.create_publisher(JointState, "/joint_states", STATE_PUB_QOS)
        assert monitor.wait_until(lambda: self.pub.get_subscription_count() >= 2, scaled(10.0)), \
            f"the controller did not subscribe to the test's /joint_states ({self.pub.get_subscription_count()})"

    def publish(self, states, seconds: float, period: float = 0.01) -> list[np.ndarray]:  # noqa: ANN001
        """Publish ``states()`` (a JointState) every ``period`` s for ``seconds``; the commands received
        meanwhile."""
        first = len(self.monitor.commands)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pub.publish(states())
            self.monitor.spin_for(period)
        return [c for _, c in self.monitor.commands[first:]]

    def publish_until(self, states, condition, timeout: float, period: float = 0.02) -> bool:  # noqa: ANN001
        """Publish ``states()`` every ``period`` s until ``condition()`` holds (True) or ``timeout`` s pass."""
        return self.monitor.wait_until(lambda: (self.publish(states, 0.1, period), condition())[1], timeout)


def held_from_first_zero(commands: list[np.ndarray], at_least: int = 1) -> bool:
    """The fault's hold began while the faulty states came (an all-zero command) and did not lapse: every command
    from the first all-zero one on is zero, ``at_least`` of them (commands already on their way when the fault
    began may come first, however many a loaded machine queues)."""
    zero = [not np.any(c) for c in commands]
    return True in zero and all(zero[zero.index(True):]) and len(zero) - zero.index(True) >= at_least


def one_line_refusal(proc, *texts: str) -> str:  # noqa: ANN001
    """The process exits 1 within 30 s, saying ``texts`` without a traceback; its output."""
    assert proc.wait(30) == 1, proc.output()
    out = proc.output()
    assert all(t in out for t in texts) and "Traceback" not in out, out
    return out


def states_of(spec, q) -> JointState:  # noqa: ANN001
    return JointState(name=list(spec.joint_names), position=[float(v) for v in q])


GOALS_NEAR_HOME = [0.2, -0.2, 0.2, -0.2, 0.2, -0.2, 0.2, -0.2]
"""A goal set of the fixture policy (its end effectors at home + these angles)."""


def stamped_states(monitor, spec, q, age: float = 0.0) -> JointState:  # noqa: ANN001
    """Joint states at ``q``, stamped ``age`` s before now by the monitor's clock."""
    msg = states_of(spec, q)
    msg.header.stamp = (monitor.get_clock().now() - Duration(seconds=age)).to_msg()
    return msg


def value(status: DiagnosticStatus, key: str) -> str:
    return next(kv.value for kv in status.values if kv.key == key)


def start_driven_controller(start_node, monitor, spec, **params):  # noqa: ANN001, ANN201
    """The controller with the fixture policy, no sim: this test's StatePublisher drives it; (process, publisher,
    goals) once it publishes policy commands for states at home stamped now. The states do not follow the commands,
    so the controller observes them as measured (``predict_state`` false): a command tells which state it used."""
    ctrl = start_node("mtpolicy_controller", model=params.pop("model"), **{"predict_state": False, **params})
    driver, goals = StatePublisher(monitor), goals_near_home(spec, GOALS_NEAR_HOME)
    home = np.zeros(spec.n_joints)

    def running() -> bool:
        monitor.publish_goals(goals)
        return monitor.command is not None and bool(np.any(monitor.command))
    assert driver.publish_until(lambda: stamped_states(monitor, spec, home), running, scaled(20.0)), ctrl.output()
    return ctrl, driver, goals
