"""Offscreen pictures and video frames of a robot with its goals (spheres) and end-effector traces.

MuJoCo renders through the GL backend named by ``MUJOCO_GL`` (``egl`` for
headless machines), which must be set before mujoco is first imported;
the sim node and the ``mtpolicy`` CLI set it by default. The camera keeps the MJCF's
``<global azimuth elevation>`` and is placed so that given points (the robot's
geoms over a motion, the goals) fill the frame; the offscreen framebuffer
grows to the requested image size. As a script, it drives a robot to one
random reachable goal set in MuJoCo (no ROS) and saves the labeled picture:

    MUJOCO_GL=egl mtpolicy render --robot humanoid --seed 3 --out docs/humanoid_reach.png
    MUJOCO_GL=egl mtpolicy render --robot humanoid --model humanoid_digrad --out reach.png
    MUJOCO_GL=egl mtpolicy render --robot own.xml --params own.yaml --out own.png
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from pathlib import Path
from typing import Sequence

import mujoco
import numpy as np


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 image as an 8-bit RGB PNG."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def ensure_framebuffer(model: mujoco.MjModel, width: int, height: int) -> None:
    """Grow the model's offscreen framebuffer (MJCF ``<global offwidth offheight>``) to at least width x height."""
    vis = model.vis.global_
    vis.offwidth, vis.offheight = max(vis.offwidth, width), max(vis.offheight, height)


def robot_geoms(model: mujoco.MjModel, base_body: str) -> np.ndarray:
    """Ids of the geoms on ``base_body`` and its descendants (the robot, not the floor or props)."""
    base = model.body(base_body).id
    inside = np.zeros(model.nbody, dtype=bool)
    for b in range(model.nbody):  # parents come before children in a compiled model
        inside[b] = b == base or (b > 0 and inside[model.body_parentid[b]])
    return np.flatnonzero(inside[model.geom_bodyid])


def geom_corners(model: mujoco.MjModel, data: mujoco.MjData, geoms: np.ndarray) -> np.ndarray:
    """(8 len(geoms), 3) world corners of the geoms' bounding boxes (``geom_aabb``) in ``data``'s pose."""
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T  # (8, 3)
    aabb = model.geom_aabb[geoms]  # (n, 6): center, half sizes, in the geom frame
    local = aabb[:, None, :3] + signs[None] * aabb[:, None, 3:]
    rot = data.geom_xmat[geoms].reshape(-1, 3, 3)
    return (np.einsum("nij,nkj->nki", rot, local) + data.geom_xpos[geoms][:, None]).reshape(-1, 3)


def fit_camera(model: mujoco.MjModel, points: np.ndarray, aspect: float = 1.0, margin: float = 1.08
               ) -> mujoco.MjvCamera:
    """A free camera at the MJCF's azimuth and elevation whose view holds every world point in ``points``.

    The distance is the smallest at which all of them lie inside the field of
    view (``<global fovy>``, width/height ``aspect``), times ``margin``; the
    look-at point then moves until their picture is centred (a few rounds:
    under perspective, near points spread more than far ones).
    """
    camera = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, camera)
    az, el = np.radians(camera.azimuth), np.radians(camera.elevation)
    forward = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    up = np.array([-np.sin(el) * np.cos(az), -np.sin(el) * np.sin(az), np.cos(el)])
    right = np.cross(forward, up)
    tan_y = np.tan(np.radians(model.vis.global_.fovy) / 2)
    tan_x = aspect * tan_y
    def distance_to_fit(center: np.ndarray) -> float:
        rel = points - center
        needed = np.maximum(np.abs(rel @ right) / tan_x, np.abs(rel @ up) / tan_y) - rel @ forward
        return margin * max(float(needed.max()), 1e-3)

    center = (points.min(axis=0) + points.max(axis=0)) / 2
    for _ in range(4):
        distance = distance_to_fit(center)
        rel = points - center
        depth = rel @ forward + distance
        x, y = (rel @ right) / depth, (rel @ up) / depth  # tangents of the view angles
        center = center + distance * ((x.max() + x.min()) / 2 * right + (y.max() + y.min()) / 2 * up)
    camera.lookat[:] = center
    camera.distance = distance_to_fit(center)
    return camera


