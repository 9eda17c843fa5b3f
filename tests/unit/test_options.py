"""The option vocabulary of the ``mtpolicy`` commands (``mtpolicy.vocabulary``): the same words everywhere, old
spellings accepted with a warning naming the new one. No training code: the training commands are in tests/training."""

import subprocess

import pytest

from helpers import REPO
from mtpolicy.vocabulary import OLD_NAMES, VOCABULARY, migrate_record, modernize, no_flag, renamed
from mtpolicy_tools.launch_runner import find_executable


def _help(*args: str) -> str:
    done = subprocess.run([str(find_executable("mtpolicy", "mtpolicy")), *args, "--help"], capture_output=True,
                          text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("command, things", [
    ("demo", ("robot", "goal distribution", "episode count", "seeds", "output folder", "tolerance")),
    ("goals", ("robot", "end effectors", "episode count", "seeds")),
    ("render", ("robot", "end effectors", "seeds")),
])
def test_every_runtime_command_takes_the_vocabulary_words(command, things):
    text = _help(command)
    for thing in things:
        assert VOCABULARY[thing][0] in text, (command, thing)
    for old in OLD_NAMES.get(f"mtpolicy {command}", {}):
        assert f"--{old.replace('_', '-')} " not in text  # not offered any more


def test_an_old_spelling_works_with_one_warning_line_naming_the_new_one(capsys):
    table = OLD_NAMES["mtpolicy demo"]
    assert modernize(["--goals", "3", "--out=o", "--seed", "1"], table, prog="mtpolicy demo") == [
        "--episodes", "3", "--out-dir=o", "--seed", "1"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "--goals" in lines[0] and "--episodes" in lines[0] and "--out-dir" in lines[1]
    # today's words pass unchanged and silently
    assert modernize(["--episodes", "3", "--", "--goals"], table) == ["--episodes", "3", "--", "--goals"]
    assert capsys.readouterr().err == ""


def test_booleans_are_flags_and_their_old_true_false_spelling_still_parses(capsys):
    assert no_flag("algo.heuristic") == "algo.no-heuristic" and no_flag("progress") == "no-progress"
    argv = ["--algo.heuristic", "False", "--env.planned=True", "--progress", "--algo.gamma", "0.9"]
    assert modernize(argv, {}, {"algo.heuristic", "env.planned", "progress"}) == [
        "--algo.no-heuristic", "--env.planned", "--progress", "--algo.gamma", "0.9"]
    assert capsys.readouterr().err.count("old spelling") == 2


def test_a_record_under_old_names_is_migrated_and_renamed_matches_prefixes():
    table = {"loop.total_steps": "budget_steps", "method": "algo"}
    assert renamed("loop.total-steps", table) == "budget-steps" and renamed("method.lr", table) == "algo.lr"
    assert renamed("methods", table) == "methods"
    old = {"loop": {"total_steps": 5, "num_envs": 2}, "method": {"lr": 0.1}, "seed": 1}
    assert migrate_record(old, table) == {"loop": {"num_envs": 2}, "budget_steps": 5, "algo": {"lr": 0.1}, "seed": 1}


def test_the_demo_refuses_a_bad_count_or_tolerance_in_todays_words():
    for args, word in ((["--goals", "0"], "--episodes"), (["--tolerance", "-1"], "--reach-tolerance")):
        done = subprocess.run([str(find_executable("mtpolicy", "mtpolicy")), "demo", *args], capture_output=True,
                              text=True, timeout=60, cwd=REPO)
        assert done.returncode == 2 and f"{word} must be" in done.stderr and "old spelling" in done.stderr
