"""benchmarks/late_ticks.py: a policy held after reaching, with late commands, beside its own without them."""

from helpers import REPO

from benchmarks.late_ticks import figures, main
from mtpolicy_training.envs.reach import LateTicks


def test_each_delay_is_a_row_beside_the_policys_own_without_late_commands(capsys):
    main([str(REPO / "models" / "planar8_reach.onnx"), "--episodes", "8", "--delay", "0.01"])
    header, baseline, late = capsys.readouterr().out.strip().splitlines()
    assert header.split()[2:] == ["held", "reach", "median", "reach", "p90", "held", "at", "end", "left", "by",
                                  "(mm)"]
    assert baseline.split()[1] == "0ms" and baseline.count("(1.00x)") == 4, baseline
    assert late.split()[1] == "10ms", late


def test_a_hand_that_passes_through_the_tolerance_between_control_steps_is_not_held():
    """planar8_reach's step command (to its target in the least number of periods, no braking for the servos) with
    every command 24 ms late: held after reaching less often than on time, judged at every physics step (seeded: 18
    of 32 sets against 32), though every hand that left came back to stay (held at the end: 32 of 32)."""
    model = REPO / "models" / "planar8_reach.onnx"
    on_time, late = (figures(model, 32, 3, ticks) for ticks in (LateTicks(), LateTicks(1.0, 0.024)))
    assert late["held"] < on_time["held"], (on_time, late)
    assert late["held_at_end"] > late["held"] and late["left_beyond_mm_p90"] > 0, late
