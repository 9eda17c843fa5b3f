"""``RobotSpec``: what the stack needs of a robot, derived from its compiled model (``mtpolicy.robots``).

Positions (end effectors, goals) are expressed in the robot's base frame: the
frame of the root body the actuated joints hang from, which is also the
``frame_id`` goals must carry over ROS 2. That body must not move: a root body
with a joint of its own is refused (put the robot inside a joint-less base body).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from mtpolicy.robots.manifest import ROBOTS_DIR, JointLimits, RobotSpecError, implausible_limit
from mtpolicy.robots.mjcf import ServoWarning, compile_model, is_velocity_servo, servo_problems


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
    acceleration_limits: np.ndarray = None  # type: ignore[assignment]  # None given: all inf (__post_init__)
    """(n_joints,) symmetric acceleration limits (rad/s^2 or m/s^2) from the manifest; inf where none is given."""
    effort_limits: np.ndarray | None = None
    """(n_joints,) symmetric effort limits (N m or N): the manifest's, else the servo's forcerange; inf if none."""
    slide_mask: np.ndarray | None = None
    """(n_joints,) bool: prismatic (slide) joints, whose units are m, m/s (the others: rad, rad/s)."""
    collision_clearance: float = 0.0
    """The collision guard's least clearance (m) from the manifest (``safety.CollisionGuard``)."""

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
    def search_limits(self) -> np.ndarray:
        """(n_joints, 2) the position limits that random configurations and IK solutions keep to: the joint limits,
        but [-pi, pi] for a joint whose range exceeds one turn (an unlimited one: its angles repeat)."""
        one_turn = self.joint_limits[:, 1] - self.joint_limits[:, 0] > 2 * np.pi
        return np.where(one_turn[:, None], [-np.pi, np.pi], self.joint_limits)

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
        joint_ids, velocity_limits, efforts = _actuated_joints(model, path)
        sites = _end_effector_sites(model, end_effectors, path)
        mask = _chain_mask(model, sites, joint_ids)
        served = _served(model, path, joint_ids, mask, joints)
        held = tuple(model.joint(j).name for j, keep in zip(joint_ids, served) if not keep)
        joint_ids = [j for j, keep in zip(joint_ids, served) if keep]
        names = [model.joint(j).name for j in joint_ids]
        limits = np.array([model.jnt_range[j] if model.jnt_limited[j] else (-np.inf, np.inf) for j in joint_ids],
                          dtype=np.float64)
        velocity_limits, efforts = velocity_limits[served], efforts[served]
        accelerations = _manifest_limits(model, path, names, held, limits, velocity_limits, efforts,
                                         limit_overrides or {})
        home_keyframe = _home_keyframe(model, home, path)
        for problem in servo_problems(model, joint_ids, home_keyframe):
            warnings.warn(f"{path.name}: {problem}", ServoWarning, stacklevel=2)
        return cls(name=name or model.names[:model.names.index(b"\0")].decode() or path.stem,
                   scene_path=path, mjcf_sha256=hashlib.sha256(robot_file.read_bytes()).hexdigest(),
                   base_body=_base_body(model, joint_ids, path), joint_names=tuple(names),
                   joint_limits=limits, velocity_limits=velocity_limits,
                   end_effectors=tuple(sites), chain_mask=mask[:, served], held_joints=held,
                   home_keyframe=home_keyframe, acceleration_limits=accelerations, effort_limits=efforts,
                   slide_mask=np.array([model.jnt_type[j] == mujoco.mjtJoint.mjJNT_SLIDE for j in joint_ids]),
                   robot_file=str(robot_file.relative_to(ROBOTS_DIR.parent.parent))
                   if robot_file.is_relative_to(ROBOTS_DIR) else str(robot_file))


