"""``benchmarks/demo_replay.py``: a demo's goal sets (``goal_sets.json``) replayed in the env, held judged as the demo
judges it (within tolerance for ``SETTLE`` s after first reaching)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.demo_replay import held_after_reaching, main
from helpers import REPO
from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import sample_free_configurations
from mtpolicy.robots import load_robot
from mtpolicy_tools.demo_runs import GoalRun, goal_sets_record


def test_held_after_reaching_is_within_tolerance_for_the_hold_from_the_first_reach_held_at_the_end_for_the_last():
    trace = {"stays": [0.5, 0.01, 0.015, 0.0, 0.0, 0.0], "leaves": [0.5, 0.01, 0.03, 0.0, 0.0, 0.0],
             "never": [0.5, 0.4, 0.3, 0.2, 0.1, 0.1], "late": [0.5, 0.4, 0.3, 0.2, 0.2, 0.01]}
    errors = np.array(list(trace.values())).T[:, :, None]  # (steps, goal sets, one end effector)
    out = held_after_reaching(errors, tolerance=0.02, hold=3)
    np.testing.assert_array_equal(out["first"], [1, 1, -1, 5])
    np.testing.assert_array_equal(out["held"], [True, False, False, False])  # "late": its hold outlasts the run
    np.testing.assert_allclose(out["peak"][[0, 1, 3]], [0.015, 0.03, 0.01])
    assert np.isnan(out["peak"][2])
    np.testing.assert_array_equal(out["final"], [True, True, False, False])  # "leaves" came back to stay
    peaks = errors.copy()  # between control steps: the first reach's own step came from outside (not counted)
    peaks[1, 0], peaks[2, 0] = 0.4, 0.025  # "stays" passes out of tolerance and back within its third step
    between = held_after_reaching(errors, tolerance=0.02, hold=3, peaks=peaks)
    np.testing.assert_array_equal(between["first"], out["first"])
    np.testing.assert_array_equal(between["held"], [False, False, False, False])
    np.testing.assert_allclose(between["peak"][0], 0.025)
    peaks[4, 1] = 0.021  # "leaves" passes out again within the last hold
    np.testing.assert_array_equal(held_after_reaching(errors, 0.02, 3, peaks)["final"], [True, False, False, False])


def test_a_policy_replayed_from_the_demos_starts_holds_what_it_holds_in_the_env(tmp_path, capsys):
    spec = load_robot("planar8")
    kin = Kinematics(spec)
    rng = np.random.default_rng(3)
    starts = sample_free_configurations(kin, rng, 4)
    goals = kin.ee_positions_batch(sample_free_configurations(kin, rng, 4, around=starts, joint_range=0.6))
    runs = [GoalRun(g, q) for g, q in zip(goals, starts)]
    runs[0].held = runs[0].reached = True  # what a demo saw; the replay takes it as given
    runs[0].seconds = 0.3
    path = tmp_path / "goal_sets.json"
    path.write_text(json.dumps(goal_sets_record(runs, 0.02, str(REPO / "models" / "planar8_reach.onnx"))))
    main([str(path)])
    lines = capsys.readouterr().out.splitlines()
    summary = json.loads(lines[-1])
    assert summary == {"goal_sets": 4, "held_demo": 1, "held_env": 4, "missed_by_the_demo_only": [2, 3, 4],
                       "missed_by_both": []}
    assert len(lines) == 7 and lines[2].split()[1] == "yes"
    main([str(path), "--collision-guard"])  # planar8's reach sets are free of contacts: the guard changes nothing
    lines = capsys.readouterr().out.splitlines()
    assert "behind the collision guard" in lines[0] and json.loads(lines[-1]) == summary


def test_a_file_that_is_no_goal_sets_record_is_one_line(tmp_path):
    path = tmp_path / "goal_sets.json"
    path.write_text("{}")
    with pytest.raises(SystemExit) as stop:
        main([str(path)])
    assert stop.value.code == 2
