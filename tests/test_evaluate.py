"""The reach evaluator: settling metrics tell a settling controller from a dithering one; the CLI."""

import json

import numpy as np

from mtpolicy_training.envs.reach import ReachConfig
from mtpolicy_training.evaluate import SETTLE_STEPS, dls_controller, evaluate_reach, main

CONFIG = ReachConfig()


def test_settling_metrics_separate_settling_from_dithering():
    dls = dls_controller(CONFIG)
    settled = evaluate_reach(dls, CONFIG, 16)
    assert settled["success_rate"] >= 0.9 and settled["left_after_reach_rate"] == 0
    assert settled["action_sign_change_rate"] < 0.1 and settled["settled_action_abs_mean"] < 0.02

    step = [0]

    def dither(obs):  # DLS until 10 steps before the end, then +-0.6 of the limit every other step
        step[0] += 1
        late = step[0] > CONFIG.max_episode_steps - SETTLE_STEPS // 2
        return dls(obs) + (0.6 * (-1) ** step[0] if late else 0.0)

    dithered = evaluate_reach(dither, CONFIG, 16)
    assert dithered["left_after_reach_rate"] > 0.5 and dithered["success_rate"] < 0.5
    assert dithered["action_sign_change_rate"] > 0.4

    still = evaluate_reach(lambda obs: np.zeros((len(obs), 8)), CONFIG, 4)
    assert still["success_rate"] == 0 and still["left_after_reach_rate"] == 0
    assert still["action_sign_change_rate"] == 0 and np.isnan(still["settled_action_abs_mean"])


def test_cli_evaluates_the_shipped_policy_next_to_dls(capsys):
    main(["planar8_digrad", "--goal-sets", "8"])
    results = json.loads(capsys.readouterr().out)
    assert set(results) == {"policy", "dls"}
    assert results["policy"].keys() == results["dls"].keys()
    assert 0 <= results["policy"]["success_rate"] <= 1 and results["dls"]["success_rate"] >= 0.75
