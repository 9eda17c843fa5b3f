"""Command lines of the training package's tyro commands, in the one vocabulary (``mtpolicy.vocabulary``).

``parse_config`` is what every such command parses with (``train <family>``,
``ship.evaluate``, ``ship.model_card``): a bad value or option (another
spelling of a word, ``--flag True|False`` too) exits 2 with a one-line error
naming it.
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

from mtpolicy.vocabulary import VOCABULARY

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
        if isinstance(bare, type) and dataclasses.is_dataclass(bare):
            out |= option_names(bare, f"{prefix}{f.name}.")
        else:
            bare_name = all(getattr(m, "prefix_name", True) is not False for m in marks)
            out[prefix + f.name] = ((prefix if bare_name else "") + f.name, bare is bool)
    return out


BOOLEAN_WORDS = {"true": True, "false": False}
"""The values of a boolean harness override (``algo.heuristic=False``); a command line takes ``--NAME`` /
``--no-NAME`` instead."""


def no_flag(name: str) -> str:
    """The off spelling of boolean option ``name`` (dotted): ``algo.heuristic`` -> ``algo.no-heuristic``."""
    *prefix, last = name.replace("_", "-").split(".")
    return ".".join([*prefix, f"no-{last}"])


def refuse_boolean_words(config_type: type, argv: list[str]) -> None:
    """Exit 2 with a one-line error on a boolean option given a value (``--NAME True|False``, ``--NAME=False``)."""
    flags = {name.replace("_", "-") for name, boolean in option_names(config_type).values() if boolean}
    for i, arg in enumerate(argv):
        if arg == "--":
            return
        name, eq, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        value = value if eq else argv[i + 1] if i + 1 < len(argv) else ""
        if name.replace("_", "-") in flags and value.lower() in BOOLEAN_WORDS:
            flag = name.replace("_", "-")
            print(f"error: {arg if eq else f'{arg} {value}'}: use --{flag} / --{no_flag(flag)}", file=sys.stderr)
            raise SystemExit(2)


def override_args(config_type: type, overrides: dict[str, str]) -> list[str]:
    """A harness grid's overrides (``{"algo.hidden": "64 64", "algo.heuristic": "True"}``, dotted field paths,
    ``-`` or ``_`` between words) as the command's options: ``["--algo.hidden", "64", "64", "--algo.heuristic"]``
    (a field tyro spells without its prefix, ``env.robot``, as ``--robot``)."""
    names = option_names(config_type)
    out: list[str] = []
    for key, value in overrides.items():
        name, boolean = names.get(key.replace("-", "_"), (key, False))
        name = name.replace("_", "-")
        if boolean and value.lower() in BOOLEAN_WORDS:
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


def parse_config(config_type: type[Config], argv: list[str] | None, **cli_options: Any) -> Config:
    """``argv`` parsed into ``config_type`` (``tyro.cli`` with ``cli_options``); a bad value or option exits 2
    with a one-line error naming it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if dataclasses.is_dataclass(config_type):
        refuse_boolean_words(config_type, argv)
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
