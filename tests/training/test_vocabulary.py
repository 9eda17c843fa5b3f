"""One vocabulary over the training commands (any other spelling refused in one line), and the one run-record schema."""

import json

import pytest
import torch

from mtpolicy.vocabulary import VOCABULARY
from mtpolicy_training.core.run_record import read_run_config, save_checkpoint
from mtpolicy_training.core.trainer import read_best
from mtpolicy_training.ship import evaluate, model_card
from mtpolicy_training.train.cli import FAMILIES, main

REACH_WORDS = ("robot", "end effectors", "goal distribution", "tolerance", "seeds", "output folder")
RUN_WORDS = ("--budget-steps", "--seed", "--out-dir", "--periodic-eval-episodes", "--final-eval-episodes",
             "--progress, --no-progress")


def _help(run, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        run()
    assert e.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_trainer_takes_the_same_words(family, capsys):
    text = _help(lambda: main([family, "--help"]), capsys)
    for word in RUN_WORDS:
        assert word in text, (family, word)
    if family == "sac-family":
        assert "--robot " in text
    if family in ("ppo", "a2c"):  # a robot's morphology variants
        assert "--robot " in text and "--goal-distribution " in text, family
    if family in ("dagger", "digrad"):
        for thing in REACH_WORDS:
            assert VOCABULARY[thing][0] + " " in text, (family, thing)
        assert "--env.robot" not in text and "--env.reach-tolerance" not in text


def test_ship_commands_take_the_same_words(capsys):
    text = _help(lambda: evaluate.main(["--help"]), capsys)
    for thing in ("episode count", "seeds", "goal distribution"):
        assert VOCABULARY[thing][0] + " " in text
    assert VOCABULARY["episode count"][0] + " " in _help(lambda: model_card.main(["--help"]), capsys)


@pytest.mark.parametrize("args, message", [
    (["--env.robot", "humanoid"], "Unrecognized options: --env.robot"),
    (["--eval-goal-sets", "7"], "Unrecognized options: --eval-goal-sets"),
    (["--env.planned", "True"], "--env.planned True: use --env.planned / --env.no-planned"),
    (["--progress=false"], "--progress=false: use --progress / --no-progress"),
])
def test_another_spelling_or_a_boolean_with_a_value_is_refused_in_one_line(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["dagger", *args, "--out-dir", str(tmp_path / "run")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_sac_family_takes_a_robot_as_its_task_set():
    from mtpolicy_training.core.options import parse_config
    from mtpolicy_training.train.cli import FAMILY_CONFIGS

    config = parse_config(FAMILY_CONFIGS, ["sac-family", "--robot", "planar8"])
    assert config.task_set == "planar8" and config.robot is None  # recorded once, as the task set
    with pytest.raises(ValueError, match="give one"):
        FAMILIES["sac-family"].config(robot="planar8", task_set="halfcheetah8")


def test_harness_settings_and_overrides_parse_as_flags():
    from pathlib import Path

    from benchmarks.harness.registry import METHODS
    from mtpolicy_training.train.family import GridCell

    method = METHODS["digrad-single"]
    cell = GridCell(method.family, "humanoid", 1, 640, Path("unused"),
                    {"env.reach_tolerance": "0.04", "algo.twin_critics": "True", "env.centre_reward": "False"})
    config = cell.config(list(method.check_args))
    assert config.algo.heuristic is False and config.algo.twin_critics is True and config.env.centre_reward is False
    assert (config.env.robot, config.env.reach_tolerance, config.budget_steps) == ("humanoid", 0.04, 640)


TINY = ["--budget-steps", "320", "--loop.learning-starts", "160", "--loop.eval-every", "160",
        "--loop.checkpoint-every", "160", "--periodic-eval-episodes", "2", "--final-eval-episodes", "2",
        "--loop.batch-size", "32", "--loop.num-envs", "16", "--no-progress"]


def test_a_checkpoint_and_records_made_before_resume_and_ship(tmp_path, capsys):
    """A DiGrad run whose checkpoint and config.json hold no ``command`` and whose best-run records have DiGrad's
    old key (``found_after_session_seconds``) resumes, and the model card reads it."""
    run = tmp_path / "run"
    main(["digrad", "--out-dir", str(run), *TINY])
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    old = json.loads(json.dumps(state["run_config"]))
    del old["command"]
    save_checkpoint(run / "checkpoint.pt", {**state, "run_config": old})
    (run / "config.json").write_text(json.dumps(old))
    for name in ("best.json", "best_eval.json"):
        record = json.loads((run / name).read_text())
        record["found_after_session_seconds"] = record.pop("found_after_train_seconds")
        (run / name).write_text(json.dumps(record))
    capsys.readouterr()
    main(["digrad", "--out-dir", str(run), *TINY])  # the same run, finished: resumed, then evaluated again
    assert f"resuming {run} from step 320" in capsys.readouterr().out
    (run / "config.json").write_text(json.dumps(old))  # the resumed session wrote today's; read the old one
    assert read_run_config(run)["budget_steps"] == 320 and read_run_config(run)["final_eval_episodes"] == 2
    assert read_best(run / "best_eval.json")["found_after_train_seconds"] > 0
    model_card.main(["--name", "old_digrad", "--best", "--command", "train it", "--episodes", "2",
                     "--out-dir", str(tmp_path / "models"), str(run)])
    card = (tmp_path / "models" / "old_digrad.md").read_text()
    assert "320 env steps" in card and "min of training, " in card and "env steps." in card


def test_the_model_card_reads_a_dagger_and_a_digrad_best_run_record(tmp_path):
    dagger = {"success_rate": 0.9, "iteration": 4, "found_after_train_seconds": 120.0}  # made before `step`
    digrad = {"success_rate": 0.8, "updates": 300, "found_after_session_seconds": 60.0}  # DiGrad's old keys
    today = {"success_rate": 0.8, "updates": 300, "step": 25_000, "found_after_train_seconds": 60.0}
    texts = []
    for name, record in (("dagger", dagger), ("digrad", digrad), ("today", today)):
        (tmp_path / f"{name}.json").write_text(json.dumps(record))
        texts.append(model_card.found_text(read_best(tmp_path / f"{name}.json")))
    assert texts[0].endswith("found after 2.0 min of training, iteration 4.")
    assert texts[1].endswith("found after 1.0 min of training.")
    assert texts[2].endswith("found after 1.0 min of training, 25,000 env steps.")
    assert model_card.budget_text({"budget_steps": 10240, "iterations": 1}) == "10,240 env steps (1 iteration)"
