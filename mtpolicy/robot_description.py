"""A robot given as a URDF string -- ROS's ``robot_description`` -- to drive with a policy made for it.

ROS users have their robot as the URDF that robot_state_publisher publishes
(the ``robot_description`` parameter, often the output of xacro). The
controller takes it instead of a robot folder (``robot`` parameter): the
URDF's joints, origins, axes and position limits are the kinematics the
observation is computed with, and its ``<limit velocity effort>`` are the
robot's limits. A URDF has no place for the rest; here is where each comes
from:

| fact | from |
|---|---|
| end effectors | the model's contract: links of the URDF of those names (a site is put at each link's origin) |
| reach tolerance | the model's contract |
| joints served, their order | the model's contract (the ``joints`` parameter: the command order) |
| velocity limits | the URDF's ``<limit velocity>``, lowered to the model's where the model's are lower |
| acceleration limits | the robot folder of the ``robot`` parameter (default: the model's robot), by joint name |
| home, servo gains (kv) | not used: the controller starts from the measured joint states and commands a real robot |

The model's robot (``robot``, default the one its contract names), when it
can be found here, is also the reference the URDF's kinematics are held to:
an end effector more than the model's reach tolerance away from where that
robot puts it, at any of ``KINEMATIC_CHECKS`` random configurations, is
refused -- the URDF describes another robot (or another tool point) than the
one the model was trained on. Not found, it is a warning: nothing to compare
with, no acceleration limits.

Meshes are found as ``mtpolicy.robots.mjcf.urdf_spec`` finds them (``package://``
through the ROS package path, ``mtpolicy.robots.packages``); ``file://`` URIs
are absolute paths; a relative path has no folder to be relative to and is
refused. Every problem is a ``RobotSpecError`` of one line that starts with
``robot_description``.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from mtpolicy.kinematics import Kinematics
from mtpolicy.robots import RobotSpec, RobotSpecError, ServoWarning, load_robot
from mtpolicy.robots.mjcf import URDF_MOVABLE
from mtpolicy.robots.manifest import DEFAULT_REACH_TOLERANCE, implausible_limit
from mtpolicy.robots.packages import is_package_uri

PARAMETER = "robot_description"
"""The name ROS gives a robot's URDF (a parameter of robot_state_publisher, and of the controller)."""
KINEMATIC_CHECKS = 16
"""Random configurations the URDF's end-effector positions are compared at with the model's robot's."""
_FILE_URI = "file://"


class ModelContract(Protocol):
    """What of a policy's contract (``mtpolicy.policy.PolicyContract``) a described robot is built from."""

    @property
    def robot(self) -> str: ...
    @property
    def joints(self) -> tuple[str, ...]: ...
    @property
    def end_effectors(self) -> tuple[str, ...]: ...
    @property
    def velocity_limits(self) -> tuple[float, ...]: ...
    @property
    def reach_tolerance(self) -> float: ...


@dataclass(frozen=True)
class DescribedRobot:
    """The robot of a ``robot_description``, completed for a model (see the module docstring)."""

    spec: RobotSpec
    """The URDF's robot: its kinematics and position limits, the velocity and acceleration limits in force."""
    reference: RobotSpec | None
    """The model's robot the URDF was compared with (its acceleration limits); None if not found here."""
    notes: tuple[str, ...]
    """Warnings for the log, one line each."""


def parse(text: str) -> ET.Element:
    """The ``<robot>`` element of URDF ``text``; RobotSpecError (one line) if it is none."""
    if not text.strip():
        raise RobotSpecError(f"{PARAMETER} is empty")
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as e:
        raise RobotSpecError(f"{PARAMETER} is not well-formed XML: {e}") from None
    if root.tag != "robot":
        raise RobotSpecError(f"{PARAMETER} is not a URDF: its root element is <{root.tag}>, not <robot> (an MJCF "
                             "is given with the robot parameter)")
    return root


