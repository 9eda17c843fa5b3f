"""Unit tests of the integrity rules: model and checkpoint checksums, strict JSON, results that are never
silently replaced, one-line errors for bad command lines and params files."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from helpers import REPO, SHIPPED_MODEL
from mtpolicy.integrity import CorruptFile, seal_model, strict_json, verify_model
from mtpolicy.nodes.params import StartupError, check_params_files
from mtpolicy.policy import OnnxPolicy
from mtpolicy_training.core.run_record import RunRefused, checksum_path, load_checkpoint, publish_final, save_checkpoint
from mtpolicy_training.ship.export import main as export_main, reseal_file
from mtpolicy_training.train.cli import parse_config


def test_a_sealed_model_verifies_and_any_changed_byte_is_found():
    data = SHIPPED_MODEL.read_bytes()
    assert verify_model(data, "m")
    rng = np.random.default_rng(0)
    for at in rng.choice(len(data), 20, replace=False):
        changed = bytearray(data)
        changed[at] ^= 0x01
        with pytest.raises(CorruptFile, match="m: corrupt model file"):
            verify_model(bytes(changed), "m")


def test_an_unsealed_version_1_model_loads_and_is_brought_up_to_the_current_contract(tmp_path, fixture_model):
    path = tmp_path / "fixture.onnx"
    path.write_bytes(fixture_model.read_bytes())
    obs = np.random.default_rng(0).normal(size=(5, OnnxPolicy(path).contract.observation_layout.size))
    model = onnx.load(str(path))  # as exported by version 1: no version-2 keys
    kept = [p for p in model.metadata_props if p.key not in ("robot_mjcf", "reach_tolerance", "goal_distribution",
                                                             "planner", "observation_doc", "io_doc")]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for p in model.metadata_props:
        if p.key == "format_version":
            p.value = "1"
    onnx.save(model, str(path))
    before = OnnxPolicy(path)
    assert not before.sealed and before.contract.reach_tolerance == 0.02
    assert reseal_file(path) and not reseal_file(path)
    after = OnnxPolicy(path)
    assert after.sealed and np.array_equal(after(obs), before(obs))
    meta = onnx.load(str(path)).metadata_props
    assert {p.key: p.value for p in meta}["format_version"] == "2" and "io_doc" in {p.key for p in meta}
    assert after.contract.robot_mjcf == "mtpolicy/robots/planar8/robot.xml"
    with pytest.raises(ValueError, match="needs a 'model_sha256' metadata entry"):
        seal_model(fixture_model.read_bytes())


def test_strict_json_writes_null_for_non_finite_floats():
    text = strict_json({"a": math.nan, "b": [np.float32(np.inf), 1.5, 2], "c": {"d": -math.inf}, "e": "x"})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == \
        {"a": None, "b": [None, 1.5, 2], "c": {"d": None}, "e": "x"}


def test_checkpoints_verify_and_survive_a_kill_between_the_two_replacements(tmp_path, capsys):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(100)})
    first = path.read_bytes()
    save_checkpoint(path, {"step": 2, "w": torch.zeros(100)})
    assert load_checkpoint(path)["step"] == 2
    path.write_bytes(first)  # as if killed after the sidecar was replaced and before the checkpoint was
    assert load_checkpoint(path)["step"] == 1
    damaged = bytearray(first)
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(CorruptFile, match=f"{path}: corrupt checkpoint"):
        load_checkpoint(path)
    checksum_path(path).unlink()  # made before checksums existed: loads, with a warning
    path.write_bytes(first)
    assert load_checkpoint(path)["step"] == 1 and "has no checksum" in capsys.readouterr().err


def test_a_final_result_never_silently_replaces_a_better_or_finite_one(tmp_path, capsys):
    def export(record: dict, path: Path) -> None:
        path.write_text(str(record["success_rate"]))

    publish_final(tmp_path, {"success_rate": 0.8}, 1.0, export)
    publish_final(tmp_path, {"success_rate": 0.5}, 1.0, export)
    assert json.loads((tmp_path / "eval.json").read_text())["success_rate"] == 0.8
    assert (tmp_path / "policy.onnx").read_text() == "0.8"
    assert (tmp_path / "policy.rejected.onnx").read_text() == "0.5"
    assert json.loads((tmp_path / "eval.rejected.json").read_text())["success_rate"] == 0.5
    assert "worse than the 0.8 of the existing" in capsys.readouterr().err
    with pytest.raises(RunRefused, match="success_rate is nan"):
        publish_final(tmp_path, {"success_rate": math.nan}, 1.0, export)
    publish_final(tmp_path, {"success_rate": 0.9}, 1.0, export)
    assert (tmp_path / "policy.onnx").read_text() == "0.9"


@dataclass
class Config:
    seed: int = 1
    """Seed."""
    rate: float = 1.0
    """Rate."""

    def __post_init__(self):
        if self.rate <= 0:
            raise ValueError("invalid config value(s): rate " + "x" * 200)


@pytest.mark.parametrize("argv,message", [
    (["--seed", "-3"], "error: --seed must be in [0, 2**32), got -3"),
    (["--seed", "abc"], "error: Error parsing --seed: invalid literal for int() with base 10: 'abc'"),
    (["--rate", "0"], "error: Error parsing Config: invalid config value(s): rate " + "x" * 200),
    (["--bogus"], "error: Unrecognized options: --bogus"),
])
def test_bad_command_lines_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        parse_config(Config, argv)
    assert e.value.code == 2 and capsys.readouterr().err.strip() == message
    assert parse_config(Config, ["--seed", "7"]).seed == 7


@pytest.mark.parametrize("text,message", [
    ("controller:\n  ros__parameters:\n    a: [1\n", "not valid YAML at line 4, column 1"),
    ("- a\n- b\n", "expected a mapping of node names"),
    ("controller: 3\n", "expected a mapping of node names"),
])
def test_bad_params_files_are_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(StartupError, match=message) as e:
        check_params_files(["node", "--ros-args", "--params-file", str(path)])
    assert "\n" not in str(e.value)
    with pytest.raises(StartupError, match="No such file"):
        check_params_files(["--params-file", os.fspath(tmp_path / "missing.yaml")])
    check_params_files(["--params-file", os.fspath(REPO / "config" / "planar8.yaml")])


def test_export_command_explains_itself(capsys):
    with pytest.raises(SystemExit) as exit_help:
        export_main(["--help"])
    with pytest.raises(SystemExit) as exit_bare:
        export_main([])
    assert exit_help.value.code == 0 and exit_bare.value.code == 2
    assert capsys.readouterr().out.count("usage: python -m mtpolicy_training.ship.export") == 2
