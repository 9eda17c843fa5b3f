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

The parts: ``manifest.py`` (the robot.yaml and finding a robot by name, folder or
file), ``mjcf.py`` (compiling an MJCF or a URDF, and the velocity servos'
checks), ``spec.py`` (``RobotSpec``, derived from the compiled model),
``variants.py`` (morphology variants of a shipped robot, as robot folders),
``importer.py`` (a vendor's URDF or MJCF made a robot folder), ``packages.py``
(``package://`` URIs). A ``robot_description`` URDF string: ``mtpolicy.robot_description``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mtpolicy.robots.manifest import (DEFAULT_ROBOT, ROBOTS_DIR, JointLimits, RobotManifest, RobotSpecError,
                                      find_robot, robot_folder, shipped_robots)
from mtpolicy.robots.mjcf import ServoWarning, compile_model
from mtpolicy.robots.spec import RobotSpec

__all__ = ["DEFAULT_ROBOT", "ROBOTS_DIR", "JointLimits", "RobotManifest", "RobotSpec", "RobotSpecError",
           "ServoWarning", "compile_model", "find_robot", "load_robot", "robot_folder", "shipped_robots"]


def load_robot(name_or_path: str | Path, end_effectors: list[str] | tuple[str, ...] | None = None) -> RobotSpec:
    """The RobotSpec of a robot ``find_robot`` finds: a shipped name, a robot folder, or an MJCF/URDF file.

    ``end_effectors`` (default: the manifest's; every site of a bare file) picks the reach tasks; the manifest's
    ``collision_clearance`` rides along.
    """
    robot = find_robot(name_or_path)
    spec = RobotSpec.from_mjcf(robot.scene_path, end_effectors or robot.end_effectors, name=robot.name,
                               robot_file=robot.mjcf_path, joints=robot.joints, limit_overrides=robot.limits,
                               home=robot.home)
    return replace(spec, collision_clearance=robot.collision_clearance)
