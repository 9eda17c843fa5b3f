"""Robot models (one folder per robot, Menagerie style) and their RobotSpec.

A robot is a folder: an MJCF file and a manifest, ``robot.yaml``, stating
what the MJCF cannot (end effectors, reach tolerance, home keyframe, default
model, ...: ``manifest.py``). Everything else the stack needs is derived from
the compiled model, never written down twice:

* the actuated joints on some end effector's chain, in actuator order, with
  position limits (joint ``range``) and velocity limits (velocity actuator
  ``ctrlrange``): the joints a reach policy commands. Actuated joints on no
  chain (a humanoid's legs and head) are *held*: commanded velocity 0;
* the end effectors (sites) and, for each, the actuated joints on the
  kinematic chain from the robot's base to it;
* the shared joints (on more than one chain: DiGrad's ``a_s``) and the
  dedicated ones (``a_i^d``).

A URDF works too: MuJoCo compiles it, and ``compile_model`` adds what a URDF
cannot say in MuJoCo's terms -- a velocity servo per joint with a ``<limit
velocity>`` (ctrlrange = that limit, kv such that the URDF ``effort`` is
reached at a 10 % velocity error) and the implicit-fast integrator they need,
a site at every link's origin named after the link (so links can be end
effectors), gravity compensation on every link, and no fusing of fixed-joint
links.

Positions (end effectors, goals) are expressed in the robot's base frame: the
frame of the root body the actuated joints hang from, which is also the
``frame_id`` goals must carry over ROS 2. That body must not move: a root body
with a joint of its own is refused (put the robot inside a joint-less base body).

Every actuator must be a velocity servo (``<velocity kv=...>``: force = kv (ctrl -
qvel)), since the stack commands joint velocities. A servo that cannot track
its command -- a time constant M_jj / (kv + damping) above
``SERVO_TIME_CONSTANT_MAX`` at the home pose, or a steady-state velocity
kv / (kv + damping) below ``SERVO_STEADY_STATE_MIN`` of the command -- is
named in a ``ServoWarning``.
"""

from __future__ import annotations

import hashlib
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from mtpolicy.robots import packages
from mtpolicy.robots.packages import is_package_uri
from mtpolicy.robots.manifest import (DEFAULT_ROBOT, ROBOTS_DIR, JointLimits, RobotManifest, RobotSpecError,
                                      find_robot, implausible_limit, robot_folder, shipped_robots)

__all__ = ["DEFAULT_ROBOT", "ROBOTS_DIR", "JointLimits", "RobotManifest", "RobotSpec", "RobotSpecError",
           "ServoWarning", "compile_model", "find_robot", "load_robot", "robot_folder", "shipped_robots"]


class ServoWarning(UserWarning):
    """A velocity servo of the MJCF is too weak to track the commanded joint velocity."""


SERVO_TIME_CONSTANT_MAX = 0.01
"""s: largest velocity-servo time constant accepted silently (a fifth of the shipped models' 0.05 s control period)."""
SERVO_STEADY_STATE_MIN = 0.95
"""Smallest accepted steady-state fraction kv / (kv + joint damping) of a commanded velocity."""


