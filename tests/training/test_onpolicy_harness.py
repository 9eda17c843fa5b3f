"""PPO + specialization and A2C in the harness on a robot's variants (issue 63): the reach re-test presets, a tiny
grid of each family's methods through ``run_grid``, and the test-seed table's row per (method, variant robot)."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from helpers import REPO
from benchmarks.harness import METHODS, PRESETS, GridSpec, run_grid
from mtpolicy.robots.variants import variants_of
from mtpolicy_training.ship.reach_table import grid_rows
from mtpolicy_training.ship.reach_table import main as reach_table
from mtpolicy_training.train import ppo
from mtpolicy_training.train.family import GridCell

PLANAR8 = variants_of("planar8")
PPO_TINY = ["loop.rollout-steps=32", "loop.eval-every=192", "loop.checkpoint-every=192", "algo.variance-iterations=1",
            "algo.ppo.hidden=16 16", "periodic-eval-episodes=1", "final-eval-episodes=1"]
"""A PPO cell of two iterations of 6 envs x 32 steps: one joint, one specialized (jt = half the budget)."""
A2C_TINY = ["loop.eval-every=60", "loop.checkpoint-every=60", "algo.actor-hidden=16 16", "algo.critic-hidden=16 16",
            "periodic-eval-episodes=1", "final-eval-episodes=1"]
"""A2C cells of a few updates of 6 envs x 5 steps (a scratch run: 60 env steps per variant)."""


@pytest.mark.parametrize("preset, methods, reward", [
    ("reach-retest-ppo", ["ppo-jthalf-sp25", "ppo-sp0", "ppo-jt0-sp100", "ppo-random-jthalf-sp25"], "paper"),
    ("reach-retest-a2c", ["a2c-scratch", "a2c-distill", "a2c-multitask", "a2c-finetune-e1e2", "a2c-finetune-e2e1"],
     "hold")])
def test_the_on_policy_retests_run_the_shipped_recipe_for_every_method_on_planar8s_variants(preset, methods,
                                                                                              reward, tmp_path):
    _, spec = PRESETS[preset]
    assert (spec.methods, spec.task_set, spec.seed, spec.budget_steps) == (methods, ["planar8-variants"], [1, 2, 3],
                                                                           60_000)
    spec.validate()
    for method in methods:
        config = GridCell(METHODS[method].family, "planar8-variants", 1, spec.budget_steps, tmp_path,
                          spec.override_dict).config(list(METHODS[method].check_args))
        assert (config.robot, config.reward, config.algo.actor, config.algo.gain_init) == ("planar8", reward,
                                                                                           "dls-gain", 8)
        assert (config.periodic_eval_episodes, config.final_eval_episodes, config.loop.eval_every) == (20, 50, 10_000)
        if preset == "reach-retest-a2c":
            assert config.algo.lr == 7e-5


def test_joint_training_lasts_half_the_cells_budget(monkeypatch, tmp_path):
    ran = []
    monkeypatch.setattr(ppo, "run", ran.append)
    for method in ("ppo-jthalf-sp25", "ppo-random-jthalf-sp25"):
        METHODS[method].train("planar8-variants", 1, 60_000, tmp_path, {})
    assert [(c.algo.jt, c.algo.sp, c.algo.selection, c.robot) for c in ran] == [
        (30_000, 25, "variance", "planar8"), (30_000, 25, "random", "planar8")]
    assert METHODS["ppo-jt80k-sp25"].task_sets == METHODS["ppo-jthalf-sp25"].task_sets  # Table I's on robots too


def test_a_grids_rows_are_each_variants_last_policies_of_its_seeds(tmp_path, capsys):
    """policy_<variant>.onnx in a cell (ppo, a2c) or in a run's subfolder (a2c-scratch) is a row of that variant
    robot per method, over the seeds; policy.onnx stays a cell's one policy; best_policy_* is never read."""
    grid = tmp_path / "grid"
    models = REPO / "models"
    layout = {("dagger", "planar8", 1): {"policy.onnx": "planar8_reach"},
              ("ppo-jthalf-sp25", "planar8-variants", 1): {"policy_planar8_long.onnx": "planar8_long_ppo",
                                                           "best_policy_planar8_long.onnx": "planar8_long_ppo",
                                                           "policy_planar8_short.onnx": "planar8_short_a2c"},
              ("ppo-jthalf-sp25", "planar8-variants", 2): {"policy_planar8_long.onnx": "planar8_long_ppo",
                                                           "policy_planar8_short.onnx": "planar8_short_a2c"},
              ("a2c-scratch", "planar8-variants", 2): {"planar8_short/policy_planar8_short.onnx": "planar8_short_a2c"},
              ("a2c-finetune-e1e2", "planar8-variants", 1): {"policy_planar8_short.onnx": "planar8_short_a2c"},
              ("a2c-multitask", "planar8-variants", 1): {"eval.json": None}}
    for (method, task_set, seed), files in layout.items():
        cell = grid / "runs" / method / task_set / str(seed)
        for name, model in files.items():
            (cell / name).parent.mkdir(parents=True, exist_ok=True)
            if model is not None:
                shutil.copy(models / f"{model}.onnx", cell / name)
        (cell / "cell.json").write_text("{}")
    rows = {(r.name, r.robot): r for r in grid_rows(grid)}

    def cell(method: str, seed: int, task_set: str = "planar8-variants") -> Path:
        return grid / "runs" / method / task_set / str(seed)

    assert set(rows) == {("dagger", "planar8"), ("ppo-jthalf-sp25", "planar8_long"),
                         ("ppo-jthalf-sp25", "planar8_short"), ("a2c-scratch", "planar8_short"),
                         ("a2c-finetune-e1e2", "planar8_short")}
    assert rows["ppo-jthalf-sp25", "planar8_long"].models == tuple(
        str(cell("ppo-jthalf-sp25", s) / "policy_planar8_long.onnx") for s in (1, 2))
    assert rows["ppo-jthalf-sp25", "planar8_long"].training_seeds == (1, 2)
    assert rows["a2c-scratch", "planar8_short"].models == (
        str(cell("a2c-scratch", 2) / "planar8_short" / "policy_planar8_short.onnx"),)
    assert rows["dagger", "planar8"].models == (str(cell("dagger", 1, "planar8") / "policy.onnx"),)
    assert all(r.distribution == "local" for r in rows.values())
    assert "a2c-multitask planar8-variants seed 1 exported no policy: left out" in capsys.readouterr().out
    shutil.copy(models / "planar8_long_ppo.onnx", cell("ppo-jthalf-sp25", 2) / "policy_planar8_long.rejected.onnx")
    with pytest.raises(SystemExit, match="policy_planar8_long.rejected.onnx: a later final evaluation"):
        grid_rows(grid)


