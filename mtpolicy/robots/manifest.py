"""A robot folder's manifest, ``robot.yaml``: the facts about a robot its MJCF cannot state.

A robot is one folder: its MJCF (or URDF) and this manifest. Training,
evaluation, the nodes, the launch files and the demo all find a robot with
``find_robot`` -- a shipped robot by name (a folder of ``mtpolicy/robots``)
or any robot folder by path -- and read what the manifest states:

| field             | required | meaning                                                              |
|-------------------|----------|----------------------------------------------------------------------|
| ``mjcf``          | yes      | the robot's MJCF or URDF, in the folder (hashed for the policy contract) |
| ``end_effectors`` | yes      | end-effector sites (or bodies with one site), in task order           |
| ``reach_tolerance`` | yes    | m: an end effector this close to its goal has reached it             |
| ``scene``         | no       | the MJCF to simulate (robot plus floor and lights; default: ``mjcf``) |
| ``joints``        | no       | the joints a reach policy serves (default: the actuated ones on a chain) |
| ``limits``        | no       | ``joint: {position: [lo, hi], velocity: v, acceleration: a, effort: f}``: |
|                   |          | position and velocity narrower than the MJCF's; acceleration (rad/s^2 |
|                   |          | or m/s^2) and effort (N m or N) the vendor's, recorded for the nodes  |
| ``home``          | no       | name of the home keyframe (default: the first keyframe, else qpos0)   |
| ``default_model`` | no       | the policy run when none is given: a file in the folder or a shipped model name |
| ``env_id``        | no       | gymnasium id of the robot's reach env, registered under ``mtpolicy/`` |
| ``collision_clearance`` | no | m, at most ``MAX_CLEARANCE``: the least gap the collision guard keeps between |
|                   |          | geoms more than two joints apart (``kinematics.first_collision``; default 0: no new |
|                   |          | penetration), for servos whose tracking error carries joints off the checked move |

Everything else (joint order, limits, chains, base frame) is derived from the
compiled model (``mtpolicy.robots``). A bare MJCF/URDF file with no folder
manifest is a robot too: every site an end effector, ``DEFAULT_REACH_TOLERANCE``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, overload

import yaml

ROBOTS_DIR = Path(__file__).resolve().parent
"""The shipped robots: one folder each."""
MANIFEST = "robot.yaml"
"""File name of a robot folder's manifest."""
DEFAULT_ROBOT = "planar8"
"""The robot of the commands that are given none (``mtpolicy demo``, ``mtpolicy goals``, the launch files)."""
DEFAULT_REACH_TOLERANCE = 0.02
"""Reach tolerance (m) of a robot given as a bare MJCF/URDF file."""
MAX_CLEARANCE = 0.1
"""Largest accepted collision clearance (m), of a manifest or the controller's parameter."""


class RobotSpecError(ValueError):
    """The MJCF or the manifest does not describe a robot this stack can drive."""


PLAUSIBLE_LIMITS = {"velocity": (50.0, 10.0), "acceleration": (2000.0, 200.0), "effort": (5000.0, 1e5)}
"""Largest plausible limit of a real joint, (hinge, slide): rad/s or m/s, rad/s^2 or m/s^2, N m or N. Above
these, a number is not that limit (e.g. a torque motor's ctrlrange of 20,000 kept as a velocity limit)."""


def implausible_limit(kind: str, value: float, slide: bool = False) -> str | None:
    """Why ``value`` cannot be a real joint's ``kind`` limit (one phrase), or None if it can."""
    bound = PLAUSIBLE_LIMITS[kind][int(slide)]
    unit = {"velocity": "/s", "acceleration": "/s^2", "effort": ""}[kind]
    unit = ("N" if slide else "N m") if kind == "effort" else ("m" if slide else "rad") + unit
    if not (0 < value <= bound):
        return f"{kind} limit {value:g} {unit} is not plausible for a real joint (0 < limit <= {bound:g} {unit})"
    return None


