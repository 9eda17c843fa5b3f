"""Compiling a robot's model file, MJCF or URDF, and checking its velocity servos.

A URDF works too: MuJoCo compiles it, and ``compile_model`` adds what a URDF
cannot say in MuJoCo's terms -- a velocity servo per joint with a ``<limit
velocity>`` (ctrlrange = that limit, kv such that the URDF ``effort`` is
reached at a 10 % velocity error) and the implicit-fast integrator they need,
a site at every link's origin named after the link (so links can be end
effectors), gravity compensation on every link, and no fusing of fixed-joint
links.

Every actuator must be a velocity servo (``<velocity kv=...>``: force = kv (ctrl -
qvel)), since the stack commands joint velocities. A servo that cannot track
its command -- a time constant M_jj / (kv + damping) above
``SERVO_TIME_CONSTANT_MAX`` at the home pose, or a steady-state velocity
kv / (kv + damping) below ``SERVO_STEADY_STATE_MIN`` of the command -- is
named in a ``ServoWarning``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np

from mtpolicy.robots import packages
from mtpolicy.robots.manifest import RobotSpecError
from mtpolicy.robots.packages import is_package_uri


class ServoWarning(UserWarning):
    """A velocity servo of the MJCF is too weak to track the commanded joint velocity."""


SERVO_TIME_CONSTANT_MAX = 0.01
"""s: largest velocity-servo time constant accepted silently (a fifth of the shipped models' 0.05 s control period)."""
SERVO_STEADY_STATE_MIN = 0.95
"""Smallest accepted steady-state fraction kv / (kv + joint damping) of a commanded velocity."""


def is_velocity_servo(model: mujoco.MjModel, actuator: int) -> bool:
    """Whether ``actuator`` applies kv (ctrl - qvel) with kv > 0, as ``<velocity>`` (and ``compile_model``) make."""
    kv = model.actuator_gainprm[actuator, 0]
    return (model.actuator_dyntype[actuator] == mujoco.mjtDyn.mjDYN_NONE
            and model.actuator_gaintype[actuator] == mujoco.mjtGain.mjGAIN_FIXED
            and model.actuator_biastype[actuator] == mujoco.mjtBias.mjBIAS_AFFINE and kv > 0
            and model.actuator_biasprm[actuator, 0] == 0 and model.actuator_biasprm[actuator, 1] == 0
            and np.isclose(model.actuator_biasprm[actuator, 2], -kv))


def servo_problems(model: mujoco.MjModel, joint_ids: list[int], home_keyframe: int | None) -> list[str]:
    """Why the velocity servos of ``joint_ids`` cannot track their commands (empty: they can).

    At the home pose (keyframe ``home_keyframe``, else qpos0), the servo of joint j with
    gain kv and joint damping b is a first-order lag of time constant
    M_jj / (kv + b) (M: joint-space inertia, armature included) that settles at
    kv / (kv + b) of the commanded velocity.
    """
    data = mujoco.MjData(model)
    mujoco.mj_resetData(model, data) if home_keyframe is None else mujoco.mj_resetDataKeyframe(model, data,
                                                                                                home_keyframe)
    mujoco.mj_forward(model, data)
    inertia = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, inertia, data.qM)
    actuator_of = {int(model.actuator_trnid[a, 0]): a for a in range(model.nu)}
    slow, weak = [], []
    for j in joint_ids:
        dof = model.jnt_dofadr[j]
        kv, damping = model.actuator_gainprm[actuator_of[j], 0], model.dof_damping[dof]
        tau, fraction = inertia[dof, dof] / (kv + damping), kv / (kv + damping)
        if tau > SERVO_TIME_CONSTANT_MAX:
            slow.append(f"{model.joint(j).name} {1e3 * tau:.0f} ms (kv {kv:g})")
        if fraction < SERVO_STEADY_STATE_MIN:
            weak.append(f"{model.joint(j).name} {100 * fraction:.0f} % (kv {kv:g}, damping {damping:g})")
    out = []
    if slow:
        out.append(f"velocity servos too slow to track (time constant > {1e3 * SERVO_TIME_CONSTANT_MAX:.0f} ms): "
                   + ", ".join(slow) + "; raise kv (docs/own_robot.md)")
    if weak:
        out.append(f"velocity servos settle below {100 * SERVO_STEADY_STATE_MIN:.0f} % of the command (joint "
                   "damping): " + ", ".join(weak) + "; raise kv or lower the damping")
    return out


