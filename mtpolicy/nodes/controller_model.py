"""The controller node's model and robot: the ONNX policy it loads and the robot it drives, checked against each
other (``mtpolicy.nodes.controller``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mtpolicy.reach_task import reach_tolerance
from mtpolicy.nodes.params import StartupError
from mtpolicy.policy import ModelMismatch, OnnxPolicy, PolicyContract, resolve_model_path
from mtpolicy.robots import RobotSpec, RobotSpecError, load_robot
from mtpolicy.robot_description import described_robot


def load_robot_for(policy: OnnxPolicy, robot: str, description: str, joints: list[str], logger) -> RobotSpec:
    """The robot the model drives, checked against the model and the command order ``joints`` (ModelMismatch
    names every disagreement): the URDF ``description`` completed from the model (``mtpolicy.robot_description``;
    its notes logged), else the robot ``robot`` (default: the model's) with the model's end effectors; a model made
    for another robot is refused naming the robot it is for."""
    contract = policy.contract
    if description:
        described = described_robot(description, contract, robot)
        for note in described.notes:
            logger.warning(note)
        # another description of the model's robot: not the model's file (hash) or name, and velocity limits
        # reconciled with the model's; joints, end effectors, base frame and observation must match
        policy.check(replace(described.spec, name=contract.robot, mjcf_sha256=contract.robot_mjcf_sha256,
                             velocity_limits=np.asarray(contract.velocity_limits)), joints)
        return described.spec
    try:
        spec = load_robot(robot or contract.robot, list(contract.end_effectors))
    except RobotSpecError as e:
        if robot and robot != contract.robot:
            raise ModelMismatch(f"{policy.path.name} is a model for robot {contract.robot!r} (end effectors "
                                f"{list(contract.end_effectors)}), not {robot!r}: {e}") from None
        raise
    policy.check(spec, joints)  # ModelMismatch => run_node refuses to start, naming it
    return spec


def contract_reach_tolerance(contract: PolicyContract) -> float:
    """The reach tolerance (m) in the model's contract; where it has none (0), the robot's default
    (``mtpolicy.reach_task.reach_tolerance``)."""
    return contract.reach_tolerance or reach_tolerance(contract.robot)


def load_policy(model: str) -> OnnxPolicy:
    """The policy, or StartupError saying why it cannot be loaded (contract problems stay ModelMismatch)."""
    path = resolve_model_path(model)
    try:
        return OnnxPolicy(path, intra_op_threads=1)
    except ModelMismatch:
        raise
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own unexported error types
        raise StartupError(f"cannot load model {path}: {e}") from None
