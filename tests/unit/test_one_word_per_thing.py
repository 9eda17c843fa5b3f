"""One word for one thing in every command (issue 64): the options of every command line (the ``mtpolicy``
commands, the trainers, the ship and env tools, the benchmarks), the launch files' arguments, the nodes' declared
parameters and the commands in the docs hold no synonym of a word of ``mtpolicy.vocabulary.VOCABULARY``.

Options are read from each command's ``--help`` (its parser, in this process: the training commands' imports are
the few seconds of this file, skipped without the training extra); launch arguments from launch/; parameters from
the nodes' ``PARAMS``, their one declaration.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import xml.etree.ElementTree as ET

import pytest

from helpers import REPO
from mtpolicy.vocabulary import VOCABULARY

SYNONYMS: dict[str, tuple[str, ...]] = {
    "robot": ("env.robot", "robot-name", "robots", "arm"),
    "model": ("policy", "policies", "onnx", "model-path", "models"),
    "end effectors": ("env.end-effectors", "ees", "sites", "end-effector"),
    "goal distribution": ("env.goal-distribution", "distribution", "goal-dist", "goals-distribution"),
    "episode count": ("goal-sets", "goals", "count", "goal-count", "num-goals", "n-goals", "num-episodes",
                      "n-episodes", "eval-episodes", "eval-goal-sets", "final-goal-sets", "final-episodes"),
    "seeds": ("seeds", "random-seed", "seed-list"),
    "task set": ("task-sets", "taskset", "tasksets"),
    "output folder": ("models-dir", "output", "output-dir", "outdir", "out-folder", "results-dir", "save-dir"),
    "tolerance": ("env.reach-tolerance", "tolerance", "reach-tol", "goal-tolerance"),
    "anchors": ("baselines", "baseline", "references"),
}
"""Thing of ``VOCABULARY`` -> the other words for it no command may take (options spelled ``a-b``; a launch
argument or parameter ``a_b`` is the same word). ``--out`` is the output folder's synonym where it writes a
folder (``--out FILE`` writes one file)."""

OPTION = re.compile(r"(?<![\w-])--([a-z][a-z0-9_.-]*[a-z0-9])")
SUBCOMMANDS = re.compile(r"(?<!\w )\{([a-z0-9,-]+)\}(?![\]\w])")
"""A usage line's subcommands (not an option's choices: ``[--x {a,b}]``)."""
TRAINING_EXTRA = ("torch", "gymnasium", "metaworld")


def help_texts(main, command: str, args: tuple[str, ...] = ()) -> dict[str, str]:  # noqa: ANN001 - a main(argv)
    """``command`` -> its ``--help`` (``main([*args, "--help"])`` in this process), and each of its subcommands'."""
    out = io.StringIO()
    with pytest.raises(SystemExit) as done, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        main([*args, "--help"])
    assert not done.value.code, (command, out.getvalue())
    text = out.getvalue()
    usage = SUBCOMMANDS.search(text.split("\n\n")[0])
    texts = {command: text}
    for sub in usage.group(1).split(",") if usage and not args else ():
        texts |= help_texts(main, f"{command} {sub}", (*args, sub))
    return texts


def command_modules() -> list[str]:
    """The modules of the training package and the benchmarks that are commands (``python -m`` them)."""
    files = [*(REPO / "training").glob("mtpolicy_training/**/*.py"), *REPO.glob("benchmarks/**/*.py")]
    modules = []
    for path in sorted(files):
        if '__name__ == "__main__"' in path.read_text():
            parts = path.relative_to(REPO / "training" if path.is_relative_to(REPO / "training") else REPO)
            modules.append(".".join(parts.with_suffix("").parts))
    return modules


def runtime_texts() -> dict[str, str]:
    from mtpolicy_tools import cli, render

    return help_texts(cli.main, "mtpolicy") | help_texts(render.main, "python -m mtpolicy_tools.render")


def training_texts() -> dict[str, str]:
    texts: dict[str, str] = {}
    for module in command_modules():
        texts |= help_texts(importlib.import_module(module).main, f"python -m {module.removesuffix('.__main__')}")
    return texts


