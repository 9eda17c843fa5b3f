"""benchmarks/predictive_arrival.py: the rollouts are copies of the evaluator's simulation, and with one arrival lag
the law is the graph's own."""

import numpy as np
import pytest
import torch
from helpers import REPO

from benchmarks.predictive_arrival import PredictiveArrival, main
from mtpolicy_training.envs.reach import ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import evaluate_reach
from mtpolicy_training.ship.refine import recorded_refinement, refined_student

MODEL = REPO / "models" / "humanoid_reach.onnx"  # a deadbeat graph on a robot that simulates fast


def test_a_copy_steps_as_the_evaluators_simulation_does():
    actor, env, _ = refined_student(MODEL, recorded_refinement(MODEL))
    law = PredictiveArrival(actor, env.config, [0.0, 0.02], horizon=2, n_sets=3)
    sim = ReachVectorEnv(3, env.config, time_limit=False)
    obs, _ = sim.reset(seed=0)
    for t in range(3):  # the copies are made mid-motion, the servos' velocities in flight
        obs, _, _, _, info = sim.step(law.law(obs, 0))
        law.on_step(t, sim, None, info)
    copied = law._copy(obs)
    np.testing.assert_array_equal(copied, np.concatenate([obs, obs]))
    action = np.random.default_rng(0).uniform(-1, 1, (3, sim.spec.n_joints))
    _, _, _, _, info = sim.step(action)
    _, _, _, _, copy_info = law.copies.step(np.concatenate([action, action]))
    np.testing.assert_array_equal(copy_info["errors"], np.concatenate([info["errors"], info["errors"]]))


def test_with_one_arrival_lag_the_law_is_the_graphs_own():
    actor, env, _ = refined_student(MODEL, recorded_refinement(MODEL))
    law = PredictiveArrival(actor, env.config, [0.0], horizon=2, n_sets=4)
    predicted = evaluate_reach(law, env.config, 4, 20240518, per_set=True, on_step=law.on_step)["per_set"]

    def graph(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return actor(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    own = evaluate_reach(graph, env.config, 4, 20240518, per_set=True)["per_set"]
    np.testing.assert_array_equal(predicted["time_to_settle"], own["time_to_settle"])
    assert law.picks.sum() > 0  # calls outside tolerance went through the rollouts


def test_a_model_without_the_deadbeat_command_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(REPO / "models" / "planar8_reach.onnx")])
    assert exit_.value.code == 2
    assert "its command is 'step'; the arrival lag is deadbeat's, the gain servo's" in capsys.readouterr().err


def test_a_servo_graph_chooses_among_servo_gains_and_refuses_arrival_lags(capsys):
    model = REPO / "models" / "panda_reach.onnx"
    actor, env, _ = refined_student(model, recorded_refinement(model))
    law = PredictiveArrival(actor, env.config, [actor.refinement.servo_gain, 30.0], horizon=2, n_sets=2)
    sim = ReachVectorEnv(2, env.config, time_limit=False)
    obs, _ = sim.reset(seed=1)
    differs = []
    for _ in range(8):  # far out both gains ride the limits; nearer, the higher one commands harder
        own = law.law(obs, 0)
        assert law.actor.refinement.servo_gain == actor.refinement.servo_gain
        differs.append(not np.array_equal(law.law(obs, 1), own))
        assert law.actor.refinement.servo_gain == 30.0
        obs, *_ = sim.step(own)
    assert any(differs)
    with pytest.raises(SystemExit) as exit_:
        main([str(model), "--arrival-lags", "0.01"])
    assert exit_.value.code == 2
    assert "a servo graph takes --servo-gains" in capsys.readouterr().err
