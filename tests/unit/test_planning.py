"""Goal sets and the planning worker of the controller node (mtpolicy.nodes.planning), without ROS."""

import os
import threading
import time

import numpy as np
import pytest

from helpers import UNREACHABLE_GOAL_SETS
from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import sample_configurations
from mtpolicy.nodes.planning import PLANNER_NICENESS, GoalSets, PlannedGoals, PlanWorker
from mtpolicy.planner import PlannerConfig
from mtpolicy.robots import load_robot


def test_goals_within_the_window_form_one_set_closed_when_every_end_effector_has_one():
    sets = GoalSets(3, window=0.02)
    sets.add(0, np.ones(3), 1.000)
    sets.add(1, 2 * np.ones(3), 1.010)
    assert sets.closed == 0
    sets.add(2, 3 * np.ones(3), 1.025)  # 15 ms after the previous one: same set, now complete
    assert sets.closed == 1 and np.array_equal(sets.latest, [[1] * 3, [2] * 3, [3] * 3])


def test_a_partial_set_closes_after_the_window_keeping_the_other_goals():
    sets = GoalSets(3, window=0.02)
    for i in range(3):
        sets.add(i, np.full(3, i), 1.0)
    sets.add(1, np.full(3, 9.0), 2.0)
    sets.poll(2.01)
    assert sets.closed == 1
    sets.poll(2.03)
    assert sets.closed == 2 and np.array_equal(sets.latest[:, 0], [0, 9, 2])


def test_a_second_goal_for_the_same_end_effector_starts_a_new_set():
    sets = GoalSets(2, window=1.0)
    sets.add(0, np.zeros(3), 1.0)
    sets.add(0, np.ones(3), 1.001)
    assert sets.closed == 1 and np.isnan(sets.latest[1]).all()


@pytest.fixture
def worker(planar8):
    errors: list[str] = []
    w = PlanWorker(planar8, PlannerConfig(), errors.append)
    yield w, errors
    w.stop()


