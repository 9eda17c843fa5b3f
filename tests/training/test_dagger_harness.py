"""DAgger in the harness: the comparison preset against DiGrad, the budget as whole iterations, a tiny grid cell
killed and resumed through the harness, old checkpoints' records, and the test-seed table of a grid."""

import json
import sys
from pathlib import Path

import pytest

from helpers import kill_when_checkpointed
from mtpolicy_training.algos.dagger import DaggerConfig
from benchmarks.harness import METHODS, PRESETS, GridSpec, run_grid
from mtpolicy_training.core.run_record import RunConfig
from mtpolicy_training.ship.reach_table import goal_set_config
from mtpolicy_training.ship.reach_table import main as reach_table
from mtpolicy_training.train.cli import main as train
from mtpolicy_training.train.dagger import DaggerTrainConfig
from mtpolicy_training.train.family import GridCell

TINY = {"num_envs": "4", "algo.updates-per-iteration": "20", "algo.batch-size": "64", "algo.hidden": "32 32",
        "periodic-eval-episodes": "4", "final-eval-episodes": "4"}
"""A dagger cell of a few seconds: 4 episodes of 80 steps per iteration (320 env steps), 20 updates."""
ITERATION = 4 * 80


def test_the_preset_runs_dagger_against_digrads_best_setting_at_one_budget_on_the_same_goal_sets():
    _, spec = PRESETS["reach-dagger-vs-digrad"]
    assert (spec.methods, spec.task_set, spec.seed, spec.budget_steps) == (
        ["dagger", "digrad-single-heur"], ["planar8", "humanoid"], [1, 2, 3], 51_200)
    spec.validate()
    for robot in spec.task_set:
        dagger, digrad = (GridCell(METHODS[m].family, robot, 1, spec.budget_steps, Path("x"), {}).config(
            list(METHODS[m].check_args)) for m in spec.methods)
        assert (dagger.iterations, dagger.budget_steps, digrad.budget_steps) == (5, 51_200, 51_200)
        assert (dagger.algo.teacher, dagger.env.planned, digrad.algo.critic, digrad.algo.heuristic) == (
            "dls", False, "single", True)
        assert goal_set_config(dagger.env) == goal_set_config(digrad.env)
        assert dagger.env.robot == robot and dagger.env.goal_distribution == "local"


def test_the_budget_is_whole_iterations_and_below_one_it_is_refused_in_one_line(capsys, tmp_path):
    assert (DaggerTrainConfig().iterations, DaggerTrainConfig().budget_steps) == (12, 12 * 10_240)
    assert (DaggerTrainConfig(budget_steps=25_000).iterations, DaggerTrainConfig(budget_steps=25_000).budget_steps) \
        == (2, 20_480)
    assert DaggerTrainConfig(iterations=3).budget_steps == DaggerTrainConfig(budget_steps=30_720).budget_steps
    for args, message in [(["--budget-steps", "10239"], "budget_steps (10239 is below one DAgger iteration: num_envs "
                                                        "128 x 80 steps = 10240)"),
                          (["--budget-steps", "40960", "--iterations", "3"], "iterations (3) and budget_steps")]:
        with pytest.raises(SystemExit) as exit_:
            train(["dagger", *args, "--out-dir", str(tmp_path / "run")])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="budget_steps 1000"):  # a grid refuses it before any cell runs
        GridSpec(methods=["dagger"], budget_steps=1000, results_root=tmp_path).validate()


