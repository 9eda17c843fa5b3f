"""DiGrad / DDPG: the gradient routing of Eq. 10-12, smoke runs, resume, config errors."""

import csv
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from helpers import kill_when_checkpointed
from mtpolicy.robots import load_robot
from mtpolicy_training.algos.digrad import DiGrad, DiGradConfig, gradient_weights
from mtpolicy_training.core.offpolicy import LoopConfig
from mtpolicy_training.core.replay import Batch
from mtpolicy_training.core.run_record import RunConfig, RunRecorder
from mtpolicy_training.envs.reach import ReachConfig
from mtpolicy_training.train.cli import main
from mtpolicy_training.train.digrad import DiGradTrainConfig as TrainConfig

SPEC = load_robot("planar8")
SETTINGS = [("digrad", "single", True), ("digrad", "single", False), ("digrad", "multi", True),
            ("digrad", "multi", False), ("ddpg", "single", False)]


def test_gradient_weights_average_shared_actions_with_the_heuristic():
    w = gradient_weights(SPEC.chain_mask, heuristic=True)
    np.testing.assert_allclose(w[:, :2], 1 / 3)  # two base joints shared by k = 3 tasks
    np.testing.assert_array_equal(w[:, 2:], SPEC.chain_mask[:, 2:])
    np.testing.assert_array_equal(gradient_weights(SPEC.chain_mask, heuristic=False), SPEC.chain_mask)


@pytest.mark.parametrize("critic", ["single", "multi"])
@pytest.mark.parametrize("heuristic", [True, False])
def test_actor_gradient_is_eq12(critic, heuristic):
    """The routed actor loss gives sum_i w_i * dQ_i/da_i * dmu/dtheta, computed here head by head."""
    torch.manual_seed(0)
    m = DiGrad(DiGradConfig(critic=critic, heuristic=heuristic), SPEC, np.zeros(59), np.ones(59))
    obs = torch.randn(16, 59)
    a = m.actor(obs)
    detached = a.detach()
    routed = detached + m.grad_weights.unsqueeze(1) * (a - detached).unsqueeze(0)
    got = torch.autograd.grad(-m.critic(obs, routed)[0].sum(1).mean(), list(m.actor.parameters()))

    w = gradient_weights(SPEC.chain_mask, heuristic)
    action_grad = torch.zeros_like(detached)
    for i in range(3):
        x = detached.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(m.critic(obs, x)[0, :, i].sum(), x)
        action_grad += torch.as_tensor(w[i]) * g
    want = torch.autograd.grad(-(action_grad * m.actor(obs)).sum() / 16, list(m.actor.parameters()))
    for g1, g2 in zip(got, want):
        torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-6)


def test_multi_critic_q_i_depends_on_a_i_only():
    m = DiGrad(DiGradConfig(critic="multi"), SPEC, np.zeros(59), np.ones(59))
    obs, a = torch.randn(4, 59), torch.zeros(4, 8, requires_grad=True)
    (g,) = torch.autograd.grad(m.critic(obs, a)[0, :, 0].sum(), a)
    assert torch.all(g[:, ~torch.as_tensor(SPEC.chain_mask[0])] == 0)


def random_batch() -> Batch:
    return Batch(obs=torch.randn(64, 59), action=torch.rand(64, 8) * 2 - 1, rewards=torch.randn(64, 3),
                 next_obs=torch.randn(64, 59), terminated=torch.zeros(64, dtype=torch.bool),
                 truncated=torch.zeros(64, dtype=torch.bool), task=torch.zeros(64, dtype=torch.long))


def test_critic_update_reduces_the_td_error_on_a_fixed_batch():
    torch.manual_seed(0)
    m = DiGrad(DiGradConfig(), SPEC, np.zeros(59), np.ones(59))
    b = random_batch()
    first = m.update(b)["critic_loss"]
    for _ in range(50):
        last = m.update(b)["critic_loss"]
    assert last < first


def test_the_actor_stays_at_its_start_through_the_critic_warmup_then_learns():
    torch.manual_seed(0)
    m = DiGrad(DiGradConfig(critic_warmup=3, policy_delay=1), SPEC, np.zeros(59), np.ones(59))
    start = [p.detach().clone() for p in m.actor.parameters()]
    critic = [p.detach().clone() for p in m.critic.parameters()]
    b = random_batch()
    for _ in range(3):
        assert "actor_loss" not in m.update(b)
    assert all(torch.equal(p, q) for p, q in zip(m.actor.parameters(), start))
    assert not all(torch.equal(p, q) for p, q in zip(m.critic.parameters(), critic))
    assert "actor_loss" in m.update(b)
    assert not all(torch.equal(p, q) for p, q in zip(m.actor.parameters(), start))
    assert DiGradConfig(critic_warmup=-1).validate() == ["critic_warmup"]


TINY = ["--budget-steps", "640", "--loop.learning-starts", "320", "--loop.eval-every", "320",
        "--loop.checkpoint-every", "320", "--periodic-eval-episodes", "4", "--final-eval-episodes", "8",
        "--loop.batch-size", "32", "--no-progress"]


