"""The reach evaluator: held success, reached-once, dithering, both goal distributions, both anchors; the CLI."""

import json

import numpy as np
import pytest

from mtpolicy_training.envs.reach import ReachConfig
from mtpolicy_training.ship.evaluate import main
from mtpolicy_training.envs.reach_evaluation import (Protocol, dls_controller, evaluate_reach, mink_controller,
                                                     wilson_interval)

CONFIG = ReachConfig()
STEPS, HOLD = Protocol().steps(CONFIG.control_period)


def test_held_success_and_dithering_separate_a_settling_controller_from_a_dithering_one():
    dls = dls_controller(CONFIG)
    settled = evaluate_reach(dls, CONFIG, 16)
    assert settled["success_rate"] >= 0.9 and settled["left_after_reach_rate"] == 0
    assert settled["left_after_entering_rate"] == 0
    assert settled["time_to_settle_median"] == settled["time_to_reach_median"]
    assert settled["dither_sign_changes"] == 0 and settled["reached_rate"] >= settled["success_rate"]

    step = [0]

    def dither(obs):  # DLS until half the hold window is left, then +-0.6 of the limit every other step
        step[0] += 1
        late = step[0] > STEPS - HOLD // 2
        return dls(obs) + (0.6 * (-1) ** step[0] if late else 0.0)

    dithered = evaluate_reach(dither, CONFIG, 16)
    assert dithered["reached_rate"] >= 0.9 and dithered["success_rate"] < 0.5
    assert dithered["left_after_reach_rate"] > 0.5 and dithered["dither_sign_changes"] >= HOLD // 2 - 2
    assert dithered["left_after_entering_rate"] >= dithered["left_after_reach_rate"]

    def bump(obs):  # DLS, pushed out of the tolerance for 2 steps at 1.5 s, back before the final second
        step[0] += 1
        return dls(obs) + (0.6 if step[0] in (30, 31) else 0.0)

    step[0] = 0
    bumped = evaluate_reach(bump, CONFIG, 16)
    assert bumped["success_rate"] >= 0.9 and bumped["left_after_entering_rate"] >= 0.9
    assert bumped["time_to_settle_median"] > 1.5 > bumped["time_to_reach_median"]

    still = evaluate_reach(lambda obs: np.zeros((len(obs), 8)), CONFIG, 4)
    assert still["success_rate"] == 0 and still["reached_rate"] == 0 and still["dither_sign_changes"] == 0
    assert np.isnan(still["time_to_reach_median"])


def test_same_seed_same_goal_sets_and_workspace_is_harder_for_dls():
    dls = dls_controller(CONFIG)
    assert evaluate_reach(dls, CONFIG, 8, seed=5) == evaluate_reach(dls, CONFIG, 8, seed=5)
    workspace = ReachConfig(goal_distribution="workspace")
    assert evaluate_reach(dls, workspace, 32, seed=5)["success_rate"] < \
        evaluate_reach(dls, CONFIG, 32, seed=5)["success_rate"]


@pytest.mark.parametrize("robot", ["planar8", "humanoid"])
def test_mink_anchor_reaches_local_goal_sets(robot):
    config = ReachConfig(robot=robot)
    result = evaluate_reach(mink_controller(config), config, 8, seed=7)
    assert result["success_rate"] >= 0.75 and result["time_to_reach_median"] < 1.0


def test_wilson_interval_brackets_the_rate():
    low, high = wilson_interval(495, 500)
    assert low < 0.99 < high <= 1.0
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)


def test_cli_evaluates_the_shipped_policy_next_to_dls_and_mink(capsys):
    main(["planar8_digrad", "--episodes", "8", "--seed", "3"])
    results = json.loads(capsys.readouterr().out)
    assert set(results) == {"policy", "dls", "mink"}
    assert results["policy"]["3"].keys() == results["dls"]["3"].keys()
    assert 0 <= results["policy"]["3"]["success_rate"] <= 1 and results["dls"]["3"]["success_rate"] >= 0.75


def test_cli_refuses_an_unknown_model_in_one_line():
    with pytest.raises(SystemExit, match="neither a file nor a shipped model"):
        main(["no_such_model"])