URDF_KV_EFFORT_FRACTION = 0.1
"""URDF velocity servos reach the joint's ``effort`` limit at this fraction of its velocity limit as error."""
URDF_MOVABLE = ("revolute", "continuous", "prismatic")
"""URDF joint types a velocity command moves (each gets a velocity servo)."""


def compile_model(path: str | Path) -> mujoco.MjModel:
    """The MuJoCo model of an MJCF, or of a URDF made drivable (see the module docstring): each call its own copy
    of a model compiled once per process for the file's content and the paths its ``package://`` URIs resolve on
    (the files it includes, meshes among them, are taken as unchanged while the process runs; a robot with meshes
    takes seconds to compile).

    Raises RobotSpecError with MuJoCo's reason when it cannot compile the file.
    """
    path = Path(path).resolve()
    try:
        content = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:  # MuJoCo names what is wrong
        content = None
    try:
        return copy.copy(_compiled(path, content, *packages.search_path())) if content else _compile(path)
    except RobotSpecError:
        raise
    except ValueError as e:
        reason = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
        raise RobotSpecError(f"MuJoCo cannot compile {path.name}: {reason}") from None


@functools.lru_cache(maxsize=8)
def _compiled(path: Path, content: str, *search_path: str) -> mujoco.MjModel:
    """``_compile(path)``, cached by the path, the SHA-256 of its content and the package search path."""
    return _compile(path)


def _compile(path: Path) -> mujoco.MjModel:
    if path.suffix.lower() != ".urdf":
        spec = mujoco.MjSpec.from_file(str(path))
        for asset in [*spec.meshes, *spec.textures]:
            if is_package_uri(asset.file):
                asset.file = str(_resolve_asset(path, asset.file))
        return spec.compile()
    spec = urdf_spec(path)
    spec.compiler.fusestatic = False
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST  # stiff velocity servos need it
    for body in spec.worldbody.find_all(mujoco.mjtObj.mjOBJ_BODY):
        body.gravcomp = 1.0
        body.add_site(name=body.name)
    for joint in ET.parse(path).getroot().iter("joint"):
        limit = joint.find("limit")
        velocity_text = None if limit is None else limit.get("velocity")
        if joint.get("type") not in URDF_MOVABLE or limit is None or velocity_text is None:
            continue
        velocity, effort = float(velocity_text), float(limit.get("effort", "0"))
        if velocity <= 0 or effort <= 0:
            raise RobotSpecError(f"{path}: joint {joint.get('name')!r} needs <limit velocity> and effort > 0")
        kv = effort / (URDF_KV_EFFORT_FRACTION * velocity)
        spec.add_actuator(name=joint.get("name"), target=joint.get("name"), trntype=mujoco.mjtTrn.mjTRN_JOINT,
                          ctrlrange=[-velocity, velocity], gainprm=[kv] + [0] * 9, biasprm=[0, 0, -kv] + [0] * 7,
                          gaintype=mujoco.mjtGain.mjGAIN_FIXED, biastype=mujoco.mjtBias.mjBIAS_AFFINE)
    return spec.compile()


def _resolve_asset(path: Path, uri: str) -> Path:
    try:
        return packages.resolve(uri)
    except packages.PackageNotFound as e:
        raise RobotSpecError(f"{path.name}: mesh {e}") from None


def urdf_spec(path: str | Path) -> mujoco.MjSpec:
    """MuJoCo's parse of a URDF, its meshes found where the URDF says: ``package://NAME/...`` through the package
    path (``mtpolicy.robots.packages``), a relative path from the URDF's folder (MuJoCo alone keeps only each mesh
    file's name, looked up beside the URDF)."""
    path = Path(path)
    spec = mujoco.MjSpec.from_file(str(path))
    files: dict[str, set[Path]] = {}
    for mesh in ET.parse(path).getroot().iter("mesh"):
        name = mesh.get("filename")
        if name:
            found = _resolve_asset(path, name) if is_package_uri(name) else path.parent / name
            files.setdefault(Path(name).name, set()).add(found.resolve())
    for mesh in spec.meshes:
        paths = files.get(Path(mesh.file).name)
        if paths and len(paths) > 1:
            raise RobotSpecError(f"{path.name}: mesh files named {mesh.file!r} in several folders: {sorted(paths)}")
        if paths:
            mesh.file = str(next(iter(paths)))
    spec.strippath = False  # the URDF parser's default would strip those folders again when compiling
    return spec
