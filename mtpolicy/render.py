"""Offscreen pictures of a robot with its goals drawn as spheres (no ROS, no image library).

MuJoCo renders through the GL backend named by ``MUJOCO_GL`` (``egl`` for
headless machines), which must be set before mujoco is first imported;
``mtpolicy.nodes`` and the CLI set it by default.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

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


def render_png(model: mujoco.MjModel, data: mujoco.MjData, path: str | Path, base_body: str,
               goals: np.ndarray, colors: np.ndarray, width: int = 640, height: int = 640,
               goal_radius: float = 0.02) -> None:
    """Render ``data`` from the model's free camera looking at the base; goals ((n, 3), base frame) as spheres.

    Rows of ``goals`` that are not finite are skipped; ``colors`` is (n, 4) RGBA.
    """
    mujoco.mj_forward(model, data)
    base = model.body(base_body).id
    origin, rot = data.xpos[base], data.xmat[base].reshape(3, 3)
    camera = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, camera)
    camera.lookat[:] = origin
    camera.distance = 1.6 * model.stat.extent
    renderer = mujoco.Renderer(model, height=height, width=width)
    try:
        renderer.update_scene(data, camera)
        scene = renderer.scene
        for goal, rgba in zip(goals, colors):
            if not np.all(np.isfinite(goal)) or scene.ngeom >= scene.maxgeom:
                continue
            mujoco.mjv_initGeom(scene.geoms[scene.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE,
                                np.array([goal_radius, 0, 0]), origin + rot @ goal, np.eye(3).ravel(),
                                np.array([rgba[0], rgba[1], rgba[2], 0.45], dtype=np.float32))
            scene.ngeom += 1
        write_png(path, renderer.render())
    finally:
        renderer.close()
