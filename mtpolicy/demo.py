"""``mtpolicy demo``: a policy reaches N goal sets over real DDS, with a table, pictures, a video and a bag.

Brings up ``launch/sim_controller.launch.xml`` through the launch runner (its
output goes to ``<out>/stack.log``), then publishes seeded reachable goal sets
one after another, each drawn from where the robot is (a ``local`` move, or
anywhere in the ``workspace``), each until every end effector is within ``tolerance`` and
has stayed there for ``SETTLE`` s (held), or ``timeout`` s pass. Writes to ``<out>``:

* ``demo.mp4``: the run replayed from the recorded joint states (MuJoCo
  offscreen), goals as spheres of the tolerance's radius, end-effector paths;
* ``summary.png``: error of each end effector over time, per goal set, with the tolerance;
* ``reached.png``: the robot at the moment the last held goal set was reached;
* ``ee_paths.png``: end-effector paths in the base x-y plane;
* ``bag/`` with ``record``: every topic of the run, a rosbag2 folder with MCAP storage;
* ``params.yaml`` when the robot is an MJCF path and no params file is given.

Exit code 0 iff at least 90 % of the goal sets were held, 1 if not, if the
stack did not come up or another ROS process published joint states or
commands in the demo's domain, 2 for a mistake in the arguments.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from mtpolicy.nodes.common import DEFAULT_COMMAND_TOPIC, ros_env

if TYPE_CHECKING:
    import mujoco

    from mtpolicy.kinematics import Kinematics
    from mtpolicy.nodes.monitor import ReachMonitor
    from mtpolicy.policy import OnnxPolicy
    from mtpolicy.robots import RobotSpec

DISCOVERY_SETTLE = 3.0
"""Seconds the demo gives DDS discovery to show another process's publishers before it starts."""
READY_TIMEOUT = 60.0
"""Seconds allowed for the stack to come up (imports, model load, discovery)."""
REPUBLISH = 0.5
"""Seconds between republications of the current goal set."""
SIM_STARTED = "simulating '"
"""What the simulator node logs once its publishers exist."""
SETTLE = 1.0
"""Seconds every end effector must stay within tolerance after reaching for a goal set to count as held."""
VIDEO_FPS = 20
VIDEO_SIZE = 640
"""Video width and height in pixels (a multiple of 16, as H.264 wants)."""
VIDEO_SHADOW_SIZE = 1024
"""Shadow map size of video frames (pixels): a quarter of the default's cost with software GL."""
PICTURE_SIZE = 720


class DemoError(ValueError):
    """A mistake in the demo's arguments: the message says which and what to do."""


@dataclass(eq=False)
class GoalRun:
    """What happened to one goal set."""

    goals: np.ndarray
    reached: bool = False
    held: bool = False
    """Reached, then within tolerance at every joint-state sample of the following ``SETTLE`` s."""
    seconds: float = math.nan
    """Time from the first publication to reaching (s)."""
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
    """The next goal set from the robot's joint angles q: the end effectors of a configuration within
    ``GOAL_JOINT_RANGE`` rad per joint of q (``local``) or anywhere in the joint limits (``workspace``)."""
    from mtpolicy.kinematics import GOAL_JOINT_RANGE, sample_configurations

    local = distribution == "local"

    def next_goals(q: np.ndarray) -> np.ndarray:
        config = sample_configurations(kin.spec, rng, 1, around=q if local else None,
                                       joint_range=GOAL_JOINT_RANGE if local else None)[0]
        return kin.ee_positions(config)
    return next_goals


