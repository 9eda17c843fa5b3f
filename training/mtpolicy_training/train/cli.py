"""The one training command: ``python -m mtpolicy_training.train <family> [options]``.

    python -m mtpolicy_training.train --help               # the families
    python -m mtpolicy_training.train digrad --help        # every option of one, documented
    python -m mtpolicy_training.train digrad --robot humanoid --budget-steps 300000 --seed 1 --out-dir runs/x

Every family takes the same words for the run (``--budget-steps``, ``--seed``,
``--out-dir``, ``--periodic-eval-episodes``, ``--final-eval-episodes``,
``--[no-]progress``; dagger rounds the budget down to whole iterations, or takes
``--iterations``), and the reach trainers the words of every command for the
robot (``--robot``, ``--end-effectors``, ``--reach-tolerance``,
``--goal-distribution``; ``mtpolicy.vocabulary.VOCABULARY``); booleans are
``--NAME`` / ``--no-NAME``. The same command again resumes from
``<out-dir>/checkpoint.pt``. The final evaluation is printed as JSON.

A bad value or option exits 2 with a one-line error naming it, before
anything is written; a run refused on the way (a corrupt checkpoint, another
run's directory, a non-finite result) exits 1 with a one-line error.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Annotated, Any, Union

import tyro

from mtpolicy.integrity import CorruptFile, strict_json
from mtpolicy.robots import RobotSpecError
from mtpolicy_training.core.files import write_failure
from mtpolicy_training.core.options import parse_config, refuse_boolean_words
from mtpolicy_training.core.run_record import RunRefused
from mtpolicy_training.train import a2c, dagger, digrad, ppo, sac_family
from mtpolicy_training.train.family import Family

FAMILIES: dict[str, Family] = {f.name: f for f in (
    digrad.FAMILY, sac_family.FAMILY, ppo.FAMILY, a2c.FAMILY, dagger.FAMILY,
)}
"""Subcommand -> trainer family."""

FAMILY_CONFIGS: Any = Union[tuple(Annotated[Any, tyro.conf.subcommand(name, constructor=f.config)]
                                  for name, f in FAMILIES.items())]
"""The families' configs as tyro subcommands (a type built at run time: to a type checker, a value of any type)."""


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` (a bad value exits 2 naming it, in one line), train the family's run, print its final
    metrics (a run refused on the way exits 1 with a one-line error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in FAMILIES:
        refuse_boolean_words(FAMILIES[argv[0]].config, argv[1:])
    config = parse_config(FAMILY_CONFIGS, argv, prog="python -m mtpolicy_training.train",
                          description="Train a policy: a family, its robot or task set, a budget and a seed.")
    family = next(f for f in FAMILIES.values() if type(config) is f.config)
    try:
        final = family.run(config)
    except (RunRefused, CorruptFile, RobotSpecError) as e:  # a refused run, a corrupt file, an unknown robot
        sys.exit(f"error: {e}")
    except OSError as e:  # a full disk (with the space left) or a file that cannot be read: one line
        if e.filename is None:
            raise
        full = e.errno in (errno.ENOSPC, errno.EDQUOT)
        sys.exit(f"error: {write_failure(Path(e.filename), e) if full else f'{e.filename}: {e.strerror}'}")
    print(strict_json({k: round(v, family.digits) for k, v in final.items()}, indent=2))
