"""A planner-conditioned model with its planner's settings changed, without retraining.

    python -m mtpolicy_training.ship.replan models/planar8_reach_workspace.onnx '{"finish_at_goal": true}' \\
        --out runs/candidates/planar8_reach_workspace.onnx

The graph is the model's own; the contract's ``planner`` (what a client runs, with its doc) and the training
config's env planner (what the evaluator runs, ``reach_evaluation.onnx_controller``) take the changes, the
training config records them under ``replan``, and the file is sealed with its checksum. The contract's
``metrics`` stay those of the model's own export: evaluate the result (``benchmarks/reach_validation.py``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
import tyro

from mtpolicy.integrity import CHECKSUM_KEY, PLACEHOLDER, seal_model, verify_model
from mtpolicy.planner import PlannerConfig
from mtpolicy.policy import PolicyContract
from mtpolicy_training.core.options import parse_config


@dataclass
class ReplanConfig:
    """Which model, which planner settings, where the copy goes."""

    model: tyro.conf.Positional[Path]
    """A planner-conditioned ONNX policy."""
    changes: tyro.conf.Positional[str]
    """JSON object of ``PlannerConfig`` fields and their new values."""
    out: Path
    """The ONNX file written (never the model itself)."""


def replan(model: Path, changes: dict, out: Path) -> PolicyContract:
    """Write ``out``: ``model`` with ``changes`` to its planner settings (ValueError for a model without a planner,
    an unknown field or a bad value); its contract."""
    if out.resolve() == model.resolve():
        raise ValueError(f"{out}: the copy would replace the model itself")
    data = model.read_bytes()
    verify_model(data, str(model))
    onnx_model = onnx.load_from_string(data)
    meta = {p.key: p.value for p in onnx_model.metadata_props if p.key != CHECKSUM_KEY}
    contract = PolicyContract.from_metadata(meta, str(model))
    if not contract.planner:
        raise ValueError(f"{model}: not a planner-conditioned policy (its contract has no planner)")
    try:
        planner = asdict(PlannerConfig(**{**contract.planner, **changes}))
    except TypeError as e:  # an unknown field
        raise ValueError(f"planner changes {changes}: {e}") from None
    env = contract.training_config.get("env", {})
    training_config = {**contract.training_config, "env": {**env, "planner": {**env.get("planner", {}), **changes}},
                       "replan": {**contract.training_config.get("replan", {}), **changes}}
    contract = PolicyContract(**{**vars(contract), "planner": planner, "training_config": training_config})
    del onnx_model.metadata_props[:]
    onnx.helper.set_model_props(onnx_model, {**contract.to_metadata(), CHECKSUM_KEY: PLACEHOLDER})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(seal_model(onnx_model.SerializeToString()))
    return contract


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(ReplanConfig, argv, prog="python -m mtpolicy_training.ship.replan")
    try:
        changes = json.loads(cfg.changes)
        if not isinstance(changes, dict):
            raise ValueError(f"changes {cfg.changes!r}: not a JSON object")
        replan(cfg.model, changes, cfg.out)
    except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        sys.exit(f"error: {e}")
    print(f"wrote {cfg.out}")


if __name__ == "__main__":
    main()