@dataclass(frozen=True)
class RobotSpec:
    """Joint order, limits, end effectors and action groups of one robot."""

    name: str
    """Robot name (the MJCF folder name for shipped robots)."""
    scene_path: Path
    """MJCF to simulate (robot plus floor and lights)."""
    mjcf_sha256: str
    """SHA-256 of the robot's MJCF text, part of the policy contract."""
    base_body: str
    """Root body of the robot; its frame is the frame of every position."""
    joint_names: tuple[str, ...]
    """Actuated joints on an end-effector chain, in actuator (= action) order."""
    joint_limits: np.ndarray
    """(n_joints, 2) lower and upper position limits in rad."""
    velocity_limits: np.ndarray
    """(n_joints,) symmetric velocity limits in rad/s."""
    end_effectors: tuple[str, ...]
    """End-effector site names; one reach task each."""
    chain_mask: np.ndarray
    """(n_end_effectors, n_joints) bool: joint j is on the chain of task i."""
    held_joints: tuple[str, ...] = ()
    """Actuated joints on no end-effector chain, held still (velocity 0) in the reach tasks."""
    robot_file: str = ""
    """The hashed MJCF: its path inside this package for shipped robots, else its absolute path."""
    home_keyframe: int | None = None
    """Index of the home keyframe (None: the MJCF's default configuration)."""
    acceleration_limits: np.ndarray | None = None
    """(n_joints,) symmetric acceleration limits (rad/s^2 or m/s^2) from the manifest; inf where none is given."""
    effort_limits: np.ndarray | None = None
    """(n_joints,) symmetric effort limits (N m or N): the manifest's, else the servo's forcerange; inf if none."""
    slide_mask: np.ndarray | None = None
    """(n_joints,) bool: prismatic (slide) joints, whose units are m, m/s (the others: rad, rad/s)."""

    def __post_init__(self) -> None:
        if self.acceleration_limits is None:  # unlimited
            object.__setattr__(self, "acceleration_limits", np.full(len(self.joint_names), np.inf))

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def n_tasks(self) -> int:
        return len(self.end_effectors)

    @property
    def shared_mask(self) -> np.ndarray:
        """(n_joints,) bool: joints on more than one chain (DiGrad's a_s)."""
        return self.chain_mask.sum(axis=0) > 1

    def load_model(self) -> mujoco.MjModel:
        return compile_model(self.scene_path)

    def reset_to_home(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """Reset ``data`` to the home keyframe (the MJCF's default configuration without one)."""
        if self.home_keyframe is None:
            mujoco.mj_resetData(model, data)
        else:
            mujoco.mj_resetDataKeyframe(model, data, self.home_keyframe)

    def actuator_ids(self, model: mujoco.MjModel, joints: list[str] | tuple[str, ...] | None = None) -> np.ndarray:
        """Index of the actuator driving each of ``joints`` (default: ``joint_names``), in that order."""
        actuator_of = {model.joint(int(model.actuator_trnid[a, 0])).name: a for a in range(model.nu)}
        return np.array([actuator_of[j] for j in (self.joint_names if joints is None else joints)], dtype=int)

    @classmethod
    def from_mjcf(cls, path: str | Path, end_effectors: list[str] | tuple[str, ...] | None = None,
                  name: str | None = None, robot_file: str | Path | None = None,
                  joints: tuple[str, ...] | None = None, limit_overrides: dict[str, JointLimits] | None = None,
                  home: str | None = None) -> "RobotSpec":
        """Derive a spec from an MJCF (or URDF, which MuJoCo compiles).

        ``end_effectors`` names sites or bodies; when omitted, every site of
        the model is an end effector. A body name is turned into the body's
        own site if it has exactly one. ``robot_file`` is the file hashed for
        the contract (defaults to ``path``). ``joints`` restricts the joints
        served (the others are held), ``limit_overrides`` narrow joints' limits, and
        ``home`` names the home keyframe (default: the first, if any).
        """
        path = Path(path).resolve()
        model = compile_model(path)
        robot_file = Path(robot_file).resolve() if robot_file else path
        sha = hashlib.sha256(robot_file.read_bytes()).hexdigest()

        joint_ids, vel_limits, efforts = [], [], []
        for a in range(model.nu):
            if model.actuator_trntype[a] != mujoco.mjtTrn.mjTRN_JOINT:
                raise RobotSpecError(f"actuator {model.actuator(a).name or a!r} does not drive a joint")
            j = int(model.actuator_trnid[a, 0])
            if model.jnt_type[j] not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
                raise RobotSpecError(f"joint {model.joint(j).name!r} is not a hinge or slide")
            if not is_velocity_servo(model, a):
                raise RobotSpecError(f"actuator {model.actuator(a).name or a!r} (joint {model.joint(j).name!r}) is "
                                     "not a velocity servo: this stack commands joint velocities, so use "
                                     "<velocity kv=... ctrlrange=\"-v v\"> (a <motor> takes torques); "
                                     "see docs/own_robot.md")
            if not model.actuator_ctrllimited[a]:
                raise RobotSpecError(f"actuator {model.actuator(a).name!r} has no ctrlrange (velocity limit)")
            lo, hi = model.actuator_ctrlrange[a]
            problem = implausible_limit("velocity", min(-lo, hi), model.jnt_type[j] == mujoco.mjtJoint.mjJNT_SLIDE)
            if problem:
                raise RobotSpecError(f"{path.name}: actuator {model.actuator(a).name or a!r} (joint "
                                     f"{model.joint(j).name!r}): {problem}: its ctrlrange must be the joint's velocity "
                                     "limit (a torque motor's range kept as one?); mtpolicy import-robot --velocity "
                                     "sets the vendor's (docs/own_robot.md)")
            joint_ids.append(j)
            vel_limits.append(min(-lo, hi))
            efforts.append(min(-model.actuator_forcerange[a, 0], model.actuator_forcerange[a, 1])
                           if model.actuator_forcelimited[a] else np.inf)
        if not joint_ids:
            raise RobotSpecError(f"{path}: no actuators")
        limits = np.array([model.jnt_range[j] if model.jnt_limited[j] else (-np.inf, np.inf)
                           for j in joint_ids], dtype=np.float64)

        if end_effectors is None:
            end_effectors = [model.site(i).name for i in range(model.nsite)]
        site_names = []
        for ee in end_effectors:
            if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, ee) >= 0:
                site_names.append(ee)
                continue
            b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, ee)
            sites = [i for i in range(model.nsite) if b >= 0 and model.site_bodyid[i] == b]
            if len(sites) != 1:
                raise RobotSpecError(f"end effector {ee!r} is neither a site nor a body with exactly one site")
            site_names.append(model.site(sites[0]).name)
        if not site_names:
            raise RobotSpecError(f"{path}: no end-effector sites")

        mask = np.zeros((len(site_names), len(joint_ids)), dtype=bool)
        for i, site in enumerate(site_names):
            body = int(model.site_bodyid[model.site(site).id])
            while body > 0:
                for k, j in enumerate(joint_ids):
                    if model.jnt_bodyid[j] == body:
                        mask[i, k] = True
                body = int(model.body_parentid[body])
            if not mask[i].any():
                raise RobotSpecError(f"end effector {site!r} has no actuated joint on its chain")
        on_chain = mask.any(axis=0)
        if joints is not None:
            names = [model.joint(j).name for j in joint_ids]
            missing = [j for j in joints if j not in names or not on_chain[names.index(j)]]
            if missing:
                raise RobotSpecError(f"{path.name}: joints {missing} are not actuated joints on an end "
                                     "effector's chain")
            on_chain &= np.isin(names, joints)
            if not mask[:, on_chain].any(axis=1).all():
                raise RobotSpecError(f"{path.name}: joints {list(joints)} leave an end effector with none to move it")
        held = tuple(model.joint(j).name for j, keep in zip(joint_ids, on_chain) if not keep)
        joint_ids = [j for j, keep in zip(joint_ids, on_chain) if keep]
        vel_limits, limits, mask = np.array(vel_limits)[on_chain], limits[on_chain], mask[:, on_chain]
        efforts, accelerations = np.array(efforts)[on_chain], np.full(len(joint_ids), np.inf)

        served = [model.joint(j).name for j in joint_ids]
        overrides = {j: o for j, o in (limit_overrides or {}).items() if j not in held}  # held: only recorded
        _narrow_limits(path, served, limits, vel_limits, overrides)
        for joint, override in (limit_overrides or {}).items():
            slide = model.jnt_type[model.joint(joint).id] == mujoco.mjtJoint.mjJNT_SLIDE
            for kind in ("acceleration", "effort"):
                problem = getattr(override, kind) and implausible_limit(kind, getattr(override, kind), slide)
                if problem:
                    raise RobotSpecError(f"{path.name}: manifest limits of {joint!r}: {problem}")
        for joint, override in overrides.items():
            k = served.index(joint)
            accelerations[k] = override.acceleration or accelerations[k]
            efforts[k] = override.effort or efforts[k]
        roots = {int(model.body_rootid[model.jnt_bodyid[j]]) for j in joint_ids}
        if len(roots) != 1:
            raise RobotSpecError(f"{path}: actuated joints hang from several root bodies")
        root = roots.pop()
        base = model.body(root).name
        if model.body_jntnum[root]:
            moving = [model.joint(j).name for j in range(model.njnt) if model.jnt_bodyid[j] == root]
            free = any(model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE for j in range(model.njnt)
                       if model.jnt_bodyid[j] == root)
            mount = next(n for n in ("base", "base_mount", *(f"base_mount{i}" for i in range(2, 99)))
                         if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n) < 0)
            fix = ("a floating base: remove its free joint to fix it to the world (mtpolicy import-robot does, "
                   "holding the legs)") if free else (f"put it inside a joint-less body, <worldbody><body "
                                                      f"name=\"{mount}\"> <body name=\"{base}\" ...> ... </body>"
                                                      "</body> (mtpolicy import-robot does)")
            raise RobotSpecError(f"{path.name}: root body {base!r} carries joint(s) {moving}, so the base frame "
                                 f"would move; {fix} (docs/own_robot.md)")
        home_keyframe = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, home) if home else (0 if model.nkey else None)
        if home_keyframe == -1:
            raise RobotSpecError(f"{path.name}: no keyframe {home!r} (the home keyframe)")
        for problem in servo_problems(model, joint_ids, home_keyframe):
            warnings.warn(f"{path.name}: {problem}", ServoWarning, stacklevel=2)
        return cls(name=name or model.names[:model.names.index(b"\0")].decode() or path.stem,
                   scene_path=path, mjcf_sha256=sha, base_body=base,
                   joint_names=tuple(model.joint(j).name for j in joint_ids),
                   joint_limits=limits, velocity_limits=vel_limits,
                   end_effectors=tuple(site_names), chain_mask=mask, held_joints=held, home_keyframe=home_keyframe,
                   acceleration_limits=accelerations, effort_limits=efforts,
                   slide_mask=np.array([model.jnt_type[j] == mujoco.mjtJoint.mjJNT_SLIDE for j in joint_ids]),
                   robot_file=str(robot_file.relative_to(ROBOTS_DIR.parent.parent))
                   if robot_file.is_relative_to(ROBOTS_DIR) else str(robot_file))


