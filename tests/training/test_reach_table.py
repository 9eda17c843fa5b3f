"""The reach table's anchors: a planner-conditioned policy's teacher is its planner then its servo, the bound is a
row of ratio 1, every row has the ratio columns, a table resumes; the bound tables are cached by their key, the goal
sets in it."""

import json

import numpy as np

from mtpolicy.integrity import CHECKSUM_KEY, PLACEHOLDER, seal_model
from mtpolicy.planner import GoalConfigurationPlanner, PlannerConfig
from mtpolicy.time_optimal_program import SolverConfig
from mtpolicy.policy import OnnxPolicy, resolve_model_path
from mtpolicy_training.envs.time_optimal import saturate
from mtpolicy_training.envs import time_optimal
from mtpolicy_training.envs import reach
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.seeds import VALIDATION_SEEDS
from mtpolicy_training.envs.time_optimal import bound_table
from mtpolicy_training.ship.reach_table import Row, main, teacher_controller

MODEL = "planar8_reach_workspace"
SEED = VALIDATION_SEEDS[0]


def test_the_teacher_of_a_planner_conditioned_policy_servos_to_its_contracts_plan_made_once_per_goal_set():
    contract = OnnxPolicy(resolve_model_path(MODEL)).contract
    algo = contract.training_config["algo"]
    label, teacher, env_config = teacher_controller(Row("planar8", "workspace", MODEL, (MODEL,)),
                                                    ReachConfig(goal_distribution="workspace"))
    assert label.startswith("time-optimal planner + servo") and label.endswith(f"(teacher of {MODEL})")
    assert env_config.planned and env_config.planner == PlannerConfig(**contract.planner)
    env = ReachVectorEnv(3, env_config, time_limit=False)
    obs, _ = env.reset(seed=SEED)
    q_star = GoalConfigurationPlanner(env.kin, PlannerConfig(**contract.planner)).plan_batch(
        env.joint_positions(), env.goals)
    limits = env.spec.velocity_limits
    for _ in range(4):  # q* stays the one planned at reset
        action = teacher(obs)
        expected = saturate(algo["teacher_gain"] * (q_star - env.joint_positions()) / limits, algo["saturation"])
        np.testing.assert_allclose(action, expected, atol=1e-4)
        obs, *_ = env.step(action)


def test_the_table_has_ratio_columns_and_the_bound_row_has_ratio_one_and_it_resumes(tmp_path, capsys):
    args = ["--rows", f"planar8:workspace:{MODEL}", "--anchors", "teacher", "bound", "--episodes", "3",
            "--seed", str(SEED), "--out-dir", str(tmp_path / "table"), "--bound-cache", str(tmp_path / "bounds")]
    main(args)
    first = (tmp_path / "table" / "results.json").read_text()
    capsys.readouterr()
    main(args)  # every row read back
    assert capsys.readouterr().out.count("read back from") == 2
    assert (tmp_path / "table" / "results.json").read_text() == first
    assert all(len(r.get("model_sha256", [0])) == 1 for r in json.loads(first))
    results = {r["controller"]: r for r in json.loads((tmp_path / "table" / "results.json").read_text())}
    assert set(results) == {MODEL, "time-optimal planner + servo k 20/s, uniform (teacher of "
                                   "planar8_reach_workspace)",
                            "time-optimal bound"}
    bound = results["time-optimal bound"]["summary"]
    assert bound["time_ratio_median"] == 1.0 and bound["time_ratio_p90"] == 1.0 and "success_rate" not in bound
    assert bound["settle_ratio_median"] == 1.0
    ratios = {f"{name}_{at}" for name in ("time_ratio", "settle_ratio") for at in ("median", "p90")}
    assert all(ratios <= set(r["summary"]) for r in results.values())
    assert all(r["summary"]["settle_ratio_median"] >= r["summary"]["time_ratio_median"] for r in results.values())
    table = (tmp_path / "table" / "table.md").read_text()
    assert "| enter / bound: median | p90 | settle / bound: median | p90 | dithering" in table
    assert "| time-optimal bound | n/a | n/a |" in table
    assert f"{MODEL} against its teacher on the same 3 goal sets" in table
    assert len(list((tmp_path / "bounds").glob("*.json"))) == 1
    main(args[:args.index("teacher")] + args[args.index("teacher") + 1:])  # no teacher asked for: its row is kept
    kept = {r["controller"] for r in json.loads((tmp_path / "table" / "results.json").read_text())}
    assert kept == set(results) and "not evaluated again: time-optimal planner + servo" in \
        (tmp_path / "table" / "table.md").read_text()


