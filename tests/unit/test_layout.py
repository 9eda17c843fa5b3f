"""The layout's rules (DESIGN.md, issue 51): the runtime (``mtpolicy``) holds what a robot computer runs and never
imports the tools beside it (``mtpolicy_tools``) or anything of training; neither does any tool; no Python file of
the repository is over 500 lines."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from helpers import REPO

RUNTIME, TOOLS = "mtpolicy", "mtpolicy_tools"
TRAINING = ("torch", "gymnasium", "metaworld", "mtpolicy_training")
MAX_LINES = 500


def imported_after(packages: tuple[str, ...]) -> list[str]:
    """The top-level packages in ``sys.modules`` after importing every module of ``packages``, in a fresh
    interpreter."""
    code = ("import importlib, pkgutil, sys\n"
            f"for name in {packages!r}:\n"
            "    package = importlib.import_module(name)\n"
            "    for m in pkgutil.walk_packages(package.__path__, name + '.'):\n"
            "        importlib.import_module(m.name)\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


@pytest.mark.parametrize("packages", [(RUNTIME,), (RUNTIME, TOOLS)], ids=["runtime", "runtime+tools"])
def test_deployment_never_imports_training_dependencies(packages):
    """Every module of the runtime (nodes included), and of the tools (CLI, demo, render, launch runner);
    matplotlib only lazily, in the demo's figures."""
    loaded = imported_after(packages)
    assert not [m for m in (*TRAINING, "matplotlib") if m in loaded], loaded


def test_the_runtime_never_imports_the_tools():
    """Neither when imported (every module) nor anywhere in its source (an import inside a function included)."""
    assert TOOLS not in imported_after((RUNTIME,))
    found = []
    for path in sorted((REPO / RUNTIME).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(REPO)}:{node.lineno}" for n in names if n.split(".")[0] == TOOLS]
    assert not found, found


def test_no_python_file_is_over_500_lines():
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    assert files
    long = {f: n for f in files if (REPO / f).is_file() and (n := len((REPO / f).read_text().splitlines())) > MAX_LINES}
    assert not long, long
