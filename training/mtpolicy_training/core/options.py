"""Command lines of the training package's tyro commands, in the one vocabulary (``mtpolicy.vocabulary``).

``parse_config`` is what every such command parses with (``train <family>``,
``ship.evaluate``, ``ship.model_card``): old spellings of the command
(``OLD_NAMES``) and ``--flag True|False`` become today's words with a warning,
and a bad value or option exits 2 with a one-line error naming it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shlex
import sys
import typing
from typing import Any, TypeVar

import tyro

from mtpolicy.vocabulary import BOOLEAN_WORDS, OLD_NAMES, VOCABULARY, modernize, no_flag, renamed

Config = TypeVar("Config")


def option_names(config_type: type, prefix: str = "") -> dict[str, tuple[str, bool]]:
    """Dotted field path -> (its option as tyro spells it, whether it is boolean), for every leaf field of a config
    dataclass and its nested ones; a field marked ``prefix_name=False`` is spelled without its prefix."""
    out: dict[str, tuple[str, bool]] = {}
    hints = typing.get_type_hints(config_type, include_extras=True)
    for f in dataclasses.fields(config_type):
        hint = hints[f.name]
        marks = getattr(hint, "__metadata__", ())
        bare = typing.get_args(hint)[0] if marks else hint
        if dataclasses.is_dataclass(bare):
            out |= option_names(bare, f"{prefix}{f.name}.")
        else:
            bare_name = all(getattr(m, "prefix_name", True) is not False for m in marks)
            out[prefix + f.name] = ((prefix if bare_name else "") + f.name, bare is bool)
    return out


def cli_table(config_type: type, command: str) -> tuple[dict[str, str], set[str]]:
    """``command``'s old spellings (``OLD_NAMES``, plus a field's dotted path where tyro spells it without its
    prefix) -> today's, and its boolean options."""
    names = option_names(config_type)
    spelled = {path: name for path, (name, _) in names.items() if name != path}
    return OLD_NAMES.get(command, {}) | spelled, {name for name, boolean in names.values() if boolean}


def today_args(config_type: type, argv: list[str], command: str) -> list[str]:
    """``argv`` of ``command`` (a key of ``OLD_NAMES``) parsed into ``config_type`` in today's words, a warning for
    each old spelling."""
    table, booleans = cli_table(config_type, command)
    return modernize(argv, table, booleans, prog=command)


def override_args(config_type: type, command: str, overrides: dict[str, str]) -> list[str]:
    """A harness grid's overrides (``{"algo.hidden": "64 64", "algo.heuristic": "True"}``, dotted field paths,
    old names too) as ``command``'s options in today's words: ``["--algo.hidden", "64", "64", "--algo.heuristic"]``."""
    table, booleans = cli_table(config_type, command)
    out: list[str] = []
    for key, value in overrides.items():
        name = renamed(key, table).replace("_", "-")
        if name in {b.replace("_", "-") for b in booleans} and value.lower() in BOOLEAN_WORDS:
            out.append(f"--{name if BOOLEAN_WORDS[value.lower()] else no_flag(name)}")
        else:
            out += [f"--{name}", *shlex.split(value)]
    return out


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


def parse_config(config_type: type[Config], argv: list[str] | None, command: str = "",
                 **cli_options: Any) -> Config:
    """``argv`` (``command``'s old spellings accepted with a warning) parsed into ``config_type`` (``tyro.cli``
    with ``cli_options``); a bad value or option exits 2 with a one-line error naming it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if command and dataclasses.is_dataclass(config_type):
        argv = today_args(config_type, argv, command)
    captured = io.StringIO()
    columns = os.environ.get("COLUMNS")
    if not {"-h", "--help"} & set(argv):  # tyro wraps its error box to the terminal width: keep the message whole
        os.environ["COLUMNS"] = "100000"
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
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns
    sys.stderr.write(captured.getvalue())
    seeds = getattr(config, "seed", 0)
    for seed in seeds if isinstance(seeds, tuple) else (seeds,):
        if not 0 <= seed < 2 ** 32:
            print(f"error: --seed must be in [0, 2**32), got {seed}", file=sys.stderr)
            raise SystemExit(2)
    return config


def word(thing: str) -> Any:  # noqa: ANN401 - a tyro marker
    """The tyro marker of a vocabulary word in a nested config: spelled without its prefix, the vocabulary's
    help."""
    return tyro.conf.arg(prefix_name=False, help=VOCABULARY[thing][1])