def test_a_model_shipped_again_under_its_name_is_evaluated_again(tmp_path, capsys):
    """A row is read back only for the same model files: a results.json row of an earlier file of the same name
    would otherwise stand for the new model."""
    import onnx

    model = tmp_path / "model.onnx"
    model.write_bytes(resolve_model_path(MODEL).read_bytes())
    args = ["--rows", f"planar8:workspace:{model}", "--anchors", "teacher", "--episodes", "2", "--seed",
            str(SEED), "--out-dir", str(tmp_path / "table"), "--bound-cache", str(tmp_path / "bounds")]
    main(args)
    capsys.readouterr()
    main(args)
    assert capsys.readouterr().out.count("read back from") == 2  # the same file: read back
    proto = onnx.load(str(model))
    for entry in proto.metadata_props:  # the same policy, sealed again with another note
        if entry.key == CHECKSUM_KEY:
            entry.value = PLACEHOLDER
    proto.metadata_props.append(onnx.StringStringEntryProto(key="note", value="shipped again"))
    model.write_bytes(seal_model(proto.SerializeToString()))
    capsys.readouterr()
    main(args)
    assert capsys.readouterr().out.count("read back from") == 0


def test_a_bound_table_is_read_back_from_its_cache_and_solved_again_when_its_key_changes(tmp_path, monkeypatch):
    solved = []
    solve = time_optimal._solve_chunk
    monkeypatch.setattr(time_optimal, "_solve_chunk", lambda job: solved.append(len(job[3])) or solve(job))
    first = bound_table(ReachConfig(), 2, SEED, cache_dir=tmp_path)
    assert sum(solved) == 2 and len(list(tmp_path.glob("*.json"))) == 1
    again = bound_table(ReachConfig(), 2, SEED, cache_dir=tmp_path)
    assert sum(solved) == 2  # read from the file
    np.testing.assert_array_equal(again.periods, first.periods)
    np.testing.assert_allclose(again.seconds, first.seconds)
    bound_table(ReachConfig(), 2, SEED, solver=SolverConfig(seed=1), cache_dir=tmp_path)
    assert sum(solved) == 4  # another solver: another key, solved again (the same file, rewritten)
    bound_table(ReachConfig(), 2, SEED, solver=SolverConfig(seed=1), cache_dir=tmp_path)
    assert sum(solved) == 4


def test_the_dynamic_optimum_is_a_row_and_the_notes_say_which_controller_beats_it(tmp_path):
    args = ["--rows", "planar8:local:planar8_reach", "--anchors", "dls", "dynamic-optimum", "--episodes", "2",
            "--seed", str(SEED), "--out-dir", str(tmp_path / "table"), "--optimum-cache", str(tmp_path / "optima"),
            "--optimum.max-evaluations", "5"]
    main(args)
    results = {r["controller"]: r for r in json.loads((tmp_path / "table" / "results.json").read_text())}
    assert set(results) == {"planar8_reach", "dls", "dynamic optimum"}
    optimum = results["dynamic optimum"]
    assert optimum["summary"]["solved_rate"] == 1.0 and optimum["summary"]["time_ratio_median"] >= 1.0
    assert len(results["dls"]["per_set"]["time_to_settle"]) == 2
    assert all(results[name]["summary"]["settle_optimum_median"] >= 1.0 for name in ("planar8_reach", "dls"))
    assert len(list((tmp_path / "optima").glob("*.json"))) == 1
    table = (tmp_path / "table" / "table.md").read_text()
    assert "| settle / optimum: median | p90 | dithering" in table and "| dynamic optimum | n/a | n/a |" in table
    assert "is beaten (a controller settles sooner) on 0/2 goal sets by planar8_reach; 0/2 goal sets by dls; by " \
           "some single-controller row on 0/2." in table


def test_tables_and_rows_of_goal_sets_drawn_otherwise_are_solved_and_evaluated_again(tmp_path, capsys, monkeypatch):
    """The caches are keyed by the goal sets themselves: when the same seed draws other goal sets (here the
    configurations kept 0.3 rad off the limits instead of 0.05), neither a bound table nor a row is read back."""
    args = ["--rows", "planar8:local:planar8_reach", "--anchors", "dls", "bound", "--episodes", "2", "--seed",
            str(SEED), "--out-dir", str(tmp_path / "table"), "--bound-cache", str(tmp_path / "bounds")]
    main(args)
    capsys.readouterr()
    main(args)
    assert capsys.readouterr().out.count("read back from") == 2
    solved = []
    solve = time_optimal._solve_chunk
    monkeypatch.setattr(time_optimal, "_solve_chunk", lambda job: solved.append(len(job[3])) or solve(job))
    draw = reach.sample_free_configurations
    monkeypatch.setattr(reach, "sample_free_configurations", lambda *a, **k: draw(*a, **(k | {"margin": 0.3})))
    main(args)
    assert capsys.readouterr().out.count("read back from") == 0 and sum(solved) == 2