def named_words() -> dict[str, list[str]]:
    """Launch files' arguments and the nodes' declared parameters, by file or node."""
    from mtpolicy.nodes import controller_params, goals, sim

    words = {f"launch/{path.name}": [arg.get("name", "") for arg in ET.parse(path).iter("arg")]
             for path in sorted((REPO / "launch").glob("*.xml"))}
    words |= {f"launch/{path.name}": re.findall(r"DeclareLaunchArgument\(\s*['\"](\w+)", path.read_text())
              for path in sorted((REPO / "launch").glob("*.py"))}
    return words | {f"node {module.__name__}": [p.name for p in module.PARAMS]
                    for module in (controller_params, goals, sim)}


def doc_texts() -> dict[str, str]:
    """The docs that show commands (docs/options.md shows the refusal of another spelling: not a command)."""
    paths = [REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("models/*.md"),
             *REPO.glob("benchmarks/results/**/*.md")]
    return {str(p.relative_to(REPO)): p.read_text() for p in sorted(paths) if p.name != "options.md"}


FORBIDDEN = {word: thing for thing, words in SYNONYMS.items() for word in words}


def synonyms_in(words: list[str] | set[str], prefix: str = "--") -> list[str]:
    """Each word of ``words`` that is another word for a thing of the vocabulary, naming the thing's own word
    (``prefix``: ``--`` for options, empty for launch arguments and parameters, spelled ``a_b``)."""
    def spelled(word: str) -> str:
        return prefix + (word if prefix else word.replace("-", "_"))

    return sorted(f"{spelled(w)} (say {spelled(VOCABULARY[FORBIDDEN[w]][0].removeprefix('--'))})"
                  for w in {w.replace("_", "-") for w in words} if w in FORBIDDEN)


def folders_written_by_out(text: str) -> list[str]:
    """The help of every ``--out`` option of a help text that writes a folder (or says nothing of what it writes)."""
    found = []
    for match in re.finditer(r"^[\s│|]*--out\b(?![-.])[^\n]*(?:\n(?![\s│|]*-)[^\n]*){0,2}", text, re.M):
        definition = re.sub(r"[\s│|]+", " ", match.group(0)).strip()
        said = definition.split(maxsplit=2)[2:] or [""]  # after the option and its metavar
        if not said[0] or re.search(r"\b(folder|directory|dir)\b", said[0], re.I):
            found.append(definition)
    return found


def problems(texts: dict[str, str]) -> list[str]:
    out = []
    for where, text in texts.items():
        out += [f"{where}: {word}" for word in synonyms_in(set(OPTION.findall(text)))]
        out += [f"{where}: --out writes a folder (say --out-dir): {d}" for d in folders_written_by_out(text)]
    return out


def test_every_word_of_the_vocabulary_has_its_synonyms_listed():
    assert set(SYNONYMS) == set(VOCABULARY) - {"boolean"}
    assert not {VOCABULARY[thing][0].removeprefix("--") for thing in SYNONYMS} & set(FORBIDDEN)


def test_no_runtime_command_launch_argument_or_node_parameter_has_two_words_for_one_thing():
    texts = runtime_texts()
    assert {"mtpolicy demo", "mtpolicy goals", "mtpolicy render", "mtpolicy import-robot"} <= set(texts)
    named = named_words()
    assert len(named) >= 6 and all(named.values())
    found = problems(texts) + [f"{where}: {w}" for where, words in named.items() for w in synonyms_in(words, "")]
    assert not found, "another word for a thing of mtpolicy.vocabulary.VOCABULARY:\n" + "\n".join(found)


def test_no_training_command_benchmark_or_doc_has_two_words_for_one_thing():
    for module in TRAINING_EXTRA:
        pytest.importorskip(module)
    texts = training_texts()
    assert {"python -m mtpolicy_training.train dagger", "python -m mtpolicy_training.ship.reach_table",
            "python -m benchmarks.harness planar8-smoke"} <= set(texts), sorted(texts)
    taken = {o for text in [*texts.values(), *runtime_texts().values()] for o in OPTION.findall(text)}
    assert {VOCABULARY[thing][0].removeprefix("--") for thing in SYNONYMS} <= taken  # every word is some command's
    found = problems(texts) + [f"{where}: {word}" for where, text in doc_texts().items()
                               for word in synonyms_in(set(OPTION.findall(text)))]
    assert not found, "another word for a thing of mtpolicy.vocabulary.VOCABULARY:\n" + "\n".join(found)
