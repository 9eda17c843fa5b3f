"""Benchmark harness: IQM and stratified bootstrap by hand, grid validation, a 2 x 2 grid in the pool and on Ray."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.harness import (METHODS, PRESETS, GridSpec, aggregate, iqm, iqm_with_ci,
                                                  markdown_table, replace_block, run_grid, stratified_bootstrap_iqms)
from mtpolicy_training.envs.taskset import TaskSetMetrics
from mtpolicy_training.train.family import GridCell
from mtpolicy_training.train.sac_family import SETTINGS as SAC_FAMILY_SETTINGS


def sac_family_train_config(setting_args, task_set, seed, budget_steps, out_dir, overrides):
    return GridCell(METHODS["mtsac"].family, task_set, seed, budget_steps, out_dir, overrides).config(setting_args)

SMOKE = PRESETS["planar8-smoke"][1]


def test_iqm_is_the_25_percent_trimmed_mean_of_all_runs_and_tasks():
    assert iqm(np.arange(1, 9).reshape(4, 2)) == pytest.approx(4.5)  # drop 1, 2 and 7, 8: mean(3, 4, 5, 6)
    assert iqm(np.array([[10.0], [1.0], [2.0], [3.0]])) == pytest.approx(2.5)  # sorted 1 2 3 10: mean(2, 3)
    assert iqm(np.array([[1.0, 2.0, 9.0]])) == pytest.approx(4.0)  # 3 entries: floor(3/4) = 0 cut, the mean
    assert iqm(np.array([[0.0], [0.0], [0.0], [10.0]])) == 0.0


def test_bootstrap_resamples_runs_within_each_task():
    rng = np.random.default_rng(0)
    # one run per task: every resample is the data itself
    assert iqm_with_ci(np.array([[0.2, 0.7, 0.6]]), 1000, rng) == pytest.approx((0.5, 0.5, 0.5))
    # task A runs (0, 0), task B runs (1, 1): stratified resamples always hold two 0s and two 1s -> IQM 0.5;
    # resampling the four entries as one pool would give 0 or 1 in 1/8 of the resamples
    assert iqm_with_ci(np.array([[0.0, 1.0], [0.0, 1.0]]), 4000, rng) == pytest.approx((0.5, 0.5, 0.5))
    # runs (0, 1): resamples (0,0) (0,1) (1,0) (1,1) -> IQM 0, 0.5, 0.5, 1 with probability 1/4, 1/2, 1/4
    boot = stratified_bootstrap_iqms(np.array([[0.0], [1.0]]), 20000, rng)
    assert [np.mean(boot == v) for v in (0.0, 0.5, 1.0)] == pytest.approx([0.25, 0.5, 0.25], abs=0.015)
    assert iqm_with_ci(np.array([[0.0], [1.0]]), 20000, rng) == pytest.approx((0.5, 0.0, 1.0))


def test_bootstrap_trims_each_resample():
    """Runs (0, 0, 0, 10): a resample's IQM is 0 with < 2 tens, 5 with 2, 10 with 3 or 4 (k ~ Binomial(4, 1/4))."""
    boot = stratified_bootstrap_iqms(np.array([[0.0], [0.0], [0.0], [10.0]]), 40000, np.random.default_rng(1))
    p_ten = [0.75 ** 4, 4 * 0.25 * 0.75 ** 3, 6 * 0.25 ** 2 * 0.75 ** 2]  # P(k = 0, 1, 2)
    want = [p_ten[0] + p_ten[1], p_ten[2], 1 - sum(p_ten)]  # 0.738, 0.211, 0.051
    assert [np.mean(boot == v) for v in (0.0, 5.0, 10.0)] == pytest.approx(want, abs=0.01)
    # P(10) = 0.051 > 0.025, so the 97.5th percentile is 10 and the 2.5th is 0
    assert iqm_with_ci(np.array([[0.0], [0.0], [0.0], [10.0]]), 40000, np.random.default_rng(1)) == (0.0, 0.0, 10.0)


def test_aggregate_rows_and_table():
    metrics = TaskSetMetrics(per_task_metric="score", headline_metrics=("success_rate",))
    finals = {"a": [{"success_rate": 0.5, "score_x": 1.0, "score_y": 3.0}] * 2,
              "b": [{"success_rate": 0.0, "score_x": 2.0, "score_y": 2.0},
                    {"success_rate": 1.0, "score_x": 4.0, "score_y": 4.0}]}
    rows = {(r["method"], r["metric"], r["task"]): r for r in aggregate(finals, metrics, reps=2000)}
    assert len(rows) == 2 * 4  # success_rate, score over all tasks, score_x, score_y
    assert (rows["a", "score", "all"]["iqm"], rows["a", "score", "all"]["ci_low"]) == (2.0, 2.0)
    assert (rows["a", "score", "y"]["iqm"], rows["a", "score", "y"]["ci_high"]) == (3.0, 3.0)
    b_all = rows["b", "score", "all"]  # seeds x tasks = [[2, 2], [4, 4]]: IQM 3; resampled per task: 2 ... 4
    assert (b_all["iqm"], b_all["ci_low"], b_all["ci_high"], b_all["runs"]) == (3.0, 2.0, 4.0, 2)
    table = markdown_table(list(rows.values())).splitlines()
    assert table[0] == "| method | runs | success_rate | score (all tasks) | score x | score y |"
    assert table[2] == ("| a | 2 | 0.500 [0.500, 0.500] | 2.000 [2.000, 2.000] | 1.000 [1.000, 1.000] | "
                        "3.000 [3.000, 3.000] |")


