"""DAgger: the teachers, the error-gain student, a smoke run with export parity, the refined export, and resume after a
kill."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.dagger_refit import refit
from helpers import kill_when_checkpointed
from mtpolicy.observation import observe
from mtpolicy.policy import OnnxPolicy
from mtpolicy.robots import shipped_robots
from mtpolicy_training.algos.dagger import DaggerConfig, ErrorGainActor, Student, Teacher
from mtpolicy_training.core.networks import Normalizer
from mtpolicy_training.core.run_record import RunConfig
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import mink_controller
from mtpolicy_training.envs.seeds import VALIDATION_SEED
from mtpolicy_training.ship.export import parity
from mtpolicy_training.ship.model_card import main as model_card
from mtpolicy_training.ship.refine import main as refine
from mtpolicy_training.train.dagger import LINE_CHUNKS, DaggerTrainConfig, run

SMOKE = ["--iterations", "2", "--num-envs", "8", "--periodic-eval-episodes", "8", "--final-eval-episodes", "8",
         "--algo.updates-per-iteration", "30", "--no-progress"]


def test_error_gain_student_commands_exactly_zero_at_the_goal_and_stays_in_bounds():
    for planned in (False, True):
        env = ReachVectorEnv(16, ReachConfig(goal_distribution="workspace", planned=planned))
        obs, _ = env.reset(seed=0)
        actor = ErrorGainActor(Normalizer(np.zeros(env.layout.size), np.ones(env.layout.size)), env.layout, 8,
                               (32, 32), "relu")
        torch.nn.init.normal_(actor.net[-1].weight, std=10.0)
        q = env.joint_positions()
        at_goal, _ = observe(env.kin, q, env.kin.ee_positions_batch(q), q if planned else None)
        with torch.no_grad():
            moving = actor(torch.as_tensor(obs))
            still = actor(torch.as_tensor(at_goal))
        assert moving.abs().max() <= 1.0 + 1e-6 and moving.abs().max() > 0.5
        assert still.abs().max() == 0.0


def test_servo_teacher_on_planned_observations_is_the_uniformly_scaled_joint_servo():
    env = ReachVectorEnv(8, ReachConfig(goal_distribution="workspace", planned=True))
    obs, _ = env.reset(seed=1)
    teacher = Teacher(DaggerConfig(teacher="servo", teacher_gain=20.0, saturation="uniform"), env)
    dq = env.goal_configs - env.joint_positions()
    raw = 20.0 * dq / env.spec.velocity_limits
    expected = raw / np.maximum(1.0, np.abs(raw).max(axis=1, keepdims=True))
    np.testing.assert_allclose(teacher(obs), expected, atol=1e-5)


def test_mink_teacher_is_the_evaluators_mink_and_a_state_without_a_solution_gets_no_label(tmp_path):
    import tyro

    config = ReachConfig()
    env = ReachVectorEnv(4, config)
    obs, _ = env.reset(seed=3)
    assert np.array_equal(Teacher(DaggerConfig(teacher="mink"), env).unsaturated(obs), mink_controller(config)(obs))
    far = obs.copy()
    far[:, env.layout.slice("joint_pos")] = np.nan  # no QP solution: NaN, not an exception
    assert np.isnan(Teacher(DaggerConfig(teacher="mink"), env).unsaturated(far[:1])).all()
    run(tyro.cli(DaggerTrainConfig, args=SMOKE + ["--algo.teacher", "mink", "--out-dir", str(tmp_path)]))
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert torch.isfinite(checkpoint["data"]["target"]).all() and len(checkpoint["data"]["target"]) > 0


def test_student_learns_the_dls_teacher_on_a_fixed_dataset():
    env = ReachVectorEnv(64, ReachConfig())
    obs, _ = env.reset(seed=2)
    target = Teacher(DaggerConfig(), env)(obs)
    mean, std = env.observation_statistics(n=256)
    student = Student(DaggerConfig(hidden=(64, 64), updates_per_iteration=300, batch_size=64), env.layout, 8,
                      mean, std)
    obs_t, target_t = torch.as_tensor(obs), torch.as_tensor(target, dtype=torch.float32)
    with torch.no_grad():
        before = float(torch.mean((student.policy(obs_t) - target_t) ** 2))
    student.fit(obs_t, target_t, torch.Generator().manual_seed(0))
    after = float(torch.mean((student.policy(obs_t) - target_t) ** 2))
    assert after < 0.2 * before


def test_smoke_run_writes_evaluations_and_policies_with_parity(tmp_path):
    import tyro

    config = tyro.cli(DaggerTrainConfig, args=SMOKE + ["--out-dir", str(tmp_path)])
    final = run(config)
    assert 0.0 <= final["success_rate"] <= 1.0
    for name in ("policy.onnx", "best_policy.onnx", "eval.json", "best_eval.json", "best.json", "metrics.csv"):
        assert (tmp_path / name).exists(), name
    policy = OnnxPolicy(tmp_path / "policy.onnx")
    assert policy.contract.method == "dagger-dls" and policy.contract.goal_distribution == "local"
    env = ReachVectorEnv(32, config.env)
    obs, _ = env.reset(seed=4)
    student = Student(config.algo, env.layout, 8, *env.observation_statistics(n=64))
    student.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=False)["student"])
    assert parity(student.policy, env.spec, tmp_path / "policy.onnx", obs) <= 1e-5


def test_time_optimal_recipe_labels_in_workers_and_measures_time_against_the_bound(tmp_path):
    import tyro

    config = tyro.cli(DaggerTrainConfig, args=SMOKE + [
        "--algo.teacher", "time_optimal", "--algo.saturation", "uniform", "--algo.loss", "relative",
        "--algo.line-sets", "6", "--episode-seconds", "0.5", "--loop.teacher-workers", "2", "--out-dir", str(tmp_path)])
    run(config)  # too small to hold a goal set: the ratios are NaN, but measured
    assert {"time_ratio_median", "time_ratio_p90"} <= set(json.loads((tmp_path / "eval.json").read_text()))
    assert "eval/time_ratio_p90" in (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert OnnxPolicy(tmp_path / "policy.onnx").contract.method == "dagger-time_optimal"
    # the student screen refits the run's dataset with other settings and validates against the bound
    figures = refit(tmp_path, {"hidden": (16,), "updates_per_iteration": 5}, goal_sets=4, seed=VALIDATION_SEED)
    assert figures["states"] == len(torch.load(tmp_path / "checkpoint.pt", weights_only=False)["data"]["target"])
    assert {"loss", "success_rate", "time_ratio_median"} <= set(figures)
    # its student with the target refined in the graph, validated against the bound and exported with the contract
    refine(["--episodes", "4", "--refinement.periods", "2", str(tmp_path)])
    refined = OnnxPolicy(tmp_path / "refined_policy.onnx").contract
    assert refined.method == "dagger-time_optimal-refined" and refined.training_config["refine"]["periods"] == 2
    assert "settle_ratio_p90" in json.loads((tmp_path / "refined_policy.json").read_text())
    # a refined model serves as its run: the student read from its graph, its refinement the default
    refine(["--episodes", "4", "--out", str(tmp_path / "again.onnx"), str(tmp_path / "refined_policy.onnx")])
    again = OnnxPolicy(tmp_path / "again.onnx")
    assert again.contract.training_config["refine"]["periods"] == 2
    assert "the student of refined_policy.onnx" in again.contract.training_config["refine"]["weights"]
    obs, _ = ReachVectorEnv(16, config.env).reset(seed=5)
    np.testing.assert_array_equal(again(obs), OnnxPolicy(tmp_path / "refined_policy.onnx")(obs))
    refine(["--episodes", "4", "--refinement.steps", "1", "--out", str(tmp_path / "one.onnx"),
            str(tmp_path / "again.onnx")])
    assert OnnxPolicy(tmp_path / "one.onnx").contract.training_config["refine"]["periods"] == 2
    with pytest.raises(SystemExit, match="^error: .*policy.onnx: not a refined model"):
        refine(["--out", str(tmp_path / "no.onnx"), str(tmp_path / "policy.onnx")])
    with pytest.raises(SystemExit):
        refine([str(tmp_path / "again.onnx")])  # a model's refinement needs --out


def test_model_card_ships_the_best_policy_with_test_figures_against_dls_and_mink(tmp_path):
    import tyro

    run(tyro.cli(DaggerTrainConfig, args=SMOKE + ["--out-dir", str(tmp_path / "run")]))
    model_card(["--name", "smoke", "--best", "--command", "train it", "--episodes", "4",
                "--out-dir", str(tmp_path / "models"), str(tmp_path / "run")])
    card = (tmp_path / "models" / "smoke.md").read_text()
    figures = json.loads((tmp_path / "models" / "smoke_test.json").read_text())
    assert set(figures) == {"policy", "dls", "mink"} and figures["dls"]["success_rate"] >= 0.5
    assert "held success [95% CI]" in card and "train it" in card and "dagger-dls" in card
    assert OnnxPolicy(tmp_path / "models" / "smoke.onnx").contract.method == "dagger-dls"
    assert (tmp_path / "models" / "smoke_curve.png").stat().st_size > 0
    with pytest.raises(SystemExit, match="^error: .*not a DAgger run with the time_optimal teacher"):
        refine([str(tmp_path / "run")])  # a DLS student's labels are no target


def test_killed_run_resumes_from_its_last_iteration(tmp_path):
    args = [sys.executable, "-m", "mtpolicy_training.train", "dagger", *SMOKE, "--iterations", "6",
            "--out-dir", str(tmp_path)]
    done = kill_when_checkpointed(args, tmp_path / "checkpoint.pt", lambda state: state["iteration"] >= 1)["iteration"]
    assert 1 <= done < 6
    resumed = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming {tmp_path} from step" in resumed.stdout
    rows = (tmp_path / "metrics.csv").read_text().splitlines()[1:]
    assert len(rows) == 6 and json.loads((tmp_path / "best.json").read_text())["iteration"] >= 1


def test_a_run_killed_during_its_line_demonstrations_computes_only_the_chunks_it_lacks(tmp_path):
    args = [sys.executable, "-m", "mtpolicy_training.train", "dagger", *SMOKE, "--iterations", "1",
            "--algo.teacher", "time_optimal", "--algo.line-sets", "64", "--episode-seconds", "0.5",
            "--out-dir", str(tmp_path)]
    chunks = tmp_path / "line_demos"
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list(chunks.glob("lines-*.npz"))) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = children(proc.pid)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 30  # the kernel ends the pool's workers with their parent: none is left behind
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers and not any(Path(f"/proc/{w}").exists() for w in workers)
    saved = len(list(chunks.glob("lines-*.npz")))
    assert 4 <= saved < LINE_CHUNKS and not (tmp_path / "checkpoint.pt").exists()
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    read_back = int(re.search(r"(\d+) of 32 line-demonstration chunks read back", again.stdout).group(1))
    assert read_back >= saved
    assert "64 goal sets" in again.stdout and not chunks.exists()  # the checkpoint holds them now


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux /proc)."""
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()]


def test_a_checkpoint_made_before_the_shared_run_settings_resumes():
    """Before ``TrainSettings`` the budget (derived from the iterations) was not recorded; before
    ``servo_profile`` the servo was per joint."""
    base = RunConfig.of(DaggerTrainConfig(iterations=3))
    assert base.record["budget_steps"] == 3 * 128 * 80
    old = json.loads(json.dumps(base.record))
    del old["budget_steps"], old["algo"]["servo_profile"]
    assert base.differences(old) == []
    assert RunConfig.of(DaggerTrainConfig(iterations=4)).differences(old) == ["iterations"]
    assert RunConfig.of(DaggerTrainConfig(iterations=3, algo=DaggerConfig(servo_profile="synchronised"))
                        ).differences(old) == ["algo.servo_profile"]


def test_an_unknown_robot_is_refused_in_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mtpolicy_training.train", "dagger", "--robot", "nosuch",
                        "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"error: unknown robot 'nosuch': not one of {shipped_robots()}, not a "
                                             "robot folder (with a robot.yaml) and not an MJCF/URDF file"]
