"""The one training command: ``python -m mtpolicy_training.train <family> [options]``.

    python -m mtpolicy_training.train --help               # the families
    python -m mtpolicy_training.train digrad --help        # every option of one, documented
    python -m mtpolicy_training.train digrad --budget-steps 300000 --seed 1 --out-dir runs/x

Every family takes the same words for the run (``--budget-steps``, ``--seed``,
``--out-dir``, ``--periodic-eval-episodes``, ``--final-eval-episodes``,
``--[no-]progress``); the same command again resumes from
``<out-dir>/checkpoint.pt``. An option's old name (a family's ``RENAMED``)
means its new one. The final evaluation is printed as JSON.
"""

from __future__ import annotations

import json
import sys

import tyro

from mtpolicy_training.core.run_record import renamed
from mtpolicy_training.train import a2c, dagger, digrad, ppo, sac_family
from mtpolicy_training.train.family import Family

FAMILIES: dict[str, Family] = {f.name: f for f in (
    digrad.FAMILY, sac_family.FAMILY, ppo.FAMILY, a2c.FAMILY,
    Family("dagger", dagger.DaggerTrainConfig, dagger.run),
)}
"""Subcommand -> trainer family."""


def today_option(arg: str, table: dict[str, str]) -> str:
    """A command-line token with an option's old name (``--old[=value]``) in today's words."""
    if not arg.startswith("--"):
        return arg
    name, eq, value = arg[2:].partition("=")
    return f"--{renamed(name, table)}{eq}{value}"


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` (a bad value exits naming it), train the family's run, print its final metrics."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in FAMILIES:
        table = getattr(FAMILIES[argv[0]].config, "RENAMED", {})
        argv = [argv[0], *(today_option(a, table) for a in argv[1:])]
    try:
        config = tyro.extras.subcommand_cli_from_dict({name: f.config for name, f in FAMILIES.items()}, args=argv,
                                                      prog="python -m mtpolicy_training.train",
                                                      description="Train a policy: a family, its robot or task "
                                                                  "set, a budget and a seed.")
    except ValueError as e:
        sys.exit(f"error: {e}")
    family = next(f for f in FAMILIES.values() if type(config) is f.config)
    final = family.run(config)
    print(json.dumps({k: round(v, family.digits) for k, v in final.items()}, indent=2))