def test_readme_block_is_replaced_and_a_missing_block_is_named():
    text = "intro\n<!-- harness:g -->\nold\n<!-- /harness:g -->\nrest\n"
    assert replace_block(text, "g", "| new |\n") == "intro\n<!-- harness:g -->\n| new |\n<!-- /harness:g -->\nrest\n"
    with pytest.raises(ValueError, match="harness:other"):
        replace_block(text, "other", "x")


@pytest.mark.parametrize("change,field", [
    ({"methods": ["nope"]}, "methods"), ({"task_set": ["mt10"]}, "task_set"), ({"seed": [1, 1]}, "seed"),
    ({"budget_steps": 0}, "budget_steps"), ({"name": "a/b"}, "name"), ({"overrides": ["gamma"]}, "overrides"),
    ({"overrides": ["loop.total_steps=5"]}, "overrides"), ({"overrides": ["algo.tau=0"]}, "tau"),
    ({"overrides": ["loop.no_such_option=1"]}, "overrides"), ({"threads_per_cell": 0}, "threads_per_cell"),
    ({"overrides": ["loop.torch_threads=2"]}, "--threads-per-cell")])
def test_bad_grid_values_fail_at_start_naming_the_field(tmp_path, change, field):
    spec = dataclasses.replace(SMOKE, results_root=tmp_path, **change)
    with pytest.raises(ValueError, match=field):
        run_grid(spec)
    assert not (tmp_path / spec.name).exists()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_is_a_valid_grid(preset, tmp_path):
    spec = dataclasses.replace(PRESETS[preset][1], results_root=tmp_path)
    for other in spec.compare_with:  # a compared grid must exist and have run the same budget
        (tmp_path / other).mkdir()
        (tmp_path / other / "grid.json").write_text(json.dumps({"budget_steps": PRESETS[other][1].budget_steps}))
        assert PRESETS[other][1].seed == spec.seed and PRESETS[other][1].task_set == spec.task_set
    spec.validate()


def test_reproduce_command_starts_from_a_preset_that_holds_the_methods():
    spec = GridSpec(methods=["ppo-sp0", "ppo-jt400k-sp25"], task_set=["hoppers3"], name="ppo-few")
    assert spec.command().startswith("python -m benchmarks.harness ppo-spec-table1 --name ppo-few ")


def test_the_sac_retest_gives_every_method_the_shipped_holding_recipe_and_overrides_win(tmp_path):
    """reach-retest-sac: every SAC-family cell on planar8 takes the shipped planar8_dgrad / planar8_picor recipe
    (the holding actor and reward, SAC's std started narrow, small actor steps after a critic warm-up) on the
    trainer's defaults otherwise, as MT10 cells do; an override given after it wins."""
    spec = PRESETS["reach-retest-sac"][1]
    overrides = dict(item.split("=", 1) for item in spec.overrides)
    for method in spec.methods:
        c = sac_family_train_config(SAC_FAMILY_SETTINGS[method], "planar8", 1, spec.budget_steps, tmp_path, overrides)
        assert (c.algo.actor, c.algo.gain_init, c.reward) == ("dls-gain", 8.0, "hold")
        assert (c.algo.sac.log_std_init, c.algo.sac.critic_warmup, c.algo.sac.actor_lr) == (-2.5, 5000, 3e-6)
        assert (c.algo.sac.init_alpha, c.algo.sac.gamma, c.loop.hindsight_copies) == (1.0, 0.99, 0)
    mt10 = sac_family_train_config(SAC_FAMILY_SETTINGS["mtsac"], "mt10", 1, 10, tmp_path, {})
    assert (mt10.algo.sac.init_alpha, mt10.algo.sac.gamma, mt10.loop.hindsight_copies) == (1.0, 0.99, 0)
    overridden = sac_family_train_config(SAC_FAMILY_SETTINGS["picor"], "planar8", 1, 10, tmp_path,
                                         overrides | {"algo.sac.actor_lr": "1e-5"})
    assert overridden.algo.sac.actor_lr == 1e-5


