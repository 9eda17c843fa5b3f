"""The option vocabulary of every command, old spellings, and the runtime commands' parser.

One word per thing, in every command that takes it: ``python -m
mtpolicy_training.train <family>``, ``python -m mtpolicy_training.ship.evaluate``
(and ``ship.model_card``), ``mtpolicy demo|goals|launch|render``
(``VOCABULARY``; docs/options.md says the same in prose). An option's old
spelling (``OLD_NAMES``) keeps working for one release: ``modernize`` rewrites
it on the command line with a one-line warning naming the new one, and
``migrate_record`` moves a recorded config's (config.json, a checkpoint's)
entries under old names to their new ones, so runs made before still resume.

No dependency beyond the standard library: the tools and the training package both read it, so it lives in
the layer below them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Collection

VOCABULARY: dict[str, tuple[str, str]] = {
    "robot": ("--robot", "shipped robot name, robot folder (with a robot.yaml) or MJCF/URDF path"),
    "end effectors": ("--end-effectors", "end-effector sites, in task (goal) order (default: the robot.yaml's, "
                      "else every site)"),
    "goal distribution": ("--goal-distribution", "'local' (each goal configuration near the start) or 'workspace' "
                          "(anywhere in the joint limits)"),
    "episode count": ("--episodes", "episodes to run, evaluate or publish (reach: goal sets, one an episode); a "
                      "trainer's two evaluations: --periodic-eval-episodes, --final-eval-episodes"),
    "seeds": ("--seed", "seed; a command that runs several takes one or more (--seed 1 2 3)"),
    "output folder": ("--out-dir", "folder the command writes into (a command writing one file: --out FILE)"),
    "tolerance": ("--reach-tolerance", "an end effector within this distance (m) of its goal has reached it "
                  "(default: the robot.yaml's; a policy's: the one it was trained with)"),
    "boolean": ("--NAME / --no-NAME", "every on/off option, never --NAME True|False"),
}
"""Thing -> (its option in every command, what it means). Launch files take the same words as ROS launch
arguments (``robot:=``, ``model:=``)."""

OLD_NAMES: dict[str, dict[str, str]] = {
    "train dagger": {"eval_goal_sets": "periodic_eval_episodes", "final_goal_sets": "final_eval_episodes",
                     "torch_threads": "loop.torch_threads"},
    "train digrad": {"loop.total_steps": "budget_steps", "loop.eval_goal_sets": "periodic_eval_episodes",
                     "final_goal_sets": "final_eval_episodes"},
    "train sac-family": {"loop.total_steps": "budget_steps", "loop.eval_goal_sets": "periodic_eval_episodes",
                         "final_episodes": "final_eval_episodes"},
    "train ppo": {"loop.total_steps": "budget_steps", "method": "algo", "eval_episodes": "periodic_eval_episodes"},
    "train a2c": {"loop.total_steps": "budget_steps", "eval_episodes": "final_eval_episodes"},
    "ship.evaluate": {"goal_sets": "episodes", "seeds": "seed"},
    "ship.model_card": {"goal_sets": "episodes"},
    "ship.reach_table": {"goal_sets": "episodes", "seeds": "seed", "out": "out_dir"},
    "envs.time_optimal": {"goal_sets": "episodes"},
    "mtpolicy demo": {"goals": "episodes", "out": "out_dir", "tolerance": "reach_tolerance"},
}
"""Command -> {old dotted option name: new} (``-`` or ``_`` between words alike). A training family's table also
renames the entries of its recorded configs. Old names are accepted for one release after they change."""


def _words(name: str) -> str:
    return name.replace("_", "-")


def renamed(name: str, table: dict[str, str]) -> str:
    """``name`` (dotted, ``-`` or ``_`` between words) in today's words: an old name, or an option under an old
    prefix; other names come back unchanged."""
    key = _words(name)
    for old, new in table.items():
        old = _words(old)
        if key == old or key.startswith(old + "."):
            return _words(new) + key[len(old):]
    return name


def no_flag(name: str) -> str:
    """The off spelling of boolean option ``name`` (dotted): ``algo.heuristic`` -> ``algo.no-heuristic``."""
    *prefix, last = _words(name).split(".")
    return ".".join([*prefix, f"no-{last}"])


BOOLEAN_WORDS = {"true": True, "false": False}


def modernize(argv: list[str], table: dict[str, str], booleans: Collection[str] = (), prog: str = "") -> list[str]:
    """``argv`` in today's spelling: options named in ``table`` (old -> new) renamed and a boolean option
    (``booleans``, dotted names) given as ``--NAME True|False`` written ``--NAME`` / ``--no-NAME``; one warning line
    on stderr for each old spelling, naming the new one."""
    flags = {_words(b) for b in booleans}
    out, rest = [], list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--" or not arg.startswith("--"):
            out.append(arg)
            if arg == "--":
                return out + rest
            continue
        name, eq, value = arg[2:].partition("=")
        new = _words(renamed(name, table))
        has_value = bool(eq) or (rest and rest[0].lower() in BOOLEAN_WORDS)
        if new in flags and has_value and (value if eq else rest[0]).lower() in BOOLEAN_WORDS:
            on = BOOLEAN_WORDS[(value if eq else rest.pop(0)).lower()]
            spelled = f"--{new if on else no_flag(new)}"
            warn_old(f"{arg if eq else f'--{name} {on}'}", spelled, prog)
            out.append(spelled)
            continue
        if new != _words(name):
            warn_old(f"--{name}", f"--{new}", prog)
        out.append(f"--{new}{eq}{value}")
    return out


def warn_old(old: str, new: str, prog: str = "") -> None:
    """The one-line warning of an old spelling."""
    print(f"{prog + ': ' if prog else ''}warning: {old} is an old spelling of {new} (accepted for one more release)",
          file=sys.stderr)


def migrate_record(record: dict, table: dict[str, str]) -> dict:
    """A recorded config (nested dicts, dotted names) with the entries ``table`` renamed (old -> new) moved to their
    new names; everything else as it was."""
    out = json.loads(json.dumps(record))
    for old, new in table.items():
        *old_path, old_key = old.replace("-", "_").split(".")
        parent = out
        for key in old_path:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or old_key not in parent:
            continue
        value = parent.pop(old_key)
        *new_path, new_key = new.replace("-", "_").split(".")
        target = out
        for key in new_path:
            target = target.setdefault(key, {})
        target[new_key] = value
    return out


class Parser(argparse.ArgumentParser):
    """argparse without prefix matching, whose usage errors are one line; ``parse_args`` accepts the old spellings
    of its command (``OLD_NAMES[command]``) with a warning."""

    def __init__(self, *args, command: str = "", **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})
        self.command = command

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def add_word(self, thing: str, help: str | None = None, **kwargs) -> None:  # noqa: A002, ANN003
        """The option of ``thing`` in ``VOCABULARY``, its help the vocabulary's unless given."""
        option, meaning = VOCABULARY[thing]
        self.add_argument(option, help=meaning if help is None else help, **kwargs)

    def parse_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201 - argparse's signature
        argv = list(sys.argv[1:] if args is None else args)
        if argv and self._subparsers is not None:
            command = argv[0]
            table = OLD_NAMES.get(f"{self.prog} {command}", {})
            argv = [command, *modernize(argv[1:], table, prog=f"{self.prog} {command}")]
        elif self.command:
            argv = modernize(argv, OLD_NAMES.get(self.command, {}), prog=self.prog)
        return super().parse_args(argv, namespace)