def drive_goal_sets(monitor: "ReachMonitor", next_goals: Callable[[np.ndarray], np.ndarray], count: int,
                    timeout: float, tolerance: float) -> list[GoalRun]:
    """Publish ``count`` goal sets, each drawn by ``next_goals`` from where the robot is, until reached and
    ``SETTLE`` s more, or timed out; record time, hold, errors, samples."""
    runs = []
    for _ in range(count):
        goals = next_goals(monitor.q.copy())
        run = GoalRun(goals)
        start = last_pub = time.monotonic()
        monitor.publish_goals(goals)
        seen = monitor.states
        while True:
            monitor.wait_until(lambda: monitor.states != seen, timeout=0.05)
            now = time.monotonic()
            if monitor.states != seen or not run.qs:  # the errors below are those of the newest sample
                seen = monitor.states
                run.times.append(max(0.0, monitor.state_time - start))
                run.qs.append(monitor.q.copy())
                run.path.append(monitor.ee_positions())
            run.errors = monitor.errors(goals)
            within = bool(np.all(run.errors < tolerance))
            if not run.reached and within:
                run.reached, run.held, run.seconds = True, True, now - start
                run.reached_sample = len(run.qs) - 1
            run.held &= within
            if (run.reached and now - start > run.seconds + SETTLE) or (not run.reached and now - start > timeout):
                break
            if now - last_pub > REPUBLISH:
                monitor.publish_goals(goals)
                last_pub = now
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
               f"{SETTLE:.0f} s; reached {reached})"
               + (f"; median time to reach {np.median(times):.2f} s" if times else ""))
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows), summary])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_paths(runs: list[GoalRun], colors: np.ndarray, end_effectors: tuple[str, ...], title: str,
               path: Path) -> None:
    """End-effector paths in the base x-y plane, goals as crosses numbered by goal set."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 7.4))
    for i, run in enumerate(runs):
        trace = np.stack(run.path)
        for k, ee in enumerate(end_effectors):
            ax.plot(trace[:, k, 0], trace[:, k, 1], color=colors[k][:3], lw=1.2, label=f"{ee} path" if i == 0 else None)
        for k in range(len(end_effectors)):
            ax.plot(*run.goals[k, :2], marker="x", ms=9, mew=2, color=colors[k][:3] if run.held else "red")
            ax.annotate(str(i + 1), run.goals[k, :2], textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.plot([], [], "kx", ms=9, mew=2, label="goal (number: goal set; red: not held)")
    ax.plot(0, 0, "ks", ms=8, label="base")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, base frame)")
    ax.set_ylabel("y (m, base frame)")
    held = sum(r.held for r in runs)
    ax.set_title(f"{title}\nend-effector paths: {held}/{len(runs)} goal sets held", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_errors(runs: list[GoalRun], colors: np.ndarray, end_effectors: tuple[str, ...], tolerance: float,
                title: str, path: Path) -> None:
    """One panel per goal set: each end effector's error over time, the tolerance, the reach and hold window."""
    plt = _pyplot()
    cols = min(5, len(runs))
    rows = math.ceil(len(runs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols + 0.6, 2.5 * rows + 1.4), sharey=True, squeeze=False)
    floor = 0.5  # mm: the log axis' bottom
    top = 1.5 * max(1e3 * tolerance, *(1e3 * float(np.nanmax(r.error_trace())) for r in runs if r.path))
    for i, (ax, run) in enumerate(zip(axes.flat, runs)):
        err = np.maximum(1e3 * run.error_trace(), floor)
        for k, ee in enumerate(end_effectors):
            ax.plot(run.times, err[:, k], color=colors[k][:3], lw=1.4, label=f"{ee} error")
        ax.axhline(1e3 * tolerance, color="k", ls="--", lw=1, label=f"tolerance ({1e3 * tolerance:.0f} mm)")
        if run.reached:
            ax.axvline(run.seconds, color="0.4", ls=":", lw=1.2, label="reached")
            ax.axvspan(run.seconds, run.seconds + SETTLE, color="tab:green" if run.held else "tab:red", alpha=0.12,
                       label=f"{SETTLE:.0f} s hold window (green: held, red: left the tolerance)")
        state = (f"held, reached in {run.seconds:.2f} s" if run.held else
                 f"reached in {run.seconds:.2f} s, not held" if run.reached else "not reached")
        ax.set_title(f"goal set {i + 1}: {state}", fontsize=9)
        ax.set_yscale("log")
        ax.set_ylim(floor, top)
        ax.grid(alpha=0.3, which="both", lw=0.5)
    for ax in axes.flat[len(runs):]:
        ax.set_visible(False)
    handles, labels = {}, {}
    for ax in axes.flat[:len(runs)]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label.split(" (")[0], h)
            labels.setdefault(label.split(" (")[0], label)
    fig.legend(list(handles.values()), list(labels.values()), loc="upper center", ncol=min(6, len(handles)),
               fontsize=9, bbox_to_anchor=(0.5, 1 - 0.55 / fig.get_figheight()), frameon=False)
    held = sum(r.held for r in runs)
    fig.suptitle(f"{title}: end-effector error per goal set, {held}/{len(runs)} held", fontsize=12)
    fig.supxlabel("time since the goal set was published (s)", fontsize=10)
    fig.supylabel("distance to goal (mm, log scale)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.75 / fig.get_figheight()))
    fig.savefig(path, dpi=110)
    plt.close(fig)


class Replay:
    """Renders recorded joint angles of one robot: framed camera, goals as tolerance spheres, paths."""

    def __init__(self, spec: "RobotSpec", mj_model: "mujoco.MjModel", kin: "Kinematics", colors: np.ndarray,
                 goal_radius: float, size: int, configurations: np.ndarray, goals: np.ndarray,
                 shadow_size: int | None = None):
        import mujoco

        from mtpolicy.render import SceneRenderer, base_to_world, fit_camera, geom_corners, robot_geoms

        self.mujoco, self.base_to_world = mujoco, base_to_world
        self.model, self.kin, self.colors, self.goal_radius = mj_model, kin, colors, goal_radius
        self.data = mujoco.MjData(mj_model)
        spec.reset_to_home(mj_model, self.data)
        self.base = mj_model.body(spec.base_body).id
        geoms = robot_geoms(mj_model, spec.base_body)
        points = []
        for q in configurations:
            self._pose(q)
            points.append(geom_corners(mj_model, self.data, geoms))
        world_goals = self.world(goals.reshape(-1, 3))
        points += [world_goals - goal_radius, world_goals + goal_radius]
        self.renderer = SceneRenderer(mj_model, fit_camera(mj_model, np.concatenate(points)), size, size,
                                      shadow_size=shadow_size)

    def _pose(self, q: np.ndarray) -> None:
        self.data.qpos[self.kin.qpos_adr] = q
        self.mujoco.mj_kinematics(self.model, self.data)

    def world(self, points: np.ndarray) -> np.ndarray:
        return self.base_to_world(self.data, self.base, points)

    def frame(self, q: np.ndarray, goals: np.ndarray, path: Sequence[np.ndarray] = ()) -> np.ndarray:
        """The robot at ``q`` with ``goals`` (base frame) and the end-effector ``path`` so far (base frame)."""
        self._pose(q)
        traces = [self.world(np.stack(path)[:, k]) for k in range(len(goals))] if len(path) > 1 else ()
        return self.renderer.render(self.data, self.world(goals), self.colors, self.goal_radius, traces)

    def close(self) -> None:
        self.renderer.close()


def write_video(replay: Replay, runs: list[GoalRun], end_effectors: tuple[str, ...], tolerance: float, title: str,
                path: Path) -> float:
    """Replay every goal set at real time (``VIDEO_FPS``) with a caption; returns the video's length (s)."""
    import imageio.v2 as imageio

    from mtpolicy.render import caption, goal_legend

    legend = goal_legend(end_effectors, replay.colors, traces=True)
    frames = 0
    with imageio.get_writer(path, fps=VIDEO_FPS, codec="libx264", quality=7, macro_block_size=16) as writer:
        for i, run in enumerate(runs):
            times = np.asarray(run.times)
            errors = run.error_trace()
            for t in np.arange(0.0, times[-1] + 1e-9, 1.0 / VIDEO_FPS):
                k = max(0, int(np.searchsorted(times, t, side="right")) - 1)
                status = f"reached at {run.seconds:.2f} s" if run.reached and t >= run.seconds else "reaching"
                lines = [f"goal set {i + 1}/{len(runs)}, t = {t:4.1f} s, {status}",
                         "error: " + ", ".join(f"{ee} {1e3 * e:5.1f} mm" for ee, e in zip(end_effectors, errors[k]))
                         + f"  (tolerance {1e3 * tolerance:.0f} mm = sphere radius)"]
                writer.append_data(caption(replay.frame(run.qs[k], run.goals, run.path[:k + 1]), title, lines,
                                           legend))
                frames += 1
    return frames / VIDEO_FPS


def reached_picture_sample(runs: list[GoalRun]) -> tuple[int, int]:
    """(goal set, sample) to picture: the last held goal set (else the last reached) at the sample where it was
    reached; with none reached, the last sample of the last goal set."""
    held = [i for i, r in enumerate(runs) if r.held] or [i for i, r in enumerate(runs) if r.reached]
    if not held:
        return len(runs) - 1, len(runs[-1].qs) - 1
    return held[-1], runs[held[-1]].reached_sample


def picture_reached(replay: Replay, runs: list[GoalRun], end_effectors: tuple[str, ...], tolerance: float,
                    title: str, path: Path) -> int:
    """The labeled picture of ``reached_picture_sample``, with the path up to it; returns the goal set's index."""
    from mtpolicy.render import caption, goal_legend, write_png

    index, shown = reached_picture_sample(runs)
    run = runs[index]
    when = (f"reached after {run.seconds:.2f} s" + ("" if run.held else ", not held") if run.reached
            else f"not reached; after {run.times[-1]:.1f} s")
    lines = [f"goal set {index + 1}/{len(runs)} {when}",
             "error: " + ", ".join(f"{ee} {1e3 * e:.1f} mm" for ee, e in zip(end_effectors, run.error_trace()[shown]))
             + f"  (tolerance {1e3 * tolerance:.0f} mm = sphere radius)"]
    frame = replay.frame(run.qs[shown], run.goals, run.path[:shown + 1])
    write_png(path, caption(frame, title, lines, goal_legend(end_effectors, replay.colors, traces=True)))
    return index


def robot_for_model(robot: str, policy: "OnnxPolicy") -> "RobotSpec":
    """The RobotSpec of ``robot`` (shipped name, robot folder or MJCF path) with the model's end effectors, checked
    against it.

    Raises RobotSpecError (no such robot, or not drivable) or ModelMismatch (another robot).
    """
    from mtpolicy.policy import ModelMismatch
    from mtpolicy.robots import RobotSpecError, find_robot, load_robot, shipped_robots

    find_robot(robot)  # an unknown robot is not a mismatch
    if robot in shipped_robots() and policy.contract.robot != robot:
        raise ModelMismatch(f"{policy.path.name} is for robot {policy.contract.robot!r}, not {robot!r}: "
                            f"give a model for {robot!r} (--model, model:=)")
    try:
        spec = load_robot(robot, list(policy.contract.end_effectors))
    except RobotSpecError as e:
        raise ModelMismatch(f"{policy.path.name} (robot {policy.contract.robot!r}) does not fit {robot}: {e}") from None
    policy.check(spec)
    return spec


def params_yaml(spec: "RobotSpec", model_name: str) -> str:
    """A ROS parameters file for the launch files' nodes on ``spec`` (end effectors and command order)."""
    ees = "[" + ", ".join(spec.end_effectors) + "]"
    return (f"# Node parameters for robot {spec.scene_path} driven by {model_name}; docs/own_robot.md step 3\n"
            f"controller:\n  ros__parameters:\n    joints: [{', '.join(spec.joint_names)}]\n"
            f"sim:\n  ros__parameters:\n    end_effectors: {ees}\n"
            f"goals:\n  ros__parameters:\n    end_effectors: {ees}\n")


@dataclass(frozen=True)
class DemoSetup:
    """What the demo runs, checked before anything starts."""

    model_path: Path
    robot: str
    """Shipped robot name, or the absolute path of a robot folder or MJCF."""
    spec: "RobotSpec"
    params_file: Path | None
    """Node parameters (None: the launch files' default for a shipped robot)."""
    tolerance: float
    title: str
    """Robot and model, for every picture."""


def prepare(model: str | None, robot: str | None, params: str | None, tolerance: float | None,
            out: Path) -> DemoSetup:
    """Resolve and check the model (default: the default model of the robot, default ``DEFAULT_ROBOT``), robot,
    params file and tolerance; raise DemoError naming the mistake."""
    import yaml

    from mtpolicy.kinematics import reach_tolerance
    from mtpolicy.policy import ModelMismatch, OnnxPolicy, resolve_model_path
    from mtpolicy.render import end_effectors_from_params
    from mtpolicy.robots import DEFAULT_ROBOT, RobotSpecError, find_robot, shipped_robots

    try:
        if model is None:
            robot = robot or DEFAULT_ROBOT
            model = find_robot(robot).default_model_reference()
        policy = OnnxPolicy(resolve_model_path(model))
    except (FileNotFoundError, ModelMismatch, RobotSpecError) as e:
        raise DemoError(str(e)) from None
    contract = policy.contract
    if robot is None:
        if contract.robot in shipped_robots():
            robot = contract.robot
        elif Path(contract.robot_mjcf).is_file():  # an MJCF, or the one a robot folder's manifest names
            robot = contract.robot_mjcf
        else:
            raise DemoError(f"{policy.path.name} is for robot {contract.robot!r} (MJCF {contract.robot_mjcf}), "
                            "which is not here: give its MJCF with --robot PATH")
    try:
        spec = robot_for_model(robot, policy)
    except (RobotSpecError, ModelMismatch) as e:
        raise DemoError(str(e)) from None
    robot = robot if robot in shipped_robots() else str(Path(robot).resolve())
    params_file = None
    if params is not None:
        params_file = Path(params).resolve()
        if not params_file.is_file():
            raise DemoError(f"params file {params} not found")
        try:
            listed = end_effectors_from_params(params_file)
        except (yaml.YAMLError, AttributeError) as e:
            raise DemoError(f"params file {params} is not a ROS parameters YAML: {e}") from None
        if listed and tuple(listed) != spec.end_effectors:
            raise DemoError(f"{params}: end_effectors {listed} differ from the model's {list(spec.end_effectors)}")
    elif robot not in shipped_robots():
        params_file = out.resolve() / "params.yaml"
        out.mkdir(parents=True, exist_ok=True)
        params_file.write_text(params_yaml(spec, policy.path.name))
    if tolerance is None:  # the model's, else (a model made without one) the robot's
        tolerance = contract.reach_tolerance or reach_tolerance(robot)
    elif tolerance <= 0:
        raise DemoError(f"--tolerance must be > 0 m, got {tolerance}")
    return DemoSetup(policy.path, robot, spec, params_file, tolerance,
                     f"{spec.name} driven by {policy.path.stem} ({contract.method})")


def demo_topics(spec: "RobotSpec", command_topic: str = DEFAULT_COMMAND_TOPIC) -> list[tuple[str, type]]:
    """The topics of a demo run, for the bag: states, goals, commands, markers, diagnostics."""
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PointStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray
    from visualization_msgs.msg import MarkerArray

    from mtpolicy.nodes.common import JOINT_STATES_TOPIC, goal_topic

    return ([(JOINT_STATES_TOPIC, JointState), (command_topic, Float64MultiArray)]
            + [(goal_topic(ee), PointStamped) for ee in spec.end_effectors]
            + [("/controller/markers", MarkerArray), ("/sim/markers", MarkerArray), ("/diagnostics", DiagnosticArray)])


def foreign_publishers(monitor: "ReachMonitor") -> str | None:
    """Why another ROS process shares the demo's domain (a second publisher of joint states or commands), or None."""
    from mtpolicy.nodes.common import JOINT_STATES_TOPIC

    counts = {topic: monitor.count_publishers(topic) for topic in (JOINT_STATES_TOPIC, DEFAULT_COMMAND_TOPIC)}
    extra = {topic: n for topic, n in counts.items() if n > 1}
    if not extra:
        return None
    return (f"another process on ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} publishes "
            + ", ".join(f"{topic} ({n} publishers)" for topic, n in extra.items())
            + "; run the demo with a free ROS_DOMAIN_ID")


def run_demo(goal_sets: int = 10, seed: int = 0, out: str | Path = "out/demo", model: str | None = None,
             robot: str | None = None, timeout: float = 10.0, tolerance: float | None = None,
             real_time_factor: float = 1.0, params: str | None = None, record: bool = False,
             video: bool = True, goal_distribution: str = "local") -> int:
    """The one-command demo; returns the exit code. Raises DemoError for a mistake in the arguments.

    ``model`` defaults to the default model of ``robot`` (its manifest's
    ``default_model``; robot default ``DEFAULT_ROBOT``), ``robot`` to the
    model's robot (a shipped one, or the MJCF path its contract records: a
    robot folder's when its manifest names it) and ``tolerance`` to the reach
    tolerance the model was trained for. ``params`` is a ROS parameters file for the nodes; a robot
    given by path without one gets ``<out>/params.yaml``, written from the model.
    """
    if goal_sets < 1:
        raise DemoError(f"--goals must be >= 1, got {goal_sets}")
    if goal_distribution not in ("local", "workspace"):
        raise DemoError(f"--goal-distribution must be local or workspace, got {goal_distribution!r}")
    for name, value in (("--timeout", timeout), ("--real-time-factor", real_time_factor)):
        if not value > 0:
            raise DemoError(f"{name} must be > 0, got {value}")
    out = Path(out)
    setup = prepare(model, robot, params, tolerance, out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.update(ros_env(isolate=True))  # this process and the stack share one private domain
    import rclpy

    from mtpolicy.kinematics import Kinematics
    from mtpolicy.launch_runner import LaunchRunner, parse_launch
    from mtpolicy.nodes.monitor import ReachMonitor
    from mtpolicy.record import BagRecorder

    spec, tolerance = setup.spec, setup.tolerance
    next_goals = goal_sampler(Kinematics(spec), np.random.default_rng(seed), goal_distribution)
    print(f"mtpolicy demo: {setup.title} over ROS 2 (ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, loopback); "
          f"{goal_sets} {goal_distribution} goal sets, seed {seed}; stack log: {out / 'stack.log'}")
    if setup.params_file is not None:
        print(f"node parameters: {setup.params_file}")
    launch_args = {"robot": setup.robot, "model": str(setup.model_path.resolve()),
                   "real_time_factor": str(real_time_factor)}
    if setup.params_file is not None:
        launch_args["params_file"] = str(setup.params_file)
    description = parse_launch("sim_controller", launch_args)
    bag = out / "bag"
    if record and bag.exists():
        shutil.rmtree(bag)
    with open(out / "stack.log", "w") as log, LaunchRunner(description, dict(os.environ), echo=log) as runner:
        rclpy.init()
        monitor = ReachMonitor(spec, name="demo")
        recorder = BagRecorder(bag, demo_topics(spec)) if record else None
        try:
            sims = [p for n, p in runner.processes if n.name == "sim"]

            def stack_up() -> bool:  # our own simulator logged its start (another one may also publish states)
                return (monitor.states > 0 and len(monitor.commands) > 0
                        and all(SIM_STARTED in sim.output() for sim in sims))
            ready = monitor.wait_until(stack_up, READY_TIMEOUT)
            dead = [n.name for n, p in runner.processes if p.returncode is not None]
            if not ready or dead:
                print(f"mtpolicy demo: the stack did not come up (exited: {dead}); see {out / 'stack.log'}")
                return 1
            monitor.wait_until(lambda: foreign_publishers(monitor) is not None, DISCOVERY_SETTLE)
            if crowded := foreign_publishers(monitor):
                print(f"mtpolicy demo: {crowded}")
                return 1
            runs = drive_goal_sets(monitor, next_goals, goal_sets, timeout / real_time_factor, tolerance)
            crowded = foreign_publishers(monitor)
        finally:
            if recorder is not None:
                recorder.close()
            monitor.destroy_node()
            rclpy.shutdown()
    print(format_table(runs, spec.end_effectors, tolerance))
    if crowded:
        print(f"WARNING: {crowded}: the results above may mix two robots")
    if recorder is not None:
        print(f"wrote {bag} (rosbag2, MCAP): " + ", ".join(f"{t} {n}" for t, n in recorder.counts.items()))
    write_media(runs, spec, tolerance, setup.title, out, video)
    return 0 if not crowded and sum(r.held for r in runs) >= math.ceil(0.9 * len(runs)) else 1


def write_media(runs: list[GoalRun], spec: "RobotSpec", tolerance: float, title: str, out: Path, video: bool) -> None:
    """summary.png, ee_paths.png, reached.png and (with ``video``) demo.mp4 of a finished run."""
    from mtpolicy.kinematics import Kinematics
    from mtpolicy.nodes.markers import ee_colors

    mj_model = spec.load_model()
    kin = Kinematics(spec, mj_model)
    colors = ee_colors(mj_model, spec)
    plot_errors(runs, colors, spec.end_effectors, tolerance, title, out / "summary.png")
    plot_paths(runs, colors, spec.end_effectors, title, out / "ee_paths.png")
    written = [out / "summary.png", out / "ee_paths.png"]
    qs = np.concatenate([np.stack(r.qs) for r in runs])
    sampled = qs[np.linspace(0, len(qs) - 1, min(len(qs), 60)).astype(int)]
    replay = Replay(spec, mj_model, kin, colors, tolerance, PICTURE_SIZE, sampled, np.stack([r.goals for r in runs]))
    try:
        index = picture_reached(replay, runs, spec.end_effectors, tolerance, title, out / "reached.png")
    finally:
        replay.close()
    written.append(out / "reached.png")
    if video:
        print(f"rendering demo.mp4 ({sum(r.times[-1] for r in runs):.0f} s at {VIDEO_FPS} fps) ...", flush=True)
        replay = Replay(spec, mj_model, kin, colors, tolerance, VIDEO_SIZE, sampled, np.stack([r.goals for r in runs]),
                        shadow_size=VIDEO_SHADOW_SIZE)
        try:
            seconds = write_video(replay, runs, spec.end_effectors, tolerance, title, out / "demo.mp4")
        finally:
            replay.close()
        written.append(out / "demo.mp4")
    print("wrote " + ", ".join(str(p) for p in written) + f" (reached.png: goal set {index + 1}"
          + (f"; demo.mp4: {seconds:.1f} s at {VIDEO_FPS} fps)" if video else ")"))