def test_a_checkpoint_of_train_dagger_before_the_budget_option_resumes_under_either_word():
    """The config record ``train dagger --iterations 3 --num-envs 8 --periodic-eval-episodes 8
    --final-eval-episodes 8 --algo.updates-per-iteration 30`` wrote at commit 46620da."""
    old = {"budget_steps": 1920, "seed": 1, "out_dir": "/tmp/old", "periodic_eval_episodes": 8,
           "final_eval_episodes": 8,
           "algo": {"teacher": "dls", "teacher_gain": 12.0, "saturation": "clip", "hidden": [256, 256, 256],
                    "activation": "relu", "lr": 0.001, "batch_size": 512, "updates_per_iteration": 30,
                    "teacher_mix": 0.5, "action_noise": 0.1},
           "env": {"robot": "planar8", "end_effectors": [], "control_period": 0.05, "max_episode_steps": 60,
                   "reach_tolerance": 0.02, "error_scale": 1.0, "task_done_reward": 0.1, "all_done_reward": 1.0,
                   "centre_reward": False, "reward_mode": "digrad", "goal_joint_range": 1.0,
                   "goal_distribution": "local", "planned": False,
                   "planner": {"restarts": 24, "iterations": 100, "damping": 0.01, "tolerance": 0.001, "seed": 0,
                               "margin": 0.02}},
           "iterations": 3, "num_envs": 8, "episode_seconds": 4.0}
    common = dict(num_envs=8, periodic_eval_episodes=8, final_eval_episodes=8, out_dir=Path("/tmp/moved"),
                  algo=DaggerConfig(updates_per_iteration=30))
    for budget in ({"iterations": 3}, {"budget_steps": 1920}, {"budget_steps": 2000}):
        assert RunConfig.of(DaggerTrainConfig(**budget, **common)).differences(old) == [], budget
    assert RunConfig.of(DaggerTrainConfig(budget_steps=2560, **common)).differences(old) == ["budget_steps",
                                                                                           "iterations"]


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory) -> GridSpec:
    """dagger on planar8, seeds 1 and 2, two iterations each; seed 1's cell (the harness's ``run_cell``, as a
    pool worker runs it) killed by SIGKILL after its first iteration, then the grid finishes both."""
    spec = GridSpec(methods=["dagger"], task_set=["planar8"], seed=[1, 2], budget_steps=2 * ITERATION,
                    overrides=[f"{k}={v}" for k, v in TINY.items()], name="tiny", workers=1,
                    results_root=tmp_path_factory.mktemp("grids"), bootstrap_reps=100)
    cell = spec.grid_dir.resolve() / "runs" / "dagger" / "planar8" / "1"
    job = ("dagger", "planar8", 1, spec.budget_steps, cell, TINY | {"loop.torch_threads": "1"})
    code = ("from pathlib import PosixPath; from benchmarks.harness.run import run_cell; "
            f"run_cell{job!r}")
    killed = kill_when_checkpointed([sys.executable, "-c", code], cell / "checkpoint.pt",
                                    lambda state: state["iteration"] >= 1)
    assert killed["iteration"] >= 1
    run_grid(spec)
    return spec


def test_a_tiny_dagger_cell_trains_through_the_harness_and_a_killed_one_resumes(tiny_grid):
    for seed, resumed in ((1, True), (2, False)):
        cell = tiny_grid.grid_dir / "runs" / "dagger" / "planar8" / str(seed)
        assert {"eval.json", "metrics.csv", "policy.onnx", "cell.json"} <= {p.name for p in cell.iterdir()}
        assert json.loads((cell / "cell.json").read_text())["resumed_from_checkpoint"] is resumed
        assert ("resuming" in (cell / "train.log").read_text()) is resumed
        steps = [int(r.split(",")[0]) for r in (cell / "metrics.csv").read_text().splitlines()[1:]]
        assert steps == [ITERATION, 2 * ITERATION]
        assert 0.0 <= json.loads((cell / "eval.json").read_text())["success_rate"] <= 1.0
        assert json.loads((cell / "config.json").read_text())["iterations"] == 2
    assert "dagger" in (tiny_grid.grid_dir / "table.md").read_text()


def test_the_test_seed_table_of_a_grid_pools_its_seeds_last_policies(tiny_grid):
    out = tiny_grid.grid_dir / "test-seeds"
    reach_table(["--grids", str(tiny_grid.grid_dir), "--episodes", "4", "--anchors", "dls", "--out-dir", str(out),
                 "--bound-cache", str(tiny_grid.grid_dir / "bounds")])
    results = {r["controller"]: r for r in json.loads((out / "results.json").read_text())}
    row = results["dagger"]
    assert set(results) == {"dagger", "dls"} and row["training_seeds"] == [1, 2]
    assert len(row["per_seed"]) == 2 * 3 and len(row["per_training_seed"]) == 2
    held = [s["success_rate"] for s in row["per_training_seed"]]
    assert row["held_per_training_seed"] == pytest.approx({"mean": sum(held) / 2, "min": min(held), "max": max(held)})
    pooled = row["summary"]
    assert pooled["success_rate"] == pytest.approx(sum(r["success_rate"] for r in row["per_seed"]) / 6)
    assert pooled["success_low"] <= pooled["success_rate"] <= pooled["success_high"]
    assert results["dls"]["summary"]["success_rate"] >= 0.5 and "training_seeds" not in results["dls"]
    table = (out / "table.md").read_text()
    assert "| planar8 | local | dagger (seeds 1, 2) |" in table and "held per training seed" in table
    assert f"tiny: {2 * ITERATION} env steps per run" in table