def check_outputs(grid_dir, cells=4):
    results = json.loads((grid_dir / "results.json").read_text())
    assert len(results["cells"]) == cells
    assert {r["method"] for r in results["aggregates"]} == {"ddpg", "digrad-single-heur"}
    # per method: success_rate, mean_score, score over all tasks, score of each of the 3 end effectors
    assert len((grid_dir / "results.csv").read_text().splitlines()) == 1 + 2 * 6
    for r in results["aggregates"]:
        assert r["ci_low"] <= r["iqm"] <= r["ci_high"] and r["runs"] == 2
    png = (grid_dir / "curves_planar8.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    for seed in (1, 2):
        rows = (grid_dir / "runs" / "ddpg" / "planar8" / str(seed) / "metrics.csv").read_text().splitlines()
        assert [int(float(r.split(",")[0])) for r in rows[1:]] == [240, 480]
    table = (grid_dir / "table.md").read_text()
    assert "| digrad-single-heur | 2 | " in table
    assert "Reproduce: `python -m benchmarks.harness" in table
    return table


def test_grid_runs_in_the_local_pool_resumes_and_updates_the_readme(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- harness:planar8-smoke -->\n<!-- /harness:planar8-smoke -->\n")
    spec = dataclasses.replace(SMOKE, results_root=tmp_path / "results", readme=readme)
    table = run_grid(spec)
    grid_dir = tmp_path / "results" / "planar8-smoke"
    assert check_outputs(grid_dir) == table and table.strip() in readme.read_text()
    assert "0 of 4 cells finished; running 4 on a local pool of 2" in capsys.readouterr().out

    cell = grid_dir / "runs" / "digrad-single-heur" / "planar8" / "2"
    before = (cell / "metrics.csv").stat().st_mtime_ns
    (cell / "cell.json").unlink()  # an unfinished cell: it resumes from its checkpoint, the others are skipped
    (cell / "eval.json").unlink()
    # on another thread count (a speed setting, not part of the resume check)
    assert run_grid(dataclasses.replace(spec, workers=1, threads_per_cell=2)) == table  # same evaluation, same weights
    assert "3 of 4 cells finished; running 1 on a local pool" in capsys.readouterr().out
    assert "resuming" in (cell / "train.log").read_text() and (cell / "cell.json").exists()
    assert json.loads((cell / "cell.json").read_text())["resumed_from_checkpoint"]  # its wall time is partial
    assert not json.loads((cell.parent / "1" / "cell.json").read_text())["resumed_from_checkpoint"]
    assert (cell / "metrics.csv").stat().st_mtime_ns == before  # nothing retrained

    # a run of some of the cells reports the whole grid, and the command that reproduces all of it
    assert run_grid(dataclasses.replace(spec, methods=["digrad-single-heur"], seed=[2])) == table

    with pytest.raises(ValueError, match="budget_steps: 960 differs from 480"):
        run_grid(dataclasses.replace(spec, budget_steps=960))

    # another grid takes these cells into its table and curves without running them
    other = dataclasses.replace(spec, methods=["digrad-single"], name="other", readme=None,
                                compare_with=["planar8-smoke"])
    with pytest.raises(ValueError, match="compare_with: 'planar8-smoke' ran 480 env steps per run, this grid 960"):
        run_grid(dataclasses.replace(other, budget_steps=960))
    with pytest.raises(ValueError, match="compare_with: no other grid 'nope'"):
        run_grid(dataclasses.replace(other, compare_with=["nope"]))
    (cell / "cell.json").unlink()
    partial = run_grid(other)  # an unfinished compared cell: left out of the table, which names it
    assert "0 of 2 cells finished; running 2" in capsys.readouterr().out
    assert "**5 of 6 cells finished**, not yet: digrad-single-heur seed 2)" in partial
    assert "| digrad-single-heur | 1 | " in partial
    (cell / "cell.json").write_text("{}")
    compared = run_grid(other)
    assert "2 of 2 cells finished; running 0" in capsys.readouterr().out and "not yet" not in compared
    results = json.loads((tmp_path / "results" / "other" / "results.json").read_text())
    assert [r["method"] for r in results["aggregates"][::6]] == ["digrad-single", "ddpg", "digrad-single-heur"]
    assert table.splitlines()[4] in compared  # the compared method's row, as its own grid gave it
    assert "ddpg, digrad-single-heur: the cells of planar8-smoke" in compared
    assert "--compare-with planar8-smoke" in compared


@pytest.fixture
def local_ray(monkeypatch):
    """A Ray instance on loopback for this test: with cluster mode off, Ray takes 127.0.0.1 as the node address."""
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # read when ray is first imported
    import ray

    context = ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * 2**20)
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()  # stops the processes this ray.init started


def test_grid_runs_on_an_existing_ray_cluster(tmp_path, local_ray):
    assert local_ray.startswith("127.0.0.1:")
    r = subprocess.run([sys.executable, "-m", "benchmarks.harness", "planar8-smoke",
                        "--results-root", str(tmp_path), "--ray", local_ray],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert f"running 4 on Ray at {local_ray}" in r.stdout and r.stdout.count("] done ") == 4
    assert check_outputs(tmp_path / "planar8-smoke").strip() in r.stdout
