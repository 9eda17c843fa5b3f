"""benchmarks/late_ticks.py: a policy's figures with late commands beside its own without them."""

from helpers import REPO

from benchmarks.late_ticks import FIGURES, main


def test_each_delay_is_a_row_beside_the_policys_own_without_late_commands(capsys):
    main([str(REPO / "models" / "planar8_reach.onnx"), "--episodes", "8", "--rate", "1.0", "--delay", "0.02"])
    header, baseline, late = capsys.readouterr().out.strip().splitlines()
    assert all(k in header for k in FIGURES)
    assert baseline.split()[1] == "0ms" and baseline.count("(1.00x)") == 3, baseline  # held, settle median, p90
    assert late.split()[1] == "20ms", late
