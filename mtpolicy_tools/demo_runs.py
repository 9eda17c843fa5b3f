"""Goal sets driven one after another over DDS, and what happened to each: the demo's run (``mtpolicy demo``).

Each goal set is drawn from where the robot is (a ``local`` move, or anywhere in the ``workspace``) and published
until every end effector is within the tolerance and has stayed there for ``SETTLE`` s (held), or the time allowed
passes; ``GoalRun`` keeps its samples (times, joint angles, end-effector paths) for the table and the media
(``mtpolicy_tools.demo_media``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import SETTLE

if TYPE_CHECKING:
    from mtpolicy_tools.monitor import ReachMonitor

REPUBLISH = 0.5
"""Seconds between republications of the current goal set."""


@dataclass(eq=False)
class GoalRun:
    """What happened to one goal set."""

    goals: np.ndarray
    start: np.ndarray
    """Joint angles (rad) the goal set was drawn from, just before it was published."""
    reached: bool = False
    held: bool = False
    """Reached, then within tolerance at every joint-state sample of the following ``SETTLE`` s."""
    seconds: float = math.nan
    """Time from the first publication to the arrival of the first joint state with every end effector within
    tolerance (s)."""
    errors: np.ndarray = field(default_factory=lambda: np.array([]))
    """(n_ee,) final errors (m)."""
    times: list[float] = field(default_factory=list)
    """Time of each joint-state sample since the goal set was first published (s)."""
    qs: list[np.ndarray] = field(default_factory=list)
    """Joint angles (rad) of each sample."""
    path: list[np.ndarray] = field(default_factory=list)
    """(n_ee, 3) end-effector positions (base frame), one per sample."""
    reached_sample: int | None = None
    """Index of the sample at which every end effector first was within tolerance."""

    @property
    def q(self) -> np.ndarray:
        return self.qs[-1]

    def error_trace(self) -> np.ndarray:
        """(n_samples, n_ee) error of each end effector at each sample (m)."""
        if not self.path:
            return np.zeros((0, len(self.goals)))
        return np.linalg.norm(np.stack(self.path) - self.goals, axis=-1)


def goal_sampler(kin: "Kinematics", rng: np.random.Generator, distribution: str
                 ) -> Callable[[np.ndarray], np.ndarray]:
    """The next goal set from the robot's joint angles q: the end effectors of a configuration free of
    self-collision (as the env and the goals node draw them) within ``GOAL_JOINT_RANGE`` rad per joint of q
    (``local``) or anywhere in the joint limits (``workspace``)."""
    from mtpolicy.reach_task import GOAL_JOINT_RANGE, sample_free_configurations

    local = distribution == "local"

    def next_goals(q: np.ndarray) -> np.ndarray:
        config = sample_free_configurations(kin, rng, 1, around=q if local else None,
                                            joint_range=GOAL_JOINT_RANGE if local else None)[0]
        return kin.ee_positions(config)
    return next_goals


def drive_goal_sets(monitor: "ReachMonitor", next_goals: Callable[[np.ndarray], np.ndarray], count: int,
                    timeout: float, tolerance: float) -> list[GoalRun]:
    """Publish ``count`` goal sets, each drawn by ``next_goals`` from where the robot is, until reached and
    ``SETTLE`` s more, or timed out; record time, hold, errors, samples."""
    runs = []
    for _ in range(count):
        start = monitor.q.copy()
        goals = next_goals(start)
        run = GoalRun(goals, start)
        published = last_pub = time.monotonic()
        monitor.publish_goals(goals)
        seen = monitor.states
        while True:
            monitor.wait_until(lambda: monitor.states != seen, timeout=0.05)
            now = time.monotonic()
            if monitor.states != seen or not run.qs:  # the errors below are those of the newest sample
                seen = monitor.states
                run.times.append(max(0.0, monitor.state_time - published))
                run.qs.append(monitor.q.copy())
                run.path.append(monitor.ee_positions())
            run.errors = monitor.errors(goals)
            within = bool(np.all(run.errors < tolerance))
            if not run.reached and within:
                run.reached, run.held, run.seconds = True, True, run.times[-1]
                run.reached_sample = len(run.qs) - 1
            run.held &= within
            if (run.reached and now - published > run.seconds + SETTLE) or (not run.reached
                                                                          and now - published > timeout):
                break
            if now - last_pub > REPUBLISH:
                monitor.publish_goals(goals)
                last_pub = now
        runs.append(run)
    return runs


def goal_sets_record(runs: list[GoalRun], tolerance: float, model: str) -> dict:
    """The demo's goal sets as ``benchmarks/demo_replay.py`` replays them in the env: each one's start and goals,
    and what the demo saw (reached, held, time to reach in s, the largest error after reaching and each end effector's
    final error, in m)."""
    def seen(run: GoalRun) -> dict:
        peak = run.error_trace()[run.reached_sample:].max() if run.reached_sample is not None else None
        return {"start": run.start.tolist(), "goals": run.goals.tolist(), "reached": run.reached, "held": run.held,
                "seconds": run.seconds if run.reached else None,
                "peak_error_after_reaching": None if peak is None else float(peak),
                "final_errors": run.errors.tolist()}
    return {"model": model, "tolerance": tolerance, "settle": SETTLE, "goal_sets": [seen(r) for r in runs]}


def format_table(runs: list[GoalRun], end_effectors: tuple[str, ...], tolerance: float) -> str:
    head = ["goal set", "reached", "held 1 s", "time (s)"] + [f"{ee} final err (mm)" for ee in end_effectors]
    rows = [[str(i + 1), "yes" if r.reached else "NO", "yes" if r.held else "NO",
             f"{r.seconds:.2f}" if r.reached else "-"]
            + [f"{1e3 * e:.1f}" for e in r.errors] for i, r in enumerate(runs)]
    widths = [max(len(h), *(len(row[c]) for row in rows)) for c, h in enumerate(head)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    held, reached = sum(r.held for r in runs), sum(r.reached for r in runs)
    times = [r.seconds for r in runs if r.held]
    summary = (f"held {held}/{len(runs)} goal sets (all end effectors within {1e3 * tolerance:.0f} mm for "
               f"{SETTLE:.0f} s; reached {reached})"
               + (f"; median time to reach {np.median(times):.2f} s" if times else ""))
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows), summary])
