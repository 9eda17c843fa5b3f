"""torch -> ONNX with the metadata contract of ``mtpolicy.policy``.

The graph maps a raw observation to joint velocities in rad/s: the actor's
observation normalization and the scaling of its [-1, 1] output by the
velocity limits are both inside. Uses torch's TorchScript-based exporter
(opset 17), which needs no extra package; ``parity`` checks onnxruntime
against torch.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from google.protobuf.message import DecodeError
from torch import nn

from mtpolicy.integrity import CHECKSUM_KEY, PLACEHOLDER, seal_model, strict_json, verify_model
from mtpolicy.policy import INPUT_NAME, OUTPUT_NAME, OnnxPolicy, PolicyContract
from mtpolicy.robots import RobotSpec, load_robot
from mtpolicy_training.core.run_record import RunRefused
from mtpolicy_training.envs.reach import ReachConfig


class VelocityPolicy(nn.Module):
    """Actor (normalized actions) times velocity limits: observation -> rad/s."""

    def __init__(self, actor: nn.Module, velocity_limits: np.ndarray):
        super().__init__()
        self.actor = actor
        self.register_buffer("velocity_limits", torch.as_tensor(velocity_limits, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs) * self.velocity_limits


class TaskHead(nn.Module):
    """A multi-task policy over ``[obs, one_hot(task)]`` (forward(x, task) -> (mean, value), ``task`` every row's)
    fixed to one task: observation -> that task's mean, clipped to [-1, 1] as training and evaluation clip it; the
    one-hot is in the graph, and the task's holding structure alone (``dls-gain``: its variant's kinematics)."""

    one_hot: torch.Tensor
    """(n_tasks,) the task's one-hot (a buffer)."""

    def __init__(self, policy: nn.Module, task: int, n_tasks: int):
        super().__init__()
        self.policy, self.task = policy, task
        self.register_buffer("one_hot", torch.eye(n_tasks)[task])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, self.one_hot.expand(obs.shape[0], -1)], dim=-1)
        return self.policy(x, task=self.task)[0].clamp(-1.0, 1.0)


def variant_path(path: Path, variant: str) -> Path:
    """Where variant ``variant``'s policy of a run's ``path`` goes: ``policy.onnx`` -> ``policy_<variant>.onnx``
    (``best_policy_<variant>.onnx``, ``policy_<variant>.rejected.onnx`` alike)."""
    return path.with_name(path.name.replace("policy", f"policy_{variant}", 1))


def export_variant_policies(policy: nn.Module, variants: tuple[str, ...], configs: list[ReachConfig], method: str,
                            training_config: dict, metrics: dict, path: Path) -> list[Path]:
    """Head i of ``policy`` (one head per variant, in order) as variant i's ONNX policy at ``variant_path``: its
    robot's contract (name, MJCF hash, joints), the observation without the task one-hot, reach settings
    ``configs[i]``, and ``metrics`` of that variant (``<name>_<variant>`` read as ``<name>``, beside the set's)."""
    out = []
    for task, (variant, config) in enumerate(zip(variants, configs)):
        own = {k.removesuffix(f"_{variant}"): v for k, v in metrics.items() if k.endswith(f"_{variant}")}
        out.append(export_policy(TaskHead(policy, task, len(variants)), load_robot(variant), config, method,
                                 training_config, {**metrics, **own}, variant_path(path, variant)))
    return out


class NonFiniteModel(RunRefused):
    """A policy with non-finite weights or outputs: it is never exported."""


def check_finite(actor: nn.Module, path: Path) -> None:
    """NonFiniteModel naming the first tensors of ``actor`` with a NaN or infinity (``path``: where it would go)."""
    bad = [name for name, t in actor.state_dict().items() if t.is_floating_point() and not t.isfinite().all()]
    if bad:
        raise NonFiniteModel(f"refusing to export {path}: non-finite weights in {', '.join(bad[:5])}")


def export_policy(actor: nn.Module, spec: RobotSpec, env: ReachConfig, method: str, training_config: dict,
                  metrics: dict, path: Path) -> Path:
    """Write ``path`` (.onnx) with the contract as metadata_props, sealed with its checksum; checks it with
    onnx.checker. The file is replaced atomically, and only by a policy with finite weights whose output is
    finite (NonFiniteModel otherwise)."""
    contract = PolicyContract.for_robot(spec, env.control_period, method, strict_values(training_config),
                                        strict_values(metrics), env.tolerance, env.goal_distribution,
                                        env.planner.to_dict() if env.planned else None, env.previous_command)
    module = VelocityPolicy(actor, spec.velocity_limits).eval()
    check_finite(module, path)
    example = torch.zeros(1, contract.observation_layout.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # a multi-task network's routing by task index (never negative) is exported as aten::index
        warnings.filterwarnings("ignore", "Exporting aten::index operator", UserWarning)
        torch.onnx.export(module, (example,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=17, dynamo=False)
    model = onnx.load(str(tmp))
    onnx.helper.set_model_props(model, {**contract.to_metadata(), CHECKSUM_KEY: PLACEHOLDER})
    onnx.checker.check_model(model, full_check=True)
    tmp.write_bytes(seal_model(model.SerializeToString()))
    if not np.isfinite(OnnxPolicy(tmp)(np.zeros((1, contract.observation_layout.size), np.float32))).all():
        tmp.unlink()
        raise NonFiniteModel(f"refusing to export {path}: the policy's output is not finite")
    os.replace(tmp, path)
    return path


def strict_values(record: dict) -> dict:
    """``record`` as strict JSON reads it back (non-finite floats as None), for the contract's JSON entries."""
    return json.loads(strict_json(record))


def parity(actor: nn.Module, spec: RobotSpec, path: Path, observations: np.ndarray) -> float:
    """Largest |torch - onnxruntime| over ``observations``, in rad/s."""
    with torch.no_grad():
        expected = VelocityPolicy(actor, spec.velocity_limits)(torch.as_tensor(observations, dtype=torch.float32))
    return float(np.max(np.abs(OnnxPolicy(path)(observations) - expected.numpy())))


def reseal_file(path: Path) -> bool:
    """Rewrite an .onnx's metadata as the current contract version (a version-1 model gets the version-2 keys)
    and seal it with its checksum, in place and atomically; False if it already is both."""
    data = path.read_bytes()
    sealed = verify_model(data, str(path))  # a sealed file whose checksum fails is refused here
    model = onnx.load_from_string(data)
    meta = {p.key: p.value for p in model.metadata_props if p.key != CHECKSUM_KEY}
    contract = PolicyContract.from_metadata(meta, str(path)).to_metadata()
    if sealed and meta == contract:
        return False
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {**contract, CHECKSUM_KEY: PLACEHOLDER})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(seal_model(model.SerializeToString()))
    os.replace(tmp, path)
    return True


def main(argv: list[str] | None = None) -> None:
    """``python -m mtpolicy_training.ship.export FILE.onnx ...``: bring models exported by an older version up to
    the current contract and seal them with their checksum."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    usage = "usage: python -m mtpolicy_training.ship.export FILE.onnx ... (current contract + checksum)"
    if args in ([], ["-h"], ["--help"]):
        print(f"{usage}\n\n{main.__doc__}")
        sys.exit(0 if args else 2)
    paths = [Path(p) for p in args]
    for path in paths:
        try:
            print(f"{path}: {'rewritten and sealed' if reseal_file(path) else 'already current and sealed'}")
        except (OSError, ValueError, DecodeError) as e:
            sys.exit(f"error: {path}: {e}")


if __name__ == "__main__":
    main()