@dataclass(frozen=True)
class JointLimits:
    """Limits of one joint that replace the MJCF's (each within it)."""

    position: tuple[float, float] | None = None
    """Lower and upper position limit (rad or m); None: the joint's ``range``."""
    velocity: float | None = None
    """Symmetric velocity limit (rad/s or m/s); None: the servo's ``ctrlrange``."""
    acceleration: float | None = None
    """Symmetric acceleration limit (rad/s^2 or m/s^2) of the commands; None: unlimited."""
    effort: float | None = None
    """Symmetric effort limit (N m or N); None: the servo's ``forcerange`` if any."""


@dataclass(frozen=True)
class RobotManifest:
    """What a robot folder's ``robot.yaml`` states (see the module docstring for each field)."""

    name: str | None
    """The folder's name (None for a bare file: the MJCF's model name)."""
    folder: Path
    """The folder holding the robot's files."""
    mjcf: str
    end_effectors: tuple[str, ...] | None
    """None only for a bare file: every site."""
    reach_tolerance: float
    scene: str | None = None
    joints: tuple[str, ...] | None = None
    limits: dict[str, JointLimits] = field(default_factory=dict)
    home: str | None = None
    default_model: str | None = None
    env_id: str | None = None
    collision_clearance: float = 0.0

    @property
    def mjcf_path(self) -> Path:
        return self.folder / self.mjcf

    @property
    def scene_path(self) -> Path:
        return self.folder / (self.scene or self.mjcf)

    @classmethod
    def read(cls, folder: str | Path) -> "RobotManifest":
        """The manifest of a robot folder; RobotSpecError names the file and the first bad field in one line."""
        folder = Path(folder).resolve()
        path = folder / MANIFEST
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise RobotSpecError(f"{path}: cannot read: {' '.join(str(e).split())}") from None
        if not isinstance(raw, dict):
            raise RobotSpecError(f"{path}: expected a mapping of fields, got {type(raw).__name__}")
        fields = _Fields(path, raw)
        manifest = cls(name=folder.name, folder=folder, mjcf=fields.file("mjcf", folder),
                       end_effectors=fields.names("end_effectors"), reach_tolerance=fields.positive("reach_tolerance"),
                       scene=fields.file("scene", folder, required=False),
                       joints=fields.names("joints", required=False), limits=fields.limits(),
                       home=fields.text("home"), default_model=fields.text("default_model"),
                       env_id=fields.text("env_id"), collision_clearance=fields.clearance())
        fields.check_unknown()
        return manifest

    @classmethod
    def for_file(cls, path: str | Path) -> "RobotManifest":
        """A bare MJCF/URDF file as a robot: every site an end effector, the default tolerance."""
        path = Path(path).resolve()
        return cls(name=None, folder=path.parent, mjcf=path.name, end_effectors=None,
                   reach_tolerance=DEFAULT_REACH_TOLERANCE)

    def default_model_reference(self) -> str:
        """The default model as a path (a file in the folder) or a shipped model name."""
        if self.default_model is None:
            raise FileNotFoundError(f"robot {self.name or str(self.mjcf_path)!r} has no default_model (a robot "
                                    f"folder's {MANIFEST} names it): give a model")
        in_folder = self.folder / self.default_model
        return str(in_folder) if in_folder.is_file() else self.default_model


