"""Which policy drives which robot: the default robot and model of every command that runs a policy
(``mtpolicy demo``, ``mtpolicy render``, robot paths in ``mtpolicy launch``).

``model`` defaults to the default model of ``robot`` (its robot.yaml's ``default_model``), ``robot`` to
``DEFAULT_ROBOT`` without a model, else to the model's robot; the robot then loads with the model's end effectors
and is checked against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mtpolicy.policy import OnnxPolicy
    from mtpolicy.robots import RobotSpec


def model_and_robot(model: str | None, robot: str | None) -> tuple["OnnxPolicy", str]:
    """The policy and the robot of a command given either, both or neither: ``model`` a path or shipped name
    (default: ``robot``'s default model), ``robot`` a shipped name, robot folder or MJCF/URDF path (default: the
    model's robot, a shipped one or the MJCF its contract records; without a model ``DEFAULT_ROBOT``).

    Raises FileNotFoundError (no such model, or a robot without a default model), ModelMismatch or RobotSpecError
    naming the mistake.
    """
    from mtpolicy.policy import OnnxPolicy, resolve_model_path
    from mtpolicy.robots import DEFAULT_ROBOT, RobotSpecError, find_robot, shipped_robots

    if model is None:
        robot = robot or DEFAULT_ROBOT
        model = find_robot(robot).default_model_reference()
    policy = OnnxPolicy(resolve_model_path(model))
    if robot is None:
        contract = policy.contract
        if contract.robot in shipped_robots():
            robot = contract.robot
        elif Path(contract.robot_mjcf).is_file():  # an MJCF, or the one a robot folder's manifest names
            robot = contract.robot_mjcf
        else:
            raise RobotSpecError(f"{policy.path.name} is for robot {contract.robot!r} (MJCF {contract.robot_mjcf}), "
                                 "which is not here: give its MJCF with --robot PATH")
    return policy, robot


def robot_for_model(robot: str, policy: "OnnxPolicy") -> "RobotSpec":
    """The RobotSpec of ``robot`` (shipped name, robot folder or MJCF path) with the model's end effectors, checked
    against it.

    Raises RobotSpecError (no such robot, or not drivable) or ModelMismatch (another robot).
    """
    from mtpolicy.policy import ModelMismatch
    from mtpolicy.robots import RobotSpecError, find_robot, load_robot, shipped_robots

    find_robot(robot)  # an unknown robot is not a mismatch
    if robot in shipped_robots() and policy.contract.robot != robot:
        raise ModelMismatch(f"{policy.path.name} is for robot {policy.contract.robot!r}, not {robot!r}: "
                            f"give a model for {robot!r} (--model, model:=)")
    try:
        spec = load_robot(robot, list(policy.contract.end_effectors))
    except RobotSpecError as e:
        raise ModelMismatch(f"{policy.path.name} (robot {policy.contract.robot!r}) does not fit {robot}: {e}") from None
    policy.check(spec)
    return spec
