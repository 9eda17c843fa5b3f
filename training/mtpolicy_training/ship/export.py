"""torch -> ONNX with the metadata contract of ``mtpolicy.policy``.

The graph maps a raw observation to joint velocities in rad/s: the actor's
observation normalization and the scaling of its [-1, 1] output by the
velocity limits are both inside. Uses torch's TorchScript-based exporter
(opset 17), which needs no extra package; ``parity`` checks onnxruntime
against torch.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from mtpolicy.policy import INPUT_NAME, OUTPUT_NAME, OnnxPolicy, PolicyContract
from mtpolicy.robots import RobotSpec
from mtpolicy_training.envs.reach import ReachConfig


class VelocityPolicy(nn.Module):
    """Actor (normalized actions) times velocity limits: observation -> rad/s."""

    def __init__(self, actor: nn.Module, velocity_limits: np.ndarray):
        super().__init__()
        self.actor = actor
        self.register_buffer("velocity_limits", torch.as_tensor(velocity_limits, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs) * self.velocity_limits


def export_policy(actor: nn.Module, spec: RobotSpec, env: ReachConfig, method: str, training_config: dict,
                  metrics: dict, path: Path) -> Path:
    """Write ``path`` (.onnx) with the contract as metadata_props; checks it with onnx.checker."""
    contract = PolicyContract.for_robot(spec, env.control_period, method, training_config, metrics,
                                        env.reach_tolerance, env.goal_distribution,
                                        env.planner.to_dict() if env.planned else None)
    module = VelocityPolicy(actor, spec.velocity_limits).eval()
    example = torch.zeros(1, contract.observation_layout.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (example,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, contract.to_metadata())
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def parity(actor: nn.Module, spec: RobotSpec, path: Path, observations: np.ndarray) -> float:
    """Largest |torch - onnxruntime| over ``observations``, in rad/s."""
    with torch.no_grad():
        expected = VelocityPolicy(actor, spec.velocity_limits)(torch.as_tensor(observations, dtype=torch.float32))
    return float(np.max(np.abs(OnnxPolicy(path)(observations) - expected.numpy())))
