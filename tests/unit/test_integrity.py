"""Unit tests of the runtime's integrity rules: model checksums, strict JSON, one-line errors for bad params files
(the training runs': tests/training/test_run_integrity.py)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from helpers import REPO, SHIPPED_MODEL
from mtpolicy.integrity import CorruptFile, strict_json, verify_model
from mtpolicy.nodes.params import StartupError, check_params_files


def test_a_sealed_model_verifies_and_any_changed_byte_is_found():
    data = SHIPPED_MODEL.read_bytes()
    assert verify_model(data, "m")
    rng = np.random.default_rng(0)
    for at in rng.choice(len(data), 20, replace=False):
        changed = bytearray(data)
        changed[at] ^= 0x01
        with pytest.raises(CorruptFile, match="m: corrupt model file"):
            verify_model(bytes(changed), "m")


def test_strict_json_writes_null_for_non_finite_floats():
    text = strict_json({"a": math.nan, "b": [np.float32(np.inf), 1.5, 2], "c": {"d": -math.inf}, "e": "x"})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == \
        {"a": None, "b": [None, 1.5, 2], "c": {"d": None}, "e": "x"}


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
    check_params_files(["--params-file", os.fspath(REPO / "config" / "params.yaml")])
