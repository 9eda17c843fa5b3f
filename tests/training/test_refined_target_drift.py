"""benchmarks/refined_target_drift.py: a refined policy's box and target call by call, and the periods it loses."""

import numpy as np
import pytest
import torch
from helpers import REPO

from benchmarks.refined_target_drift import NO_BOX, drift_report, hold_first, main
from mtpolicy_training.algos.refined_target import TargetChoice


def test_the_report_counts_the_lost_periods_and_how_far_a_slipping_target_moves():
    travel = np.array([0.1, 0.2])  # each joint's travel in a period at its velocity limit
    targets = np.zeros((4, 2, 2))
    targets[1:, 1] = [0.05, 0.0]  # set 1's target moves by half a period of joint 0 after the first call
    boxes = np.array([[3, 3], [2, 3], [1, 2], [NO_BOX, 1]])  # set 0 on its plan; set 1 stays at 3 once
    outside = np.array([[True, True], [True, True], [True, True], [False, True]])
    report = drift_report(targets, boxes, outside, np.array([3.0, 4.0]), travel, "probe").splitlines()
    assert report[0] == "probe: 2 goal sets, 2 entered"
    assert report[1].startswith("  calls outside tolerance 7; no box lands on 0 (0.0%)")
    assert report[2] == "  first call's box, median 3 periods; entering step minus it: +0: 50.0%, +1: 50.0%"
    assert report[3] == "  calls before entering whose box does not fall by one: 1, on 1/2 sets"
    assert report[4].startswith("  the target moves there by 0.50 periods at the velocity limit (median)")


def test_holding_keeps_the_first_target_only_where_it_was_chosen_outside_tolerance_and_still_is():
    def choice(target: float, chosen: list[bool], within: list[bool]) -> TargetChoice:
        return TargetChoice(torch.full((4, 2), target), torch.tensor(chosen), torch.ones(7, 4, dtype=torch.bool),
                            torch.tensor(within), torch.zeros(4, 2))

    first = choice(1.0, [True, True, False, True], [False, False, False, True])
    held = hold_first(choice(2.0, [False, True, False, True], [False, True, False, False]), first)
    np.testing.assert_array_equal(held.target[:, 0].numpy(), [1.0, 2.0, 2.0, 2.0])  # row 1 within; 2, 3 not chosen
    np.testing.assert_array_equal(held.chosen.numpy(), [True, True, False, True])


@pytest.mark.parametrize("hold", [False, True])
def test_a_shipped_refined_model_is_traced_call_by_call(tmp_path, capsys, hold):
    main([str(REPO / "models" / "planar8_reach.onnx"), "--episodes", "4", "--bound-cache", str(tmp_path)]
         + ["--hold-first-target"] * hold)
    lines = capsys.readouterr().out.splitlines()
    law = "holding the first target" if hold else "as the graph plans"
    assert lines[0] == f"planar8_reach.onnx, seed 20240518, {law}: 4 goal sets, 4 entered", lines
    assert any(line.startswith("  calls before entering whose box does not fall by one:") for line in lines), lines
    assert lines[-1].startswith("  held 1.000; enter / bound "), lines


def test_a_model_without_a_refinement_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(REPO / "models" / "planar8_digrad.onnx")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "not a refined model" in err[-1], err