class _Fields:
    """Typed reads of a manifest's fields, each failing with one line naming the file and the field."""

    def __init__(self, path: Path, raw: dict):
        self.path, self.raw, self.read = path, raw, set[str]()

    def _get(self, key: str, required: bool):
        self.read.add(key)
        if self.raw.get(key) is None and required:
            raise RobotSpecError(f"{self.path}: missing field {key!r}")
        return self.raw.get(key)

    def bad(self, key: str, expected: str) -> RobotSpecError:
        return RobotSpecError(f"{self.path}: field {key!r} must be {expected}, got {self.raw.get(key)!r}")

    def text(self, key: str, required: bool = False) -> str | None:
        value = self._get(key, required)
        if value is not None and not (isinstance(value, str) and value):
            raise self.bad(key, "a non-empty string")
        return value

    @overload
    def file(self, key: str, folder: Path, required: Literal[True] = True) -> str: ...
    @overload
    def file(self, key: str, folder: Path, required: bool) -> str | None: ...

    def file(self, key: str, folder: Path, required: bool = True) -> str | None:
        value = self.text(key, required)
        if value is not None and not (folder / value).is_file():
            raise RobotSpecError(f"{self.path}: field {key!r}: no file {folder / value}")
        return value

    def names(self, key: str, required: bool = True) -> tuple[str, ...] | None:
        value = self._get(key, required)
        if value is not None and not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise self.bad(key, "a non-empty list of names")
        return None if value is None else tuple(value)

    def positive(self, key: str) -> float:
        value = self._get(key, True)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.bad(key, "a number > 0")
        return float(value)

    def clearance(self) -> float:
        value = self._get("collision_clearance", False)
        if value is None:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_CLEARANCE:
            raise self.bad("collision_clearance", f"a number >= 0, <= {MAX_CLEARANCE:g} (m)")
        return float(value)

    def limits(self) -> dict[str, JointLimits]:
        value = self._get("limits", False) or {}
        expected = "a mapping joint -> {position: [lo, hi], velocity: v, acceleration: a, effort: f}"
        if not isinstance(value, dict):
            raise self.bad("limits", expected)
        out = {}
        for joint, limit in value.items():
            if not isinstance(limit, dict) or not set(limit) <= {"position", "velocity", "acceleration", "effort"}:
                raise self.bad("limits", expected)
            position = limit.get("position")
            if position is not None and not (isinstance(position, list) and len(position) == 2
                                             and all(isinstance(v, (int, float)) for v in position)
                                             and position[0] < position[1]):
                raise self.bad("limits", f"{expected} (position of {joint!r}: lo < hi)")
            rates = {}
            for kind in ("velocity", "acceleration", "effort"):
                value = limit.get(kind)
                if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                              and value > 0):
                    raise self.bad("limits", f"{expected} ({kind} of {joint!r}: > 0)")
                rates[kind] = None if value is None else float(value)
            out[str(joint)] = JointLimits(None if position is None else (float(position[0]), float(position[1])),
                                          **rates)
        return out

    def check_unknown(self) -> None:
        unknown = sorted(set(self.raw) - self.read)
        if unknown:
            raise RobotSpecError(f"{self.path}: unknown field(s) {unknown}; known: {sorted(self.read)}")


def shipped_robots() -> list[str]:
    """Names of the robots shipped in this package (folders of ``mtpolicy/robots`` with a manifest)."""
    return sorted(p.name for p in ROBOTS_DIR.iterdir() if (p / MANIFEST).is_file())


def robot_folder(name_or_path: str | Path) -> Path | None:
    """The robot folder ``name_or_path`` names: a shipped robot, a folder with a manifest, that manifest, or the
    MJCF its folder's manifest names; None if it names none."""
    shipped = ROBOTS_DIR / str(name_or_path)
    if str(name_or_path) in shipped_robots():
        return shipped
    path = Path(name_or_path)
    if (path / MANIFEST).is_file():
        return path
    if path.name == MANIFEST and path.is_file():
        return path.parent
    if path.is_file() and (path.parent / MANIFEST).is_file() and RobotManifest.read(path.parent).mjcf == path.name:
        return path.parent
    return None


def find_robot(name_or_path: str | Path) -> RobotManifest:
    """The manifest of a robot: a shipped name, a robot folder (see ``robot_folder``) or a bare MJCF/URDF file."""
    folder = robot_folder(name_or_path)
    if folder is not None:
        return RobotManifest.read(folder)
    if Path(name_or_path).is_file():
        return RobotManifest.for_file(name_or_path)
    raise RobotSpecError(f"unknown robot {str(name_or_path)!r}: not one of {shipped_robots()}, not a robot folder "
                         f"(with a {MANIFEST}) and not an MJCF/URDF file")
