"""Offscreen pictures of a robot with its goals drawn as spheres (no ROS, no image library).

MuJoCo renders through the GL backend named by ``MUJOCO_GL`` (``egl`` for
headless machines), which must be set before mujoco is first imported;
the sim node and the ``mtpolicy`` CLI set it by default. As a script, it drives a
robot to one random reachable goal set in MuJoCo (no ROS) and saves the
picture:

    MUJOCO_GL=egl python -m mtpolicy.render --robot humanoid --seed 3 --out docs/humanoid_reach.png
    MUJOCO_GL=egl python -m mtpolicy.render --robot humanoid --model humanoid_digrad --out reach.png
"""

from __future__ import annotations

import argparse
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
               goal_radius: float = 0.02, lookat: np.ndarray | None = None) -> None:
    """Render ``data`` from the model's free camera; goals ((n, 3), base frame) as spheres.

    The camera looks at world point ``lookat`` (default: the base origin) from
    the MJCF's ``<global azimuth elevation>``, 1.6 ``<statistic extent>``
    away. Rows of ``goals`` that are not finite are skipped; ``colors`` is
    (n, 4) RGBA.
    """
    mujoco.mj_forward(model, data)
    base = model.body(base_body).id
    origin, rot = data.xpos[base], data.xmat[base].reshape(3, 3)
    camera = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, camera)
    camera.lookat[:] = origin if lookat is None else lookat
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


def reach_and_render(robot: str, path: str | Path, seed: int = 0, model: str | None = None, seconds: float = 3.0,
                     control_period: float = 0.05, size: int = 720, goal_radius: float = 0.06) -> np.ndarray:
    """Drive ``robot`` from its home keyframe to goal set ``seed`` and render the end; returns the errors (m).

    The camera looks at the MJCF's ``<statistic center>``; goals are translucent spheres of
    ``goal_radius`` (m), so a reached goal shows as a halo around its end effector.

    The goal set is the first of ``sample_goal_sets(seed)`` (what ``mtpolicy goals --seed`` publishes
    first). The controller is the ONNX policy ``model`` (path or shipped name), or the damped-least-squares
    baseline when it is None; its velocities pass the controller node's clamp and are applied every
    ``control_period`` s for ``seconds`` s of simulated time.
    """
    from mtpolicy import safety
    from mtpolicy.dls import DampedLeastSquares
    from mtpolicy.kinematics import Kinematics, sample_goal_sets
    from mtpolicy.observation import ObservationLayout, observe
    from mtpolicy.policy import OnnxPolicy
    from mtpolicy.robots import load_robot

    spec = load_robot(robot)
    mj_model = spec.load_model()
    data = mujoco.MjData(mj_model)
    mujoco.mj_resetDataKeyframe(mj_model, data, 0) if mj_model.nkey else mujoco.mj_resetData(mj_model, data)
    kin = Kinematics(spec, mj_model)
    if model is None:
        controller = DampedLeastSquares(kin, ObservationLayout.for_robot(spec.n_joints, spec.n_tasks)).velocity
    else:
        controller = OnnxPolicy(model)
        controller.check(spec)
    goals = sample_goal_sets(kin, np.random.default_rng(seed), 1)[0]
    actuators = spec.actuator_ids(mj_model)
    substeps = int(round(control_period / mj_model.opt.timestep))
    for _ in range(int(round(seconds / control_period))):
        obs, _ = observe(kin, data.qpos[kin.qpos_adr], goals)
        data.ctrl[actuators] = safety.clamp_velocity(np.asarray(controller(obs), np.float64), spec.velocity_limits)[0]
        mujoco.mj_step(mj_model, data, nstep=substeps)
    ee = kin.ee_positions(data.qpos[kin.qpos_adr])
    colors = np.array([mj_model.site_rgba[mj_model.site(s).id] for s in spec.end_effectors])
    render_png(mj_model, data, path, spec.base_body, goals, colors, size, size, goal_radius=goal_radius,
               lookat=mj_model.stat.center)
    return np.linalg.norm(ee - goals, axis=-1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtpolicy.render", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robot", default="humanoid", help="shipped robot name or MJCF/URDF path")
    parser.add_argument("--seed", type=int, default=0, help="seed of the goal set")
    parser.add_argument("--model", help="ONNX policy (path or shipped name); default: the DLS baseline")
    parser.add_argument("--seconds", type=float, default=3.0, help="simulated seconds before the picture")
    parser.add_argument("--size", type=int, default=720, help="image width and height (pixels)")
    parser.add_argument("--goal-radius", type=float, default=0.06, help="radius of the goal spheres (m)")
    parser.add_argument("--out", default="reach.png", help="PNG to write")
    ns = parser.parse_args(argv)
    errors = reach_and_render(ns.robot, ns.out, ns.seed, ns.model, ns.seconds, size=ns.size,
                              goal_radius=ns.goal_radius)
    print(f"wrote {ns.out}: end-effector errors " + ", ".join(f"{1e3 * e:.1f} mm" for e in errors))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
