"""Offscreen pictures of a robot with its goals (spheres) and end-effector traces: the drawing that the sim node's
``~/render`` service and the tools' pictures and videos (``mtpolicy_tools.render``, ``.demo_media``) share.

MuJoCo renders through the GL backend named by ``MUJOCO_GL`` (``egl`` for
headless machines), which must be set before mujoco is first imported;
the sim node and the ``mtpolicy`` CLI set it by default. The camera keeps the MJCF's
``<global azimuth elevation>`` and is placed so that given points (the robot's
geoms over a motion, the goals) fill the frame; the offscreen framebuffer
grows to the requested image size.
"""

from __future__ import annotations

import struct
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
