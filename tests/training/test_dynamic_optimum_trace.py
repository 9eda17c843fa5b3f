"""benchmarks/dynamic_optimum.py --trace: each period's error and command of the policy beside the optimum's."""

import re

import pytest
from helpers import REPO

from benchmarks.dynamic_optimum import main

MODEL = str(REPO / "models" / "planar8_reach.onnx")


def test_a_traced_set_prints_the_policy_and_the_optimum_period_by_period(tmp_path, capsys):
    main([MODEL, "--episodes", "2", "--trace", "1", "--cache-dir", str(tmp_path)])
    out = capsys.readouterr().out
    header = re.search(r"^set 1: optimum (\d+), N\* (\d+)$", out, re.MULTILINE)
    assert header is not None, out
    rows = out[header.end():].strip().splitlines()
    assert len(rows) == 2 * (int(header[1]) + 3), rows  # the optimum's periods and 3 more, two rows each
    for period, (policy, optimum) in enumerate(zip(rows[::2], rows[1::2]), start=1):
        for row, name in ((policy, "policy"), (optimum, "optimum")):
            words = row.split()
            assert words[:2] == [str(period), name] and words[3] == "mm", row
            assert len(words) == 4 + 8 and all(-1.0 <= float(c) <= 1.0 for c in words[4:]), row  # 8 joints
    assert float(rows[-1].split()[2]) <= 20.0  # the optimum's replay ends within planar8's tolerance


def test_a_set_that_is_not_drawn_is_refused_before_the_search(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([MODEL, "--episodes", "2", "--trace", "2"])
    assert exit_.value.code == 2
    assert "--trace: no goal set 2 among 2" in capsys.readouterr().err