def _check_limits(root: ET.Element, joints: Sequence[str]) -> np.ndarray:
    """Every joint of ``joints`` is a movable joint of the URDF with plausible velocity and effort limits; the effort
    limits."""
    movable = {j.get("name", ""): j for j in root.iter("joint") if j.get("type") in URDF_MOVABLE}
    missing = [j for j in joints if j not in movable]
    if missing:
        raise RobotSpecError(f"{PARAMETER} lacks the model's joint(s) {missing} (its movable joints: "
                             f"{sorted(movable)})")
    efforts = []
    for name in joints:
        limit, slide = movable[name].find("limit"), movable[name].get("type") == "prismatic"
        for kind in ("velocity", "effort"):
            text = None if limit is None else limit.get(kind)
            if text is None:
                raise RobotSpecError(f"{PARAMETER}: joint {name!r} has no <limit {kind}=...> (a URDF's movable joints "
                                     "need one; the controller clamps the commands to the velocity limit)")
            try:
                value = float(text)
            except ValueError:
                raise RobotSpecError(f"{PARAMETER}: joint {name!r}: <limit {kind}={text!r}> is not a "
                                     "number") from None
            problem = implausible_limit(kind, value, slide)
            if problem:
                raise RobotSpecError(f"{PARAMETER}: joint {name!r}: {problem} (<limit {kind}>)")
        efforts.append(value)  # the last kind read: effort
    return np.array(efforts)


def _mesh_paths(root: ET.Element) -> None:
    """``file://`` mesh URIs as absolute paths, in place; a relative path is refused."""
    for mesh in root.iter("mesh"):
        name = mesh.get("filename", "")
        if name.startswith(_FILE_URI):
            mesh.set("filename", name[len(_FILE_URI):])
        elif name and not is_package_uri(name) and not Path(name).is_absolute():
            raise RobotSpecError(f"{PARAMETER}: mesh {name!r} is a relative path, and a robot_description has no "
                                 "folder it is relative to: reference it as package://PACKAGE/PATH or file:///PATH")


_folder: Path | None = None


def _scratch() -> Path:
    """A folder of this process for the URDF files MuJoCo compiles (removed at exit)."""
    global _folder
    if _folder is None:
        _folder = Path(tempfile.mkdtemp(prefix="mtpolicy_robot_description_"))
        atexit.register(shutil.rmtree, _folder, True)
    return _folder


def description_spec(text: str, end_effectors: Sequence[str], joints: Sequence[str]) -> RobotSpec:
    """The RobotSpec of URDF ``text``: ``joints`` served in that order (the others held), ``end_effectors`` links.

    The URDF is written, with its joints of ``joints`` first in that order (the
    actuator order ``compile_model`` gives) and ``file://`` meshes as paths, to a
    file of this process, which the spec's model is compiled from.
    """
    root = parse(text)
    efforts = _check_limits(root, joints)
    links = {link.get("name") for link in root.iter("link")}
    absent = [ee for ee in end_effectors if ee not in links]
    if absent:
        raise RobotSpecError(f"{PARAMETER} has no link(s) {absent}, the model's end effector(s) (put a link on a fixed "
                             f"joint at the tool point); its links: {sorted(filter(None, links))}")
    _mesh_paths(root)
    order = {name: k for k, name in enumerate(joints)}
    elements = root.findall("joint")
    for element in elements:
        root.remove(element)
    # stable: the rest keep theirs
    for element in sorted(elements, key=lambda e: order.get(e.get("name", ""), len(order))):
        root.append(element)
    path = _scratch() / f"{PARAMETER}.urdf"
    path.write_text(ET.tostring(root, encoding="unicode"))
    with warnings.catch_warnings():  # the servos compile_model gives a URDF are the simulator's, not used here
        warnings.simplefilter("ignore", ServoWarning)
        spec = RobotSpec.from_mjcf(path, list(end_effectors), name=root.get("name") or PARAMETER,
                                   joints=tuple(joints))
    kept = _scratch() / f"{PARAMETER}_{spec.mjcf_sha256[:16]}.urdf"  # the spec's file, by content: stays as it is
    path.replace(kept)
    return replace(spec, scene_path=kept, robot_file=str(kept), effort_limits=efforts)


