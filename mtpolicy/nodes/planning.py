"""Goal sets and goal-configuration planning off the control thread, for the controller node.

A planner-conditioned policy observes ``q* - q``, where q* is the goal
configuration ``mtpolicy.planner`` finds for the whole goal set (20-190 ms on
planar8). Planning in the control tick would stop the command stream for
that long, and planning on every goal message would plan a goal set once per
end effector. So:

* ``GoalSets`` gathers the goals of the end effectors into goal sets: goals
  that arrive within ``window`` s of the previous one belong to one set; a
  set closes when every end effector has a goal in it or ``window`` s pass
  without another goal (a second goal for the same end effector starts a new
  set). A closed set holds every end effector's newest goal.
* ``PlannedGoals`` submits the newest closed goal set for planning (from the
  joint angles of the control tick that submits it, once they are fresh, and
  only if it differs from the set submitted last) and hands the control tick
  each newer finished plan, and the plan's finish once the planner says so
  (``PlannerConfig.finishes``: with ``finish_at_goal``, the end effectors at
  the tick's fresh joint angles all within the tolerance, or the joints
  arrived at the plan), as the reach env
  does in training and evaluation. A plan whose goal set the planner rejected
  (``Plan.rejected``: nothing to drive to) is handed over for the tick to
  report, and never followed.
* ``PlanWorker`` plans one goal set at a time: a set submitted while another
  is being planned waits, and a newer one replaces it (the latest wins; the
  replaced one is counted as superseded). Its thread hands each set to a
  planning process and waits for its two answers, the plan (``latest`` at
  once) and then its finish (``latest`` again with it: the finish may search
  longer than the plan, and the robot follows the plan meanwhile). The
  planner runs in a process because it is Python-heavy
  numpy, and in a thread of the node it would hold the GIL the control
  thread needs, up to the interpreter's switch interval (5 ms) at every
  hand-over (in one 2 s goal flood at 250 Hz, 9 % of the commands came
  more than 2 periods late with the planning thread, under 5 % with a
  sleeping stand-in for it: one run each on a loaded machine, a hint
  rather than a measurement). Each finished
  ``Plan`` carries the goal set it was made for and replaces
  ``PlanWorker.latest`` in one assignment, so the control thread reads a
  plan and its goal set together, never one without the other.

The planning process is started (``spawn``: the node's DDS threads are not
forked) with the node and ends with it, or when the node's end of its pipe
closes; one that dies is started again. It starts with SIGINT and SIGHUP
blocked (``TERMINAL_SIGNALS``): a Ctrl-C or hang-up sent to the node's
process group would otherwise end it with a ``KeyboardInterrupt`` traceback
(in its start-up or while it waits for a goal set); the node, which gets them
too, stops it.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from typing import Callable

import numpy as np

from mtpolicy.kinematics import Kinematics
from mtpolicy.nodes.reporting import LatencyStats
from mtpolicy.planner import GoalConfigurationPlanner, PlannerConfig
from mtpolicy.robots import RobotSpec

PLANNER_NICENESS = 10
"""Nice value of the planning process under the default scheduler: on a busy computer the control loop gets the
cores first."""
TERMINAL_SIGNALS = {signal.SIGINT, signal.SIGHUP}
"""What a terminal sends a whole process group: blocked in the planning process, which its node stops."""


class GoalSets:
    """Gathers per-end-effector goals into goal sets (see the module docstring)."""

    def __init__(self, n_end_effectors: int, window: float):
        self.window = window
        self.goals = np.full((n_end_effectors, 3), np.nan)
        """The newest goal of each end effector."""
        self.latest: np.ndarray | None = None
        """The newest closed goal set (a copy of ``goals`` when it closed)."""
        self.closed = 0
        """Goal sets closed so far."""
        self._open = np.zeros(n_end_effectors, dtype=bool)
        self._last = -math.inf

    def add(self, i: int, goal: np.ndarray, now: float) -> None:
        """A goal for end effector ``i`` arrived at (monotonic) time ``now``."""
        self.poll(now)
        if self._open[i]:
            self._close()
        self.goals[i] = goal
        self._open[i] = True
        self._last = now
        if self._open.all():
            self._close()

    def poll(self, now: float) -> None:
        """Close the open set if ``window`` s passed since its last goal."""
        if self._open.any() and now - self._last > self.window:
            self._close()

    def _close(self) -> None:
        self.latest = self.goals.copy()
        self.closed += 1
        self._open[:] = False


@dataclass(frozen=True)
class Plan:
    """A goal configuration and the goal set it was planned for."""

    goals: np.ndarray
    config: np.ndarray
    worst: float
    """Largest end-effector error (m) at ``config``; infinite where the planner rejected the goal set."""
    finish: np.ndarray
    """What ``config`` becomes once the end effectors enter the tolerance (``GoalConfigurationPlanner.finish``)."""
    finish_worst: float
    """Largest end-effector error (m) at ``finish``."""

    def finished(self) -> "Plan":
        """This plan with its finish as its goal configuration."""
        return Plan(self.goals, self.finish, self.finish_worst, self.finish, self.finish_worst)

    @property
    def rejected(self) -> bool:
        """The planner rejected the goal set (``PlannerConfig.rejection``): nothing to drive to."""
        return not math.isfinite(self.worst)


class PlanWorker:
    """Plans goal sets in a planning process, the latest submitted first (see the module docstring)."""

    def __init__(self, spec: RobotSpec, config: PlannerConfig, on_error: Callable[[str], object]):
        self.spec, self.config = spec, config
        self.latest: Plan | None = None
        """The newest finished plan (replaced whole, never modified)."""
        self.stats = LatencyStats()
        """Planning times (s) in the planning process."""
        self.superseded = 0
        """Submitted goal sets replaced by a newer one before their planning began."""
        self._on_error = on_error
        self._request: tuple[np.ndarray, np.ndarray] | None = None
        self._stopping = False
        self._wake = threading.Condition()
        self._process, self._conn = self._start_process()
        self._thread = threading.Thread(target=self._run, name="planner", daemon=True)
        self._thread.start()

    def _start_process(self) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        context = multiprocessing.get_context("spawn")
        conn, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, self.spec, self.config), name="planner", daemon=True)
        resource_tracker.ensure_running()  # (it starts with start() otherwise, and unblocks SIGINT when it has)
        held = signal.pthread_sigmask(signal.SIG_BLOCK, TERMINAL_SIGNALS)  # the mask survives fork and exec
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        child.close()
        return process, conn

    @property
    def pid(self) -> int | None:
        """Process id of the planning process."""
        return self._process.pid

    def submit(self, q: np.ndarray, goals: np.ndarray) -> None:
        """Plan goal set ``goals`` from joint angles ``q`` (both copied) once the worker is free."""
        with self._wake:
            self.superseded += self._request is not None
            self._request = (q.copy(), goals.copy())
            self._wake.notify()

    def percentiles_ms(self, *q: float) -> list[float]:
        with self._wake:  # the worker appends under the same lock
            return self.stats.percentiles_ms(*q)

    def stop(self) -> None:
        """End the planning process and the thread (a daemon: it never holds the node's process up)."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._process.terminate()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._request is None and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                assert self._request is not None  # woken for a request
                (q, goals), self._request = self._request, None
            try:
                self._conn.send((q, goals))
                plan = self._take_plan(goals, self._conn.recv())
                answer = self._conn.recv()  # every goal set is answered twice: its plan, then its finish
            except (EOFError, OSError) as e:
                if self._stopping:
                    return
                self._on_error(f"the planning process ended ({type(e).__name__}; exit code "
                               f"{self._process.exitcode}): starting it again")
                self._process, self._conn = self._start_process()
                continue
            if plan is not None and (finish := self._read(answer, 2)) is not None and not np.array_equal(
                    finish[0], plan.config):
                self.latest = Plan(plan.goals, plan.config, plan.worst, *finish)

    def _take_plan(self, goals: np.ndarray, answer: object) -> Plan | None:
        """The plan of ``goals`` in ``answer`` (q*, largest error, planning time), made ``latest`` with itself as its
        finish until the finish arrives; None for an error."""
        plan = self._read(answer, 3)
        if plan is None:
            return None
        config, worst, seconds = plan
        with self._wake:
            self.stats.add(seconds)
        self.latest = Plan(goals, config, worst, config, worst)
        return self.latest

    def _read(self, answer: object, size: int) -> tuple | None:
        """``answer`` as a tuple of ``size`` items, or None with the error reported (the thread lives on: the next
        goal set is planned)."""
        if isinstance(answer, str):
            self._on_error(answer)
            return None
        if not isinstance(answer, tuple) or len(answer) != size:
            self._on_error(f"planning failed: an answer the node cannot read ({size} items expected, got "
                           f"{answer!r:.80})")
            return None
        return answer


def _yield_to_the_control_loop() -> None:
    """Put this process under the default scheduler (SCHED_OTHER) at nice ``PLANNER_NICENESS``.

    A controller run under SCHED_FIFO hands its policy to the processes it starts, and nice does not lower a
    real-time policy: the planner would then take a core from the control loop for a whole plan."""
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        os.nice(PLANNER_NICENESS)
    except OSError:  # a lower priority is always allowed; a platform without these calls keeps its own
        pass


def _serve(conn: Connection, spec: RobotSpec, config: PlannerConfig) -> None:
    """The planning process: (q, goals) in; out, two answers, each a tuple or an error message: (q*, largest error,
    planning time) as soon as it is planned, then (finish, its largest error) (``GoalConfigurationPlanner.finish``,
    which may search further: the plan is followed meanwhile)."""
    _yield_to_the_control_loop()
    planner = GoalConfigurationPlanner(Kinematics(spec), config)
    while True:
        try:
            q, goals = conn.recv()
        except (EOFError, OSError):  # the node is gone
            return
        start = time.perf_counter()
        for answer in (lambda: (*planner.plan(q, goals), time.perf_counter() - start),
                       lambda: planner.finish(q, goals)):  # the plan is cached: the finish refines it
            try:
                reply: tuple | str = answer()
            except Exception as e:  # noqa: BLE001 - report it and keep serving the next goal sets
                reply = f"planning failed: {type(e).__name__}: {e}"
            try:
                conn.send(reply)
            except OSError:  # the node is gone
                return


class PlannedGoals:
    """Goal sets gathered, planned and followed: what a planner-conditioned policy observes."""

    def __init__(self, spec: RobotSpec, config: PlannerConfig, window: float, on_error: Callable[[str], object]):
        self.sets = GoalSets(spec.n_tasks, window)
        self.worker = PlanWorker(spec, config, on_error)
        self.plan: Plan | None = None
        """The plan followed (the policy observes its goal set), or its finish; None before the first; never a
        rejected one."""
        self._kin = Kinematics(spec) if config.finish_at_goal else None  # the end effectors, for ``finishes``
        self._received: Plan | None = None  # the newest finished plan taken from the worker
        self._submitted = 0  # goal sets closed when the newest was submitted
        self._requested: np.ndarray | None = None  # the goal set submitted last
        self._skipped = 0  # goal sets never submitted: a newer one closed before the next update

    def update(self, q: np.ndarray, fresh: bool, now: float) -> Plan | None:
        """Submit the newest closed goal set, planned from joint angles ``q`` if they are ``fresh``; the newest
        finished plan if it is newer than the one taken last, or ``plan``'s finish once ``q`` (fresh) finishes it
        (either becomes ``plan``), else None (also when only the followed plan's finish arrived: it is taken in
        silently). A rejected plan (``Plan.rejected``) is returned once and never becomes
        ``plan``: the previous one stays followed."""
        sets = self.sets
        sets.poll(now)
        latest = sets.latest  # not None once a set closed
        if fresh and sets.closed != self._submitted and latest is not None and np.isfinite(latest).all():
            self._skipped += sets.closed - self._submitted - 1
            self._submitted = sets.closed
            if self._requested is None or not np.array_equal(latest, self._requested):
                self.worker.submit(q, latest)
                self._requested = latest
        plan = self.worker.latest
        changed = plan is not self._received
        if changed:
            assert plan is not None  # the worker's latest, once set, is never None again
            finish_of_followed = self._received is not None and plan.config is self._received.config
            self._received = plan
            if plan.rejected:
                return plan
            if finish_of_followed:  # the plan followed, now with its finish: nothing the tick follows changed
                changed = False
            self.plan = plan
        if fresh and plan is not None and self.plan is plan and self._finishes(plan, q):
            self.plan, changed = plan.finished(), True
        return self.plan if changed else None

    def _finishes(self, plan: Plan, q: np.ndarray) -> bool:
        """Whether ``plan`` gives way to its finish at joint angles ``q``."""
        if self._kin is None or np.array_equal(plan.finish, plan.config):
            return False
        errors = np.linalg.norm(plan.goals - self._kin.ee_positions(q), axis=1)
        travel = np.max(np.abs(plan.config - q) / self._kin.spec.velocity_limits)
        return bool(self.worker.config.finishes(errors, travel))

    def diagnostics(self) -> dict[str, str]:
        """Planning time (ms, p50 and largest of the last 2000), goal sets, plans and superseded sets so far."""
        p50, largest = self.worker.percentiles_ms(50, 100)
        return {"plan_latency_p50_ms": f"{p50:.2f}", "plan_latency_max_ms": f"{largest:.2f}",
                "goal_sets_total": str(self.sets.closed), "plans_total": str(self.worker.stats.count),
                "plans_superseded_total": str(self.worker.superseded + self._skipped)}
