"""The one training command: ``python -m mtpolicy_training.train <family> [options]``.

    python -m mtpolicy_training.train --help               # the families
    python -m mtpolicy_training.train digrad --help        # every option of one, documented
    python -m mtpolicy_training.train digrad --budget-steps 300000 --seed 1 --out-dir runs/x

Every family takes the same words for the run (``--budget-steps``, ``--seed``,
``--out-dir``, ``--periodic-eval-episodes``, ``--final-eval-episodes``,
``--[no-]progress``; dagger rounds the budget down to whole iterations, or takes
``--iterations``); the same
command again resumes from ``<out-dir>/checkpoint.pt``. An option's old name
(a family's ``RENAMED``) means its new one. The final evaluation is printed
as JSON.

A bad value or option exits 2 with a one-line error naming it, before
anything is written; a run refused on the way (a corrupt checkpoint, another
run's directory, a non-finite result) exits 1 with a one-line error.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union

import tyro

from mtpolicy.integrity import CorruptFile, strict_json
from mtpolicy.robots import RobotSpecError
from mtpolicy_training.core.files import write_failure
from mtpolicy_training.core.run_record import RunRefused, renamed
from mtpolicy_training.train import a2c, dagger, digrad, ppo, sac_family
from mtpolicy_training.train.family import Family

FAMILIES: dict[str, Family] = {f.name: f for f in (
    digrad.FAMILY, sac_family.FAMILY, ppo.FAMILY, a2c.FAMILY, dagger.FAMILY,
)}
"""Subcommand -> trainer family."""

Config = TypeVar("Config")


def today_option(arg: str, table: dict[str, str]) -> str:
    """A command-line token with an option's old name (``--old[=value]``) in today's words."""
    if not arg.startswith("--"):
        return arg
    name, eq, value = arg[2:].partition("=")
    return f"--{renamed(name, table)}{eq}{value}"


def one_line_tyro_error(text: str) -> str:
    """The message of a tyro error box (its text after the title, up to the next rule), as one line; tyro draws
    the box in Unicode or, on a stream that is not UTF-8, in ASCII."""
    rule = set("─-+╭╮╰╯ ")
    lines = [c for c in (line.strip().strip("│|").strip() for line in text.splitlines()) if c][1:]
    while lines and set(lines[0]) <= rule:
        lines.pop(0)
    message = []
    for line in lines:
        if set(line) <= rule:
            break
        message.append(line)
    return " ".join(message) or text.strip()


def parse_config(config_type: type[Config], argv: list[str] | None, **cli_options: Any) -> Config:
    """``argv`` parsed into ``config_type`` (``tyro.cli`` with ``cli_options``); a bad value or option exits 2
    with a one-line error naming it."""
    captured = io.StringIO()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100000"  # tyro wraps its error box to the terminal width: keep the message whole
    try:
        with contextlib.redirect_stderr(captured):
            config = tyro.cli(config_type, args=argv, **cli_options)
    except SystemExit as e:
        if e.code:
            print(f"error: {one_line_tyro_error(captured.getvalue())}", file=sys.stderr)
        else:
            sys.stderr.write(captured.getvalue())
        raise
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    sys.stderr.write(captured.getvalue())
    seed = getattr(config, "seed", 0)
    if not 0 <= seed < 2 ** 32:
        print(f"error: --seed must be in [0, 2**32), got {seed}", file=sys.stderr)
        raise SystemExit(2)
    return config


FAMILY_CONFIGS = Union[tuple(Annotated[Any, tyro.conf.subcommand(name, constructor=f.config)]
                             for name, f in FAMILIES.items())]
"""The families' configs as tyro subcommands."""


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` (a bad value exits 2 naming it, in one line), train the family's run, print its final
    metrics (a run refused on the way exits 1 with a one-line error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in FAMILIES:
        table = getattr(FAMILIES[argv[0]].config, "RENAMED", {})
        argv = [argv[0], *(today_option(a, table) for a in argv[1:])]
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