@pytest.fixture(scope="module")
def tiny_grids(tmp_path_factory) -> list[GridSpec]:
    """The PPO and the A2C re-test methods on planar8's variants, seed 1, a few hundred env steps each."""
    root = tmp_path_factory.mktemp("grids")
    specs = [GridSpec(methods=["ppo-jthalf-sp25", "ppo-random-jthalf-sp25"], task_set=["planar8-variants"], seed=[1],
                      budget_steps=384, overrides=PPO_TINY, name="tiny-ppo", workers=1, results_root=root,
                      bootstrap_reps=50),
             GridSpec(methods=PRESETS["reach-retest-a2c"][1].methods, task_set=["planar8-variants"], seed=[1],
                      budget_steps=180, overrides=A2C_TINY, name="tiny-a2c", workers=1, results_root=root,
                      bootstrap_reps=50)]
    for spec in specs:
        run_grid(spec)
    return specs


def test_tiny_on_policy_grids_on_a_robots_variants_report_held_success(tiny_grids):
    ppo_grid, a2c_grid = (spec.grid_dir for spec in tiny_grids)
    for grid, methods in ((ppo_grid, tiny_grids[0].methods), (a2c_grid, tiny_grids[1].methods)):
        results = json.loads((grid / "results.json").read_text())
        assert {c["method"] for c in results["cells"]} == set(methods)
        for c in results["cells"]:
            assert 0.0 <= c["eval"]["success_rate"] <= 1.0
        assert (grid / "curves_planar8-variants.png").read_bytes()[:4] == b"\x89PNG"
        assert "success_rate planar8_long" in (grid / "table.md").read_text()
    # the scratch cell: each variant's own figures, the headline their mean, at evaluations every run has
    scratch = a2c_grid / "runs" / "a2c-scratch" / "planar8-variants" / "1"
    final = json.loads((scratch / "eval.json").read_text())
    assert final["success_rate"] == pytest.approx(sum(final[f"success_rate_{v}"] for v in PLANAR8) / 3)
    with (scratch / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [180] and {f"eval/mean_score_{v}" for v in PLANAR8} <= set(rows[0])
    assert float(rows[0]["eval/mean_score"]) == pytest.approx(sum(float(rows[0][f"eval/mean_score_{v}"])
                                                                  for v in PLANAR8) / 3)
    # fine-tuning from planar8_long to planar8_short: evaluated on both, the report's other columns "-"
    finetuned = json.loads((a2c_grid / "runs" / "a2c-finetune-e1e2" / "planar8-variants" / "1" / "eval.json")
                           .read_text())
    assert {f"success_rate_{v}" for v in PLANAR8[:2]} <= set(finetuned)
    assert "success_rate_planar8_long_base" not in finetuned
    assert "| a2c-finetune-e1e2 | 1 |" in (a2c_grid / "table.md").read_text()


def test_the_test_seed_table_of_an_on_policy_grid_has_a_row_per_method_and_variant(tiny_grids):
    rows = {(r.name, r.robot) for spec in tiny_grids for r in grid_rows(spec.grid_dir)}
    assert rows == {*((m, v) for m in ("ppo-jthalf-sp25", "ppo-random-jthalf-sp25", "a2c-scratch", "a2c-distill",
                                       "a2c-multitask") for v in PLANAR8),
                    ("a2c-finetune-e1e2", "planar8_short"), ("a2c-finetune-e2e1", "planar8_long")}
    out = tiny_grids[0].grid_dir / "test-seeds"
    reach_table(["--grids", str(tiny_grids[0].grid_dir), "--episodes", "1", "--seed", "1", "--anchors",
                 "--out-dir", str(out)])
    results = json.loads((out / "results.json").read_text())
    assert {(r["controller"], r["robot"]) for r in results} == {(m, v) for m in tiny_grids[0].methods
                                                                for v in PLANAR8}
    assert "| planar8_long_base | local | ppo-jthalf-sp25 (seeds 1) |" in (out / "table.md").read_text()