def kinematic_difference(spec: RobotSpec, reference: RobotSpec, n: int = KINEMATIC_CHECKS,
                         seed: int = 0) -> tuple[float, str, np.ndarray]:
    """The largest distance (m) between the end-effector positions (base frames) of two robots with the same joints
    and end effectors, over ``n`` random configurations within both robots' limits; its end effector and
    configuration."""
    order = [reference.joint_names.index(j) for j in spec.joint_names]
    lo = np.maximum(spec.joint_limits[:, 0], reference.joint_limits[order, 0])
    hi = np.minimum(spec.joint_limits[:, 1], reference.joint_limits[order, 1])
    lo, hi = np.where(np.isfinite(lo), lo, -np.pi), np.where(np.isfinite(hi), hi, np.pi)
    ours, theirs = Kinematics(spec), Kinematics(reference)
    worst = (0.0, spec.end_effectors[0], np.zeros(spec.n_joints))
    for q in np.random.default_rng(seed).uniform(lo, hi, size=(n, spec.n_joints)):
        q_reference = np.empty(spec.n_joints)
        q_reference[order] = q
        gaps = np.linalg.norm(ours.ee_positions(q) - theirs.ee_positions(q_reference), axis=1)
        if gaps.max() > worst[0]:
            worst = (float(gaps.max()), spec.end_effectors[int(gaps.argmax())], q)
    return worst


def described_robot(text: str, contract: ModelContract, robot: str = "") -> DescribedRobot:
    """The robot of URDF ``text`` for a model of ``contract``, completed and checked as the module docstring says;
    ``robot``: the robot folder (or name) that supplies what a URDF cannot (default: the model's robot)."""
    spec = description_spec(text, contract.end_effectors, contract.joints)
    notes, reference = [], None
    try:
        reference = load_robot(robot or contract.robot, list(contract.end_effectors))
    except RobotSpecError as e:
        if robot:  # asked for by name: it must be there
            raise RobotSpecError(f"{PARAMETER} given with robot {robot!r}, which cannot be loaded for a model of "
                                 f"robot {contract.robot!r}: {e}") from None
        notes.append(f"{PARAMETER}: the model's robot {contract.robot!r} is not found here, so the URDF's kinematics "
                     "are not compared with it and the commands have no acceleration limits (give robot:= a robot "
                     "folder whose robot.yaml states them)")
    if reference is not None:
        if set(reference.joint_names) != set(spec.joint_names) or reference.end_effectors != spec.end_effectors:
            raise RobotSpecError(f"{PARAMETER}: robot {reference.name!r} serves joints {list(reference.joint_names)} "
                                 f"and end effectors {list(reference.end_effectors)}, the model "
                                 f"{list(contract.joints)} and {list(contract.end_effectors)}")
        tolerance = contract.reach_tolerance or DEFAULT_REACH_TOLERANCE
        gap, ee, q = kinematic_difference(spec, reference)
        if gap > tolerance:
            raise RobotSpecError(
                f"{PARAMETER} is not the robot {reference.name!r} the model was made for: its end effector {ee!r} is "
                f"{gap:.3f} m from where {reference.name!r} puts it (more than the reach tolerance, {tolerance:g} m) "
                f"at joints {np.round(q, 3).tolist()}")
        order = [reference.joint_names.index(j) for j in spec.joint_names]
        spec = replace(spec, acceleration_limits=reference.acceleration_limits[order].copy(),
                       collision_clearance=reference.collision_clearance)
    unlimited = [j for j, a in zip(spec.joint_names, spec.acceleration_limits) if not np.isfinite(a)]
    if reference is not None and unlimited:
        notes.append(f"{PARAMETER}: no acceleration limit for joint(s) {unlimited} (robot {reference.name!r} states "
                     "none): their commands step freely")
    model = np.asarray(contract.velocity_limits, dtype=np.float64)
    lower = [f"{j} {v:g} (model {m:g})" for j, v, m in zip(spec.joint_names, spec.velocity_limits, model) if m < v]
    if lower:
        notes.append(f"{PARAMETER}: velocity limits above the model's, clamped to the model's: {', '.join(lower)}")
    below = [f"{j} {v:g} (model {m:g})" for j, v, m in zip(spec.joint_names, spec.velocity_limits, model) if v < m]
    if below:
        notes.append(f"{PARAMETER}: velocity limits below the model's, which its commands are clamped to: "
                     f"{', '.join(below)}")
    spec = replace(spec, velocity_limits=np.minimum(spec.velocity_limits, model))
    return DescribedRobot(spec, reference, tuple(notes))