def wait_for(condition, timeout: float = 60.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_worker_plans_the_latest_goal_set_and_pairs_each_plan_with_its_goals(worker, planar8):
    w, errors = worker
    kin = Kinematics(planar8)
    targets = sample_configurations(planar8, np.random.default_rng(3), 4)
    goal_sets = [kin.ee_positions(q) for q in targets]
    for goals in goal_sets:  # submitted at once: the first is planned (or superseded), the last is planned
        w.submit(np.zeros(planar8.n_joints), goals)
    assert wait_for(lambda: w.latest is not None and np.array_equal(w.latest.goals, goal_sets[-1])), errors
    assert w.stats.count + w.superseded == len(goal_sets) and w.superseded >= 2
    plan = w.latest
    assert plan.worst < 1e-3 and np.allclose(kin.ee_positions(plan.config), plan.goals, atol=1e-3)
    assert not errors


def test_planned_goals_plan_a_goal_set_once_states_are_fresh_and_once_only(planar8):
    errors: list[str] = []
    planned = PlannedGoals(planar8, PlannerConfig(), window=0.02, on_error=errors.append)
    try:
        goals = Kinematics(planar8).ee_positions(sample_configurations(planar8, np.random.default_rng(5), 1)[0])
        for i, goal in enumerate(goals):
            planned.sets.add(i, goal, 1.0)
        q = np.zeros(planar8.n_joints)
        assert planned.update(q, fresh=False, now=1.1) is None and planned.worker.stats.count == 0
        assert wait_for(lambda: planned.update(q, fresh=True, now=1.2) is not None), errors
        assert np.array_equal(planned.plan.goals, goals)
        for i, goal in enumerate(goals):  # the same goal set again (a goal tool republishing it)
            planned.sets.add(i, goal, 2.0)
        assert planned.update(q, fresh=True, now=2.1) is None
        assert planned.sets.closed == 2 and planned.worker.stats.count == 1
        assert planned.diagnostics()["plans_total"] == "1" and not errors
    finally:
        planned.worker.stop()


def test_planned_goals_hand_over_the_finish_once_the_end_effectors_enter_the_tolerance(planar8):
    """Issue 65: with finish_at_goal, the time-optimal target (inside the tolerance) gives way to its finish (at
    the goals) at the first fresh tick whose joint angles put every end effector within the tolerance, once."""
    errors: list[str] = []
    config = PlannerConfig(algorithm="time_optimal", reach_tolerance=0.02, control_period=0.05, finish_at_goal=True)
    planned = PlannedGoals(planar8, config, window=0.02, on_error=errors.append)
    kin = Kinematics(planar8)
    try:
        q0, target = sample_configurations(planar8, np.random.default_rng(5), 2)
        goals = kin.ee_positions(target)
        for i, goal in enumerate(goals):
            planned.sets.add(i, goal, 1.0)
        assert wait_for(lambda: planned.update(q0, fresh=True, now=1.1) is not None), errors
        # its finish follows, taken in silently: the tick follows the same target meanwhile
        assert wait_for(lambda: planned.update(q0, fresh=True, now=1.15) is None
                        and planned.plan.finish_worst < 1e-3), errors
        plan = planned.plan
        assert 5e-3 < plan.worst <= 0.02 and plan.finish_worst < 1e-3  # the program's target, then the goals
        assert np.linalg.norm(kin.ee_positions(plan.finish) - goals, axis=1).max() == pytest.approx(plan.finish_worst)
        assert planned.update(q0, fresh=True, now=1.2) is None  # far from the goals: the target stays
        assert planned.update(plan.config, fresh=False, now=1.3) is None  # stale angles decide nothing
        finished = planned.update(plan.config, fresh=True, now=1.4)  # at the target: within the tolerance
        assert np.array_equal(finished.config, plan.finish) and finished.worst == plan.finish_worst
        assert planned.plan is finished and np.array_equal(finished.goals, goals)
        assert planned.update(plan.finish, fresh=True, now=1.5) is None and not errors
    finally:
        planned.worker.stop()


def test_the_plan_is_followed_before_its_finish_arrives(planar8):
    """The finish may search longer than the plan (``finish_restarts``): the worker makes the plan ``latest`` as soon
    as it arrives, its own finish until the second answer brings the finish."""
    errors: list[str] = []
    config = PlannerConfig(algorithm="time_optimal", reach_tolerance=0.02, control_period=0.05, finish_at_goal=True)
    w = PlanWorker(planar8, config, errors.append)
    real, release, answers = w._conn, threading.Event(), []

    class HeldFinish:
        def send(self, request: object) -> None:
            real.send(request)

        def recv(self) -> object:
            if answers:  # the second answer, the finish, waits for the test
                release.wait(60.0)
            answers.append(real.recv())
            return answers[-1]

    w._conn = HeldFinish()
    try:
        q0, target = sample_configurations(planar8, np.random.default_rng(5), 2)
        w.submit(q0, Kinematics(planar8).ee_positions(target))
        assert wait_for(lambda: w.latest is not None), errors
        plan = w.latest
        assert np.array_equal(plan.finish, plan.config) and 5e-3 < plan.worst <= 0.02
        release.set()
        assert wait_for(lambda: w.latest is not plan), errors
        assert np.array_equal(w.latest.config, plan.config) and w.latest.finish_worst < 1e-3 and not errors
    finally:
        release.set()
        w.stop()


def test_a_rejected_goal_set_is_returned_once_and_leaves_the_plan_followed():
    """Issue 62: the planner rejects a goal set it has no configuration free of self-collision for (here GR1's
    hands crossed, with the start as its only candidate); the controller warns and keeps following its plan."""
    spec = load_robot("gr1")
    kin = Kinematics(spec)
    errors: list[str] = []
    planned = PlannedGoals(spec, PlannerConfig(restarts=0, avoid_collisions=True), window=0.02,
                           on_error=errors.append)
    try:
        for t, goals in ((1.0, kin.ee_positions(kin.home)), (2.0, UNREACHABLE_GOAL_SETS["gr1"][1])):
            for i, goal in enumerate(goals):
                planned.sets.add(i, goal, t)
            plans = [None]
            assert wait_for(lambda: plans.append(planned.update(kin.home, True, t + 0.1)) or plans[-1]), errors
            assert np.array_equal(plans[-1].goals, goals) and plans[-1].rejected == (t == 2.0)
        assert np.array_equal(planned.plan.goals, kin.ee_positions(kin.home)) and not planned.plan.rejected
        assert planned.update(kin.home, fresh=True, now=2.2) is None and not errors
    finally:
        planned.worker.stop()


def test_the_planning_process_leaves_the_scheduling_policy_of_its_node_for_the_default_one(planar8):
    """Under SCHED_FIFO the node's policy would pass to its planner, where nice does not lower it; SCHED_BATCH
    (which needs no privilege) stands in for it here. Niceness stops at 19 (a test run under nice 10)."""
    own_policy, own_param, own_nice = os.sched_getscheduler(0), os.sched_getparam(0), os.nice(0)
    os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    try:
        w = PlanWorker(planar8, PlannerConfig(), lambda message: None)
    finally:
        os.sched_setscheduler(0, own_policy, own_param)
    try:
        assert wait_for(lambda: os.sched_getscheduler(w.pid) == os.SCHED_OTHER
                        and os.getpriority(os.PRIO_PROCESS, w.pid) >= min(own_nice + PLANNER_NICENESS, 19))
    finally:
        w.stop()


def test_an_answer_the_node_cannot_read_is_reported_and_the_worker_plans_on(worker, planar8):
    """The planning thread must outlive whatever its process sends: a malformed answer is reported (one line) and the
    next goal set is planned (an unreadable answer ended the thread before: no plan ever again)."""
    w, errors = worker
    real = w._conn

    class Garbled:
        def send(self, request: object) -> None:
            real.send(request)

        def recv(self) -> object:
            real.recv()
            return ("not", "a plan")

    w._conn = Garbled()
    goals = Kinematics(planar8).ee_positions(np.full(planar8.n_joints, 0.2))
    w.submit(np.zeros(planar8.n_joints), goals)
    assert wait_for(lambda: bool(errors)), errors
    assert errors[0] == "planning failed: an answer the node cannot read (3 items expected, got ('not', 'a plan'))"
    w._conn = real
    w.submit(np.zeros(planar8.n_joints), goals)
    assert wait_for(lambda: w.latest is not None and np.array_equal(w.latest.goals, goals)), errors
