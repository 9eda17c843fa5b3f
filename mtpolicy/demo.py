"""``mtpolicy demo``: the shipped policy reaches N goal sets over real DDS, with a table and pictures.

Brings up ``launch/sim_controller.launch.xml`` through the launch runner (its
output goes to ``<out>/stack.log``), then publishes seeded reachable goal sets
one after another, each until every end effector is within ``tolerance`` and
has stayed there for ``SETTLE`` s (held), or ``timeout`` s pass. Writes ``<out>/reached.png`` (MuJoCo offscreen render of
the robot at the last reached goal set, goals as spheres) and
``<out>/ee_paths.png`` (end-effector paths). Exit code 0 iff at least 90 % of
the goal sets were held.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtpolicy.nodes.common import ros_env

READY_TIMEOUT = 60.0
"""Seconds allowed for the stack to come up (imports, model load, discovery)."""
REPUBLISH = 0.5
"""Seconds between republications of the current goal set."""
SETTLE = 1.0
"""Seconds every end effector must stay within tolerance after reaching for a goal set to count as held."""


@dataclass(eq=False)
class GoalRun:
    """What happened to one goal set."""

    goals: np.ndarray
    reached: bool = False
    held: bool = False
    """Reached, then within tolerance at every joint-state sample of the following ``SETTLE`` s."""
    seconds: float = math.nan
    errors: np.ndarray = field(default_factory=lambda: np.array([]))
    path: list[np.ndarray] = field(default_factory=list)
    """(n_ee, 3) end-effector positions, one per joint-state message."""
    q: np.ndarray = field(default_factory=lambda: np.array([]))


def drive_goal_sets(monitor, goal_sets: np.ndarray, timeout: float, tolerance: float) -> list[GoalRun]:  # noqa: ANN001
    """Publish each goal set until reached and ``SETTLE`` s more, or timed out; record time, hold, errors, paths."""
    runs = []
    for goals in goal_sets:
        run = GoalRun(goals)
        start = last_pub = time.monotonic()
        monitor.publish_goals(goals)
        seen = monitor.states
        while True:
            monitor.wait_until(lambda: monitor.states != seen, timeout=0.05)
            now = time.monotonic()
            if monitor.states != seen:
                seen = monitor.states
                run.path.append(monitor.ee_positions())
            run.errors = monitor.errors(goals)
            within = bool(np.all(run.errors < tolerance))
            if not run.reached and within:
                run.reached, run.held, run.seconds = True, True, now - start
            run.held &= within
            if (run.reached and now - start > run.seconds + SETTLE) or (not run.reached and now - start > timeout):
                break
            if now - last_pub > REPUBLISH:
                monitor.publish_goals(goals)
                last_pub = now
        run.q = monitor.q.copy()
        runs.append(run)
    return runs


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
               f"{SETTLE:.0f} s; reached {reached})" + (f"; median time to reach {np.median(times):.2f} s" if times else ""))
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows), summary])


def plot_paths(runs: list[GoalRun], colors: np.ndarray, end_effectors: tuple[str, ...], path: Path) -> None:
    """End-effector paths in the base x-y plane, goals as crosses numbered by goal set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 7))
    for i, run in enumerate(runs):
        if run.path:
            trace = np.stack(run.path)
            for k, ee in enumerate(end_effectors):
                ax.plot(trace[:, k, 0], trace[:, k, 1], color=colors[k][:3], lw=1.2,
                        label=ee if i == 0 else None)
        for k in range(len(end_effectors)):
            ax.plot(*run.goals[k, :2], marker="x", ms=9, mew=2, color=colors[k][:3] if run.held else "red")
            ax.annotate(str(i + 1), run.goals[k, :2], textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.plot(0, 0, "ks", ms=8, label="base")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, base frame)")
    ax.set_ylabel("y (m, base frame)")
    held = sum(r.held for r in runs)
    ax.set_title(f"end-effector paths: {held}/{len(runs)} goal sets held (x = goal, red = not held)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_demo(goal_sets: int = 10, seed: int = 0, out: str | Path = "out/demo", model: str = "planar8_digrad",
             robot: str | None = None, timeout: float = 10.0, tolerance: float | None = None,
             real_time_factor: float = 1.0) -> int:
    """The one-command demo; returns the exit code.

    ``robot`` defaults to the model's robot and ``tolerance`` to the reach
    tolerance the model was trained for (the robot's default if its metadata does not say).
    """
    os.environ.update(ros_env(isolate=True))  # this process and the stack share one private domain
    import mujoco
    import rclpy

    from mtpolicy.kinematics import Kinematics, reach_tolerance, sample_goal_sets
    from mtpolicy.launch_runner import LaunchRunner, parse_launch
    from mtpolicy.nodes.markers import ee_colors
    from mtpolicy.nodes.monitor import ReachMonitor
    from mtpolicy.policy import OnnxPolicy, resolve_model_path
    from mtpolicy.render import render_png
    from mtpolicy.robots import load_robot

    try:
        model_path = resolve_model_path(model)
    except FileNotFoundError as e:
        print(f"mtpolicy demo: {e}")
        return 2
    contract = OnnxPolicy(model_path).contract
    robot = robot or contract.robot
    if tolerance is None:
        tolerance = float(contract.training_config.get("env", {}).get("reach_tolerance") or reach_tolerance(robot))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = load_robot(robot)
    goals = sample_goal_sets(Kinematics(spec), np.random.default_rng(seed), goal_sets)
    print(f"mtpolicy demo: {robot} driven by {model_path.name} over ROS 2 (ROS_DOMAIN_ID="
          f"{os.environ['ROS_DOMAIN_ID']}, loopback); {goal_sets} goal sets, seed {seed}; "
          f"stack log: {out / 'stack.log'}")
    description = parse_launch("sim_controller", {"robot": robot, "model": str(model_path.resolve()),
                                                  "real_time_factor": str(real_time_factor)})
    with open(out / "stack.log", "w") as log, LaunchRunner(description, dict(os.environ), echo=log) as runner:
        rclpy.init()
        monitor = ReachMonitor(spec, name="demo")
        try:
            ready = monitor.wait_until(lambda: monitor.states > 0 and len(monitor.commands) > 0, READY_TIMEOUT)
            dead = [n.name for n, p in runner.processes if p.returncode is not None]
            if not ready or dead:
                print(f"mtpolicy demo: the stack did not come up (exited: {dead}); see {out / 'stack.log'}")
                return 1
            runs = drive_goal_sets(monitor, goals, timeout / real_time_factor, tolerance)
        finally:
            monitor.destroy_node()
            rclpy.shutdown()
    print(format_table(runs, spec.end_effectors, tolerance))

    mj_model = spec.load_model()
    colors = ee_colors(mj_model, spec)
    index = max((i for i, r in enumerate(runs) if r.reached), default=len(runs) - 1)
    shown = runs[index]
    data = mujoco.MjData(mj_model)
    data.qpos[Kinematics(spec, mj_model).qpos_adr] = shown.q
    render_png(mj_model, data, out / "reached.png", spec.base_body, shown.goals, colors, 720, 720)
    plot_paths(runs, colors, spec.end_effectors, out / "ee_paths.png")
    print(f"wrote {out / 'reached.png'} (goal set {index + 1}) and {out / 'ee_paths.png'}")
    return 0 if sum(r.held for r in runs) >= math.ceil(0.9 * len(runs)) else 1
