"""The option vocabulary of every command, and the runtime commands' parser.

One word per thing, in every command that takes it: ``python -m
mtpolicy_training.train <family>``, ``python -m mtpolicy_training.ship.evaluate``
(and ``ship.model_card``), ``mtpolicy demo|goals|launch|render``
(``VOCABULARY``; docs/options.md says the same in prose). Any other spelling is
an unknown option: its parser's one-line error.

No dependency beyond the standard library: the tools and the training package both read it, so it lives in
the layer below them.
"""

from __future__ import annotations

import argparse

VOCABULARY: dict[str, tuple[str, str]] = {
    "robot": ("--robot", "shipped robot name, robot folder (with a robot.yaml) or MJCF/URDF path"),
    "model": ("--model", "ONNX policy, a path or a shipped name (default: the robot's default_model, in its "
              "robot.yaml)"),
    "end effectors": ("--end-effectors", "end-effector sites, in task (goal) order (default: the robot.yaml's, "
                      "else every site)"),
    "goal distribution": ("--goal-distribution", "'local' (each goal configuration near the start) or 'workspace' "
                          "(anywhere in the joint limits)"),
    "episode count": ("--episodes", "episodes to run, evaluate or publish (reach: goal sets, one an episode); a "
                      "trainer's two evaluations: --periodic-eval-episodes, --final-eval-episodes"),
    "seeds": ("--seed", "seed; a command that runs several takes one or more (--seed 1 2 3)"),
    "task set": ("--task-set", "a task family that is not a robot (mt10, hoppers3, ...; a robot's: its name); a "
                 "command that runs several takes one or more"),
    "output folder": ("--out-dir", "folder the command writes into (a command writing one file: --out FILE)"),
    "tolerance": ("--reach-tolerance", "an end effector within this distance (m) of its goal has reached it "
                  "(default: the robot.yaml's; a policy's: the one it was trained with)"),
    "anchors": ("--anchors", "classical controllers and references evaluated beside the policy on the same goal "
                "sets, lowercase: dls, mink (the reach table also teacher, time-optimal, bound, dynamic-optimum)"),
    "boolean": ("--NAME / --no-NAME", "every on/off option, never --NAME True|False"),
}
"""Thing -> (its option in every command, what it means). Launch files take the same words as ROS launch
arguments (``robot:=``, ``model:=``)."""


class Parser(argparse.ArgumentParser):
    """argparse without prefix matching, whose usage errors are one line."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def add_word(self, thing: str, help: str | None = None, **kwargs) -> None:  # noqa: A002, ANN003
        """The option of ``thing`` in ``VOCABULARY``, its help the vocabulary's unless given."""
        option, meaning = VOCABULARY[thing]
        self.add_argument(option, help=meaning if help is None else help, **kwargs)