@pytest.mark.parametrize("method,critic,heuristic", SETTINGS)
def test_every_setting_trains_evaluates_and_exports(tmp_path, method, critic, heuristic):
    args = ["digrad", "--algo.method", method, "--algo.critic", critic,
            "--algo.heuristic" if heuristic else "--algo.no-heuristic", "--out-dir", str(tmp_path)] + TINY
    main(args)
    for f in ("metrics.csv", "eval.json", "policy.onnx", "checkpoint.pt", "config.json", "best_policy.onnx",
              "best.json", "best_eval.json"):
        assert (tmp_path / f).is_file(), f
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert "eval/success_rate" in header and "train/critic_loss" in header
    with (tmp_path / "metrics.csv").open() as f:
        validation = [float(r["eval/success_rate"]) for r in csv.DictReader(f) if r["eval/success_rate"]]
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["success_rate"] == max(validation)
    best_eval = json.loads((tmp_path / "best_eval.json").read_text())
    found = best_eval["found_after_train_seconds"]  # the one run-record schema (core/trainer.py)
    assert found == best["found_after_train_seconds"] and 0 < found <= best_eval["train_wall_seconds_this_session"]
    assert best_eval["step"] == best["step"] in (320, 640) and best_eval["updates"] == best["updates"] > 0


def test_bad_config_value_fails_at_start_naming_it(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mtpolicy_training.train", "digrad", "--algo.tau", "0",
                        "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "tau" in r.stderr
    with pytest.raises(ValueError, match="update_every"):
        TrainConfig(out_dir=tmp_path, loop=TrainConfig().loop.__class__(num_envs=16, update_every=10))


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    cmd = [sys.executable, "-m", "mtpolicy_training.train", "digrad", "--out-dir", str(tmp_path), "--budget-steps",
           "2880", "--loop.learning-starts", "320", "--loop.eval-every", "1600", "--loop.checkpoint-every", "320",
           "--periodic-eval-episodes", "4", "--final-eval-episodes", "8", "--loop.batch-size", "32", "--no-progress"]
    saved = kill_when_checkpointed(cmd, tmp_path / "checkpoint.pt", lambda state: state["step"] >= 960, 120)["step"]
    assert 960 <= saved < 2880
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"from step {saved}" in r.stdout
    steps = [int(float(line.split(",")[0])) for line in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)) and steps[-1] == 2880


def test_training_time_counts_every_session_of_a_resumed_run(tmp_path):
    """``perf/train_seconds`` continues from the checkpoint's count; a new session does not restart it at 0."""
    config = RunConfig.of(TrainConfig(out_dir=tmp_path))
    first = RunRecorder(tmp_path, config, 10, progress=False)
    first.advance(5)
    time.sleep(0.5)
    first.log({}, {})
    first.save()
    first.close()
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["train_seconds"]
    assert saved >= 0.5
    second = RunRecorder(tmp_path, config, 10, progress=False)
    second.advance(5)
    second.log({}, {})
    second.close()
    logged = [float(line.split(",")[-1]) for line in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert len(logged) == 2 and saved <= logged[1] < saved + 30


def test_progress_in_a_log_file_is_one_line_per_refresh(tmp_path, capsys):
    """stderr is not a terminal here (a harness cell's train.log): no carriage returns, no repeated closing line."""
    run = RunRecorder(tmp_path, RunConfig.of(TrainConfig(out_dir=tmp_path)), 10, progress=True)
    run.advance(4)
    run.log({"success_rate": 0.5}, {})  # a metric row redraws the bar at once
    run.advance(6)
    run.close()
    lines = capsys.readouterr().err.splitlines()
    assert "\r" not in "".join(lines) and len(lines) == len(set(lines)) == 3
    assert lines[0].startswith("0%") and "4/10" in lines[1] and "success_rate=0.5" in lines[1]
    assert lines[2].startswith("100%") and "10/10" in lines[2]


def test_resume_check_names_changed_settings_and_accepts_options_added_at_their_default():
    base = RunConfig.of(TrainConfig())
    recorded = json.loads(json.dumps(base.record))
    del recorded["env"]["centre_reward"]  # a checkpoint made before the option existed
    assert base.differences(recorded) == []
    assert RunConfig.of(TrainConfig(env=ReachConfig(centre_reward=True))).differences(recorded) == ["env.centre_reward"]
    changed = RunConfig.of(TrainConfig(seed=7, algo=DiGradConfig(gamma=0.9)))
    assert changed.differences(base.record) == ["algo.gamma", "seed"]
    # the thread count is a speed setting: a checkpoint that recorded it (before it was left out) resumes on others
    recorded["loop"]["torch_threads"] = 1
    assert RunConfig.of(TrainConfig(loop=LoopConfig(torch_threads=2))).differences(recorded) == []
    assert "torch_threads" not in base.record["loop"]


def test_a_budget_that_ends_before_learning_starts_warns(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mtpolicy_training.train", "digrad", "--out-dir", str(tmp_path),
                        "--budget-steps", "320", "--loop.learning-starts", "5000", "--final-eval-episodes", "4",
                        "--periodic-eval-episodes", "4", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ends before learning starts" in r.stderr and "no update will run" in r.stderr
