"""The docs of the controller's parameters, generated from their one declaration (``controller_params.PARAMS``).

Two places show them: the parameter table of docs/real_robot.md (between the
``TABLE_START`` and ``TABLE_END`` markers) and the comment after each
controller parameter a params YAML (config/*.yaml) sets. ``python -m
mtpolicy.nodes.param_docs`` rewrites both; with ``--check`` it only lists the
files that differ from what it would write (tests/unit/test_controller_docs.py
fails then). Values in the YAMLs are never changed, only their comments.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Callable, Sequence

from mtpolicy.nodes.params import Param

REPO = Path(__file__).resolve().parents[2]
TABLE_START = "<!-- generated from mtpolicy/nodes/controller_params.py: python -m mtpolicy.nodes.param_docs -->"
TABLE_END = "<!-- end of the generated table -->"
COMMENT_COLUMN = 29
"""Column of the ``#`` of a generated YAML comment (further right after a longer value)."""
YAML_ENTRY = re.compile(r"^(?P<head>\s+(?P<name>\w+):\s*(?P<value>[^#]*?))\s*(#.*)?$")
"""An indented ``name: value`` line of a params YAML, with or without a comment."""


def default_text(p: Param) -> str:
    """The default as the docs show it: ``""`` for an empty string, YAML's spelling of a bool."""
    if p.default == "":
        return '""'
    return str(p.default).lower() if isinstance(p.default, bool) else str(p.default)


def table(params: Sequence[Param]) -> str:
    """The Markdown table of ``params``: name, default, unit and range, the one-line doc."""
    rows = ["| parameter | default | unit, range | what it is |", "|---|---|---|---|"]
    for p in params:
        bounds = ", ".join(x for x in (p.unit, p.rule) if x)
        rows.append(f"| `{p.name}` | `{default_text(p)}` | {bounds} | "
                    f"{p.description}{' (read-only)' if p.read_only else ''} |")
    return "\n".join(rows)


def comment(p: Param) -> str:
    """The YAML comment of a parameter: its unit, then its doc."""
    return f"# {p.summary}"


def with_table(markdown: str, params: Sequence[Param]) -> str:
    """``markdown`` with the text between the table markers replaced by the table of ``params``."""
    start, end = markdown.find(TABLE_START), markdown.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"the markers {TABLE_START!r} and {TABLE_END!r} are missing")
    return f"{markdown[:start + len(TABLE_START)]}\n{table(params)}\n{markdown[end:]}"


def with_comments(text: str, params: Sequence[Param], node: str = "controller") -> str:
    """Params YAML ``text`` with the comment of every parameter of ``params`` set under ``node`` generated."""
    declared = {p.name: p for p in params}
    lines, current = [], None
    for line in text.splitlines():
        if re.match(r"\w+:", line):
            current = line.split(":")[0]
        entry = YAML_ENTRY.match(line)
        if current == node and entry and entry["name"] in declared:
            head = entry["head"]
            line = f"{head:<{COMMENT_COLUMN}}" if len(head) < COMMENT_COLUMN - 1 else head + "  "
            line += comment(declared[entry["name"]])
        lines.append(line)
    return "\n".join(lines) + "\n"


def generated(params: Sequence[Param], repo: Path = REPO) -> dict[Path, str]:
    """Each file that shows ``params``, with the text it should have."""
    rewrite: list[tuple[Path, Callable[[str, Sequence[Param]], str]]] = [
        (repo / "docs" / "real_robot.md", with_table), *((path, with_comments)
                                                         for path in sorted((repo / "config").glob("*.yaml")))]
    return {path: update(path.read_text(), params) for path, update in rewrite}


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the generated docs (``--check``: list the files that differ, exit 1 if any)."""
    from mtpolicy.nodes.controller_params import PARAMS

    check = "--check" in (sys.argv[1:] if argv is None else argv)
    stale = {path: text for path, text in generated(PARAMS).items() if path.read_text() != text}
    for path, text in stale.items():
        if check:
            print(f"{path.relative_to(REPO)} differs from the parameter declarations")
        else:
            path.write_text(text)
            print(f"rewrote {path.relative_to(REPO)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
