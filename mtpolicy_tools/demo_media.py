"""What ``mtpolicy demo`` writes of a finished run: the error figure, the path plot, the picture at the reach, and the
video replayed from the recorded joint states (MuJoCo offscreen: ``mtpolicy.offscreen``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from mtpolicy.reach_task import SETTLE
from mtpolicy_tools.demo_runs import GoalRun

if TYPE_CHECKING:
    import mujoco
    from matplotlib.artist import Artist

    from mtpolicy.kinematics import Kinematics
    from mtpolicy.robots import RobotSpec

VIDEO_FPS = 20
VIDEO_SIZE = 640
"""Video width and height in pixels (a multiple of 16, as H.264 wants)."""
VIDEO_SHADOW_SIZE = 1024
"""Shadow map size of video frames (pixels): a quarter of the default's cost with software GL."""
PICTURE_SIZE = 720


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
    handles: dict[str, Artist] = {}
    labels: dict[str, str] = {}
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

        from mtpolicy.offscreen import SceneRenderer, base_to_world, fit_camera, geom_corners, robot_geoms

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

    from mtpolicy_tools.render import caption, goal_legend

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
                frame = caption(replay.frame(run.qs[k], run.goals, run.path[:k + 1]), title, lines, legend)
                writer.append_data(frame)  # type: ignore[attr-defined]  # typed as v3's base class; v2's has it
                frames += 1
    return frames / VIDEO_FPS


def reached_picture_sample(runs: list[GoalRun]) -> tuple[int, int]:
    """(goal set, sample) to picture: the last held goal set (else the last reached) at the sample where it was
    reached; with none reached, the last sample of the last goal set."""
    held = [i for i, r in enumerate(runs) if r.held] or [i for i, r in enumerate(runs) if r.reached]
    if not held:
        return len(runs) - 1, len(runs[-1].qs) - 1
    sample = runs[held[-1]].reached_sample
    assert sample is not None  # set when the goal set is reached
    return held[-1], sample


def picture_reached(replay: Replay, runs: list[GoalRun], end_effectors: tuple[str, ...], tolerance: float,
                    title: str, path: Path) -> int:
    """The labeled picture of ``reached_picture_sample``, with the path up to it; returns the goal set's index."""
    from mtpolicy.offscreen import write_png
    from mtpolicy_tools.render import caption, goal_legend

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