def _narrow_limits(path: Path, joints: list[str], limits: np.ndarray, velocity_limits: np.ndarray,
                   overrides: dict[str, JointLimits]) -> None:
    """Replace the position and velocity limits of ``joints`` (in place) by the ones ``overrides`` give, each
    within the MJCF's."""
    for joint, override in overrides.items():
        if joint not in joints:
            raise RobotSpecError(f"{path.name}: limits given for {joint!r}, not a joint served ({joints})")
        k = joints.index(joint)
        if override.position is not None:
            if override.position[0] < limits[k, 0] or override.position[1] > limits[k, 1]:
                raise RobotSpecError(f"{path.name}: position limits {list(override.position)} of {joint!r} "
                                     f"exceed its range {limits[k].tolist()}")
            limits[k] = override.position
        if override.velocity is not None:
            if override.velocity > velocity_limits[k]:
                raise RobotSpecError(f"{path.name}: velocity limit {override.velocity} of {joint!r} exceeds "
                                     f"its servo's ctrlrange {velocity_limits[k]}")
            velocity_limits[k] = override.velocity


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
    """The MuJoCo model of an MJCF, or of a URDF made drivable (see the module docstring).

    Raises RobotSpecError with MuJoCo's reason when it cannot compile the file.
    """
    path = Path(path)
    try:
        return _compile(path)
    except RobotSpecError:
        raise
    except ValueError as e:
        reason = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
        raise RobotSpecError(f"MuJoCo cannot compile {path.name}: {reason}") from None


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
        if joint.get("type") not in URDF_MOVABLE or limit is None \
                or limit.get("velocity") is None:
            continue
        velocity, effort = float(limit.get("velocity")), float(limit.get("effort", "0"))
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
    files = {}
    for mesh in ET.parse(path).getroot().iter("mesh"):
        name = mesh.get("filename")
        if name:
            found = _resolve_asset(path, name) if is_package_uri(name) else path.parent / name
            files.setdefault(Path(name).name, set()).add(found.resolve())
    for mesh in spec.meshes:
        found = files.get(Path(mesh.file).name)
        if found and len(found) > 1:
            raise RobotSpecError(f"{path.name}: mesh files named {mesh.file!r} in several folders: {sorted(found)}")
        if found:
            mesh.file = str(next(iter(found)))
    spec.strippath = False  # the URDF parser's default would strip those folders again when compiling
    return spec


def load_robot(name_or_path: str | Path, end_effectors: list[str] | tuple[str, ...] | None = None) -> RobotSpec:
    """The RobotSpec of a robot ``find_robot`` finds: a shipped name, a robot folder, or an MJCF/URDF file.

    ``end_effectors`` (default: the manifest's; every site of a bare file) picks the reach tasks.
    """
    robot = find_robot(name_or_path)
    return RobotSpec.from_mjcf(robot.scene_path, end_effectors or robot.end_effectors, name=robot.name,
                               robot_file=robot.mjcf_path, joints=robot.joints, limit_overrides=robot.limits,
                               home=robot.home)
