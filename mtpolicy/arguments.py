"""The command-line parser of the runtime's commands (``mtpolicy``, ``python -m mtpolicy.render``)."""

from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """argparse without prefix matching, whose usage errors are one line."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")