def _actuated_joints(model: mujoco.MjModel, path: Path) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The joint driven by each actuator, in actuator order, with its velocity limit (the servo's ctrlrange) and
    effort limit (its forcerange; inf without one); RobotSpecError for an actuator that is not a velocity servo of
    a hinge or slide with a plausible ctrlrange."""
    joint_ids, velocity_limits, efforts = [], [], []
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
        velocity_limits.append(min(-lo, hi))
        efforts.append(min(-model.actuator_forcerange[a, 0], model.actuator_forcerange[a, 1])
                       if model.actuator_forcelimited[a] else np.inf)
    if not joint_ids:
        raise RobotSpecError(f"{path}: no actuators")
    return joint_ids, np.array(velocity_limits), np.array(efforts)


def _end_effector_sites(model: mujoco.MjModel, end_effectors: list[str] | tuple[str, ...] | None,
                        path: Path) -> list[str]:
    """The site of each end effector (a site, or a body with exactly one site); every site if None."""
    if end_effectors is None:
        end_effectors = [model.site(i).name for i in range(model.nsite)]
    sites = []
    for ee in end_effectors:
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, ee) >= 0:
            sites.append(ee)
            continue
        b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, ee)
        own = [i for i in range(model.nsite) if b >= 0 and model.site_bodyid[i] == b]
        if len(own) != 1:
            raise RobotSpecError(f"end effector {ee!r} is neither a site nor a body with exactly one site")
        sites.append(model.site(own[0]).name)
    if not sites:
        raise RobotSpecError(f"{path}: no end-effector sites")
    return sites


def _chain_mask(model: mujoco.MjModel, sites: list[str], joint_ids: list[int]) -> np.ndarray:
    """(n_sites, n_joints) bool: joint k lies on the kinematic chain from the root to site i."""
    mask = np.zeros((len(sites), len(joint_ids)), dtype=bool)
    for i, site in enumerate(sites):
        body = int(model.site_bodyid[model.site(site).id])
        while body > 0:
            for k, j in enumerate(joint_ids):
                if model.jnt_bodyid[j] == body:
                    mask[i, k] = True
            body = int(model.body_parentid[body])
        if not mask[i].any():
            raise RobotSpecError(f"end effector {site!r} has no actuated joint on its chain")
    return mask


def _served(model: mujoco.MjModel, path: Path, joint_ids: list[int], mask: np.ndarray,
            joints: tuple[str, ...] | None) -> np.ndarray:
    """(n_joints,) bool: the joints served, those on some end effector's chain (and among ``joints`` if given)."""
    served = np.asarray(mask.any(axis=0))
    if joints is None:
        return served
    names = [model.joint(j).name for j in joint_ids]
    missing = [j for j in joints if j not in names or not served[names.index(j)]]
    if missing:
        raise RobotSpecError(f"{path.name}: joints {missing} are not actuated joints on an end effector's chain")
    served &= np.isin(names, joints)
    if not mask[:, served].any(axis=1).all():
        raise RobotSpecError(f"{path.name}: joints {list(joints)} leave an end effector with none to move it")
    return served


def _manifest_limits(model: mujoco.MjModel, path: Path, served: list[str], held: tuple[str, ...],
                     limits: np.ndarray, velocity_limits: np.ndarray, efforts: np.ndarray,
                     overrides: dict[str, JointLimits]) -> np.ndarray:
    """Apply the manifest's limits of the ``served`` joints (in place: position and velocity limits narrowed,
    efforts replaced); the acceleration limits (inf where none). A held joint's are only checked."""
    for joint, override in overrides.items():
        slide = model.jnt_type[model.joint(joint).id] == mujoco.mjtJoint.mjJNT_SLIDE
        for kind in ("acceleration", "effort"):
            problem = getattr(override, kind) and implausible_limit(kind, getattr(override, kind), slide)
            if problem:
                raise RobotSpecError(f"{path.name}: manifest limits of {joint!r}: {problem}")
    overrides = {j: o for j, o in overrides.items() if j not in held}
    _narrow_limits(path, served, limits, velocity_limits, overrides)
    accelerations = np.full(len(served), np.inf)
    for joint, override in overrides.items():
        k = served.index(joint)
        accelerations[k] = override.acceleration or accelerations[k]
        efforts[k] = override.effort or efforts[k]
    return accelerations


def _base_body(model: mujoco.MjModel, joint_ids: list[int], path: Path) -> str:
    """The root body the served joints hang from (the frame of every position); it must not move."""
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
    return base


def _home_keyframe(model: mujoco.MjModel, home: str | None, path: Path) -> int | None:
    """Index of keyframe ``home`` (default: the first, None without keyframes)."""
    keyframe = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, home) if home else (0 if model.nkey else None)
    if keyframe == -1:
        raise RobotSpecError(f"{path.name}: no keyframe {home!r} (the home keyframe)")
    return keyframe


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
