"""benchmarks/arrival_choice.py: labels are the predictive law's rollouts, cached per seed; the head is fitted by
expected cost; the graph's own law and the head's run side by side."""

import numpy as np
import pytest
import torch
from helpers import REPO

from benchmarks.arrival_choice import LEFT_COST, NEVER_COST, features, fit, label_costs, labels, main
from benchmarks.predictive_arrival import LEFT, NEVER, PredictiveArrival
from mtpolicy_training.envs.reach_evaluation import evaluate_reach
from mtpolicy_training.ship.refine import recorded_refinement, refined_student

MODEL = REPO / "models" / "humanoid_reach.onnx"  # a deadbeat graph on a robot that simulates fast
LAGS = [0.0, 0.01]


def test_labels_are_the_predictive_laws_calls_outside_tolerance_and_are_cached(tmp_path):
    actor, env, _ = refined_student(MODEL, recorded_refinement(MODEL))
    path = tmp_path / "labels.npz"
    obs, outcomes = labels(actor, env.config, LAGS, 3, 3, 7, path)
    law = PredictiveArrival(actor, env.config, LAGS, 3, 3)
    outside_calls: list[int] = []
    evaluate_reach(lambda o: (outside_calls.append(int(law.outside(o).sum())), law(o))[1], env.config, 3, 7,
                   on_step=law.on_step)
    assert len(obs) == len(outcomes) == sum(outside_calls) > 0
    assert outcomes.shape == (len(obs), len(LAGS))
    assert np.isin(outcomes, [*range(3), NEVER, LEFT]).all()
    cached_obs, cached_outcomes = labels(actor, env.config, LAGS, 3, 3, 7, path)  # read back, not recomputed
    np.testing.assert_array_equal(cached_obs, obs)
    np.testing.assert_array_equal(cached_outcomes, outcomes)


def test_the_head_learns_the_lag_a_feature_separates():
    torch.manual_seed(0)
    inputs = torch.randn(2000, 5)
    first_better = (inputs[:, 0] > 0).numpy()
    outcomes = np.where(first_better[:, None], [[2, 3]], [[NEVER, 1]])
    costs = label_costs(outcomes)
    assert costs.max() == NEVER_COST and label_costs(np.array([[LEFT, 0]]))[0, 0] == LEFT_COST
    head, regrets = fit(inputs, costs, steps=1000)
    assert float(regrets.split("head ")[1].split(";")[0]) < 0.2  # periods per held-out call (a miss costs 2 or 9)
    with torch.no_grad():
        taken = head(inputs).argmax(dim=1).numpy()
    assert (taken == np.where(first_better, 0, 1)).mean() > 0.98


def test_features_are_the_students_input_the_targets_distance_and_the_previous_command():
    actor, env, _ = refined_student(MODEL, recorded_refinement(MODEL))
    obs, _ = env.reset(seed=3)
    with torch.no_grad():
        x, choice = features(actor, torch.as_tensor(obs, dtype=torch.float32))
    n = env.spec.n_joints
    assert x.shape == (1, actor.student_input.stop + 2 * n)
    q = obs[:, actor.joint_pos]
    np.testing.assert_allclose(x[:, -2 * n:-n].numpy(), (choice.target.numpy() - q) / actor.period_step.numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model, option, values, knob", [
    ("humanoid_reach", "--arrival-lags", ["0.0", "0.01"], "arrival lag"),  # deadbeat, observes its last command
    ("panda_reach", "--servo-gains", ["10.0", "20.0"], "servo gain"),  # servo, without it
])
def test_the_benchmark_prints_both_laws_side_by_side(model, option, values, knob, tmp_path, capsys):
    main([str(REPO / "models" / f"{model}.onnx"), option, *values, "--horizon", "3", "--label-seeds", "7",
          "--label-sets", "3", "--fit-steps", "20", "--label-cache", str(tmp_path), "--episodes", "3"])
    out = capsys.readouterr().out
    assert "held-out regret" in out and "graph's own law: held" in out and f"head's {knob}: held" in out
    assert "mean settle, head / own:" in out
    assert len(list(tmp_path.glob(f"{model}-*-h3-{'_'.join(values)}-7-3.npz"))) == 1


def test_a_corrupt_label_cache_is_refused_in_one_line(tmp_path, capsys):
    argv = [str(MODEL), "--arrival-lags", *map(str, LAGS), "--horizon", "3", "--label-seeds", "7", "--label-sets",
            "3", "--label-cache", str(tmp_path)]
    main([*argv, "--fit-steps", "1", "--episodes", "1"])
    cache = next(tmp_path.glob("*.npz"))
    cache.write_bytes(cache.read_bytes()[:100])  # a run killed while another wrote it, a disk error
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "not a label cache of this benchmark" in err and "delete it to label again" in err


@pytest.mark.parametrize("argv, message", [
    (["--label-seeds", "20240517"], "training seeds only"),
    (["--arrival-lags", "0"], "two or more --arrival-lags or --servo-gains"),
])
def test_a_bad_argument_is_refused_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(MODEL), *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
