"""The option vocabulary of the ``mtpolicy`` commands (``mtpolicy.vocabulary``): the same words everywhere, any other
spelling refused in one line. No training code: the training commands are in tests/training."""

import subprocess

import pytest

from helpers import REPO
from mtpolicy.vocabulary import VOCABULARY
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


def _demo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(find_executable("mtpolicy", "mtpolicy")), "demo", *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO)


def test_the_demo_refuses_a_bad_count_or_tolerance_in_todays_words():
    for args, word in ((["--episodes", "0"], "--episodes"), (["--reach-tolerance", "-1"], "--reach-tolerance")):
        done = _demo(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"mtpolicy demo: {word} must be"), lines


@pytest.mark.parametrize("old", ["--goals", "--tolerance", "--out"])
def test_another_spelling_of_a_word_is_an_unknown_option_in_one_line(old):
    done = _demo(old, "3")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and f"unrecognized arguments: {old} 3" in lines[0], lines