def base_to_world(data: mujoco.MjData, base: int, points: np.ndarray) -> np.ndarray:
    """(..., 3) base-frame points in the world frame."""
    return data.xpos[base] + points @ data.xmat[base].reshape(3, 3).T


class SceneRenderer:
    """Offscreen frames of one model from a fixed camera, goals drawn as spheres and traces as thin capsules."""

    def __init__(self, model: mujoco.MjModel, camera: mujoco.MjvCamera, width: int, height: int,
                 max_trace_segments: int = 60, shadow_size: int | None = None):
        """``shadow_size`` caps the shadow map (pixels): with software GL it costs most of a video frame."""
        ensure_framebuffer(model, width, height)
        if shadow_size is not None:
            model.vis.quality.shadowsize = min(model.vis.quality.shadowsize, shadow_size)
        self.model, self.camera = model, camera
        self.max_trace_segments = max_trace_segments
        self.renderer = mujoco.Renderer(model, height=height, width=width, max_geom=10000)

    def _add(self, kind: int, size: np.ndarray, pos: np.ndarray, rgba: np.ndarray) -> mujoco.MjvGeom | None:
        scene = self.renderer.scene
        if scene.ngeom >= scene.maxgeom:
            return None
        geom = scene.geoms[scene.ngeom]
        mujoco.mjv_initGeom(geom, kind, size, pos, np.eye(3).ravel(), np.asarray(rgba, dtype=np.float32))
        scene.ngeom += 1
        return geom

    def render(self, data: mujoco.MjData, goals: np.ndarray, colors: np.ndarray, goal_radius: float,
               traces: Sequence[np.ndarray] = (), trace_radius: float = 0.004) -> np.ndarray:
        """(H, W, 3) uint8 frame of ``data``; ``goals`` (n, 3) and each trace (m, 3) in world coordinates.

        Goal k is a translucent sphere and trace k a line in ``colors[k]``
        (RGBA); non-finite goals are skipped.
        """
        self.renderer.update_scene(data, self.camera)
        for goal, rgba in zip(goals, colors):
            if np.all(np.isfinite(goal)):
                self._add(mujoco.mjtGeom.mjGEOM_SPHERE, np.array([goal_radius, 0, 0]), goal,
                          np.array([*rgba[:3], 0.45]))
        for trace, rgba in zip(traces, colors):
            step = max(1, int(np.ceil((len(trace) - 1) / self.max_trace_segments)))
            points = np.concatenate([trace[::step], trace[-1:]]) if len(trace) > 1 else trace
            for a, b in zip(points[:-1], points[1:]):
                if np.linalg.norm(b - a) < 1e-6:
                    continue
                geom = self._add(mujoco.mjtGeom.mjGEOM_CAPSULE, np.zeros(3), np.zeros(3), np.array([*rgba[:3], 1.0]))
                if geom is not None:
                    mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_CAPSULE, trace_radius, a, b)
        return self.renderer.render()

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self) -> "SceneRenderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def caption(rgb: np.ndarray, title: str, lines: Sequence[str] = (),
            legend: Sequence[tuple[str, np.ndarray]] = ()) -> np.ndarray:
    """``rgb`` under a white band with ``title`` and ``lines``, and a legend (label, RGBA swatch) bottom left."""
    from PIL import Image, ImageDraw, ImageFont

    width = rgb.shape[1]
    size = max(12, width // 40)
    title_font, font = ImageFont.load_default(size=int(size * 1.15)), ImageFont.load_default(size=size)
    band = int(size * 1.6) * (1 + len(lines)) + size // 2
    band += -(rgb.shape[0] + band) % 16  # video codecs want sizes in multiples of 16
    image = Image.new("RGB", (width, rgb.shape[0] + band), "white")
    image.paste(Image.fromarray(np.ascontiguousarray(rgb[..., :3])), (0, band))
    draw = ImageDraw.Draw(image)
    draw.text((size // 2, size // 3), title, fill="black", font=title_font)
    for i, line in enumerate(lines):
        draw.text((size // 2, size // 3 + int(size * 1.6) * (i + 1)), line, fill=(60, 60, 60), font=font)
    y = image.height - int(size * 1.5) * len(legend) - size // 2
    if legend:  # on a white box: the scene behind may be dark
        right = 2 * size + max(int(draw.textlength(label, font=font)) for label, _ in legend) + size // 2
        draw.rectangle((size // 4, y - size // 3, right, image.height - size // 4), fill="white", outline=(150,) * 3)
    for i, (label, rgba) in enumerate(legend):
        top = y + int(size * 1.5) * i
        color = tuple(int(255 * c) for c in rgba[:3])
        draw.ellipse((size // 2, top, size // 2 + size, top + size), fill=color, outline="black")
        draw.text((2 * size, top - size // 8), label, fill="black", font=font)
    return np.asarray(image)


def goal_legend(end_effectors: Sequence[str], colors: np.ndarray, traces: bool = False
                ) -> list[tuple[str, np.ndarray]]:
    """Legend entries: each end effector's colour names its goal sphere (and its trace)."""
    what = "goal (sphere), path (line)" if traces else "goal (sphere)"
    return [(f"{ee}: {what}", rgba) for ee, rgba in zip(end_effectors, colors)]


def render_png(model: mujoco.MjModel, data: mujoco.MjData, path: str | Path, base_body: str,
               goals: np.ndarray, colors: np.ndarray, width: int = 640, height: int = 640,
               goal_radius: float = 0.02, camera: mujoco.MjvCamera | None = None) -> None:
    """Render ``data`` with goals ((n, 3), base frame) as spheres to a PNG; ``colors`` is (n, 4) RGBA.

    The camera defaults to one framing the robot's geoms and the goals.
    """
    mujoco.mj_forward(model, data)
    world_goals = base_to_world(data, model.body(base_body).id, goals)
    if camera is None:
        finite = world_goals[np.all(np.isfinite(world_goals), axis=1)]
        points = geom_corners(model, data, robot_geoms(model, base_body))
        camera = fit_camera(model, np.concatenate([points, finite - goal_radius, finite + goal_radius]),
                            width / height)
    with SceneRenderer(model, camera, width, height) as renderer:
        write_png(path, renderer.render(data, world_goals, colors, goal_radius))


def reach_and_render(robot: str, path: str | Path, seed: int = 0, model: str | None = None, seconds: float = 3.0,
                     control_period: float = 0.05, size: int = 720, goal_radius: float = 0.06,
                     end_effectors: list[str] | None = None) -> np.ndarray:
    """Drive ``robot`` from its home keyframe to goal set ``seed`` and render the end; returns the errors (m).

    Goals are translucent spheres of ``goal_radius`` (m), so a reached goal
    shows as a halo around its end effector; the picture is titled with the
    robot, the controller and the errors.

    The goal set is the first of ``sample_goal_sets(seed)`` (what ``mtpolicy goals --seed`` publishes
    first). The controller is the ONNX policy ``model`` (path or shipped name), or the damped-least-squares
    baseline when it is None; its velocities pass the controller node's clamp and are applied every
    ``control_period`` s for ``seconds`` s of simulated time. ``end_effectors`` defaults to the
    model's, else every site of the robot.
    """
    from mtpolicy import safety
    from mtpolicy.dls import DampedLeastSquares
    from mtpolicy.kinematics import Kinematics, sample_goal_sets
    from mtpolicy.observation import ObservationLayout, observe
    from mtpolicy.policy import OnnxPolicy
    from mtpolicy.robots import load_robot

    policy = None if model is None else OnnxPolicy(model)
    spec = load_robot(robot, end_effectors or (list(policy.contract.end_effectors) if policy else None))
    mj_model = spec.load_model()
    data = mujoco.MjData(mj_model)
    spec.reset_to_home(mj_model, data)
    kin = Kinematics(spec, mj_model)
    if policy is None:
        controller, name = DampedLeastSquares(kin, ObservationLayout.for_robot(spec.n_joints, spec.n_tasks)).velocity, \
            "damped least squares (DLS)"
    else:
        policy.check(spec)
        controller, name = policy, f"{policy.path.stem} ({policy.contract.method})"
    goals = sample_goal_sets(kin, np.random.default_rng(seed), 1)[0]
    actuators = spec.actuator_ids(mj_model)
    substeps = max(1, int(round(control_period / mj_model.opt.timestep)))
    for _ in range(int(round(seconds / control_period))):
        obs, _ = observe(kin, data.qpos[kin.qpos_adr], goals)
        data.ctrl[actuators] = safety.clamp_velocity(np.asarray(controller(obs), np.float64), spec.velocity_limits)[0]
        mujoco.mj_step(mj_model, data, nstep=substeps)
    errors = np.linalg.norm(kin.ee_positions(data.qpos[kin.qpos_adr]) - goals, axis=-1)
    colors = np.array([mj_model.site_rgba[mj_model.site(s).id] for s in spec.end_effectors])
    mujoco.mj_forward(mj_model, data)
    world_goals = base_to_world(data, mj_model.body(spec.base_body).id, goals)
    camera = fit_camera(mj_model, np.concatenate([geom_corners(mj_model, data, robot_geoms(mj_model, spec.base_body)),
                                                  world_goals - goal_radius, world_goals + goal_radius]))
    with SceneRenderer(mj_model, camera, size, size) as renderer:
        frame = renderer.render(data, world_goals, colors, goal_radius)
    write_png(path, caption(frame, f"{spec.name} driven by {name}: goal set {seed}, after {seconds:g} s",
                            ["end-effector error: " + ", ".join(f"{ee} {1e3 * e:.1f} mm"
                                                                for ee, e in zip(spec.end_effectors, errors))],
                            goal_legend(spec.end_effectors, colors)))
    return errors


def end_effectors_from_params(path: str | Path) -> list[str] | None:
    """The ``end_effectors`` of the ``sim`` (else ``goals``) node in a ROS parameters YAML, if it names any."""
    import yaml

    text = yaml.safe_load(Path(path).read_text()) or {}
    for node in ("sim", "goals"):
        ees = ((text.get(node) or {}).get("ros__parameters") or {}).get("end_effectors")
        if ees:
            return [str(e) for e in ees]
    return None


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mtpolicy render`` (and ``python -m mtpolicy.render``)."""
    parser.add_argument("--robot", default="humanoid", help="shipped robot name, robot folder or MJCF/URDF path")
    parser.add_argument("--params", help="ROS parameters YAML whose sim.end_effectors name the end effectors "
                        "(default: the model's, else every site)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the goal set")
    parser.add_argument("--model", help="ONNX policy (path or shipped name); default: the DLS baseline")
    parser.add_argument("--seconds", type=float, default=3.0, help="simulated seconds before the picture")
    parser.add_argument("--size", type=int, default=720, help="image width and height (pixels)")
    parser.add_argument("--goal-radius", type=float, default=0.06, help="radius of the goal spheres (m)")
    parser.add_argument("--out", default="reach.png", help="PNG to write")


def render_cli(ns: argparse.Namespace, prog: str) -> int:
    """Run the parsed options; a mistake in them is a one-line error (exit code 2)."""
    from mtpolicy.policy import ModelMismatch
    from mtpolicy.robots import RobotSpecError

    problems = [f"{name} must be > 0, got {value}" for name, value in (("--size", ns.size),
                ("--goal-radius", ns.goal_radius)) if value <= 0]
    problems += [f"--seconds must be >= 0, got {ns.seconds}"] if ns.seconds < 0 else []
    try:
        if problems:
            raise ValueError("; ".join(problems))
        end_effectors = end_effectors_from_params(ns.params) if ns.params else None
        errors = reach_and_render(ns.robot, ns.out, ns.seed, ns.model, ns.seconds, size=ns.size,
                                  goal_radius=ns.goal_radius, end_effectors=end_effectors)
    except (ValueError, RobotSpecError, ModelMismatch, OSError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    print(f"wrote {ns.out}: end-effector errors " + ", ".join(f"{1e3 * e:.1f} mm" for e in errors))
    return 0


def main(argv: list[str] | None = None) -> int:
    from mtpolicy.arguments import Parser

    parser = Parser(prog="python -m mtpolicy.render", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    add_render_arguments(parser)
    return render_cli(parser.parse_args(argv), parser.prog)


if __name__ == "__main__":
    raise SystemExit(main())
