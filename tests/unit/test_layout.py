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


PACKAGES = {"mtpolicy": REPO / "mtpolicy", "mtpolicy_tools": REPO / "mtpolicy_tools",
            "mtpolicy_training": REPO / "training" / "mtpolicy_training"}


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the three packages it imports anywhere in its source (inside functions too), but
    not in an ``if TYPE_CHECKING:`` block (never run); ``from P import M`` of a module M counts as importing P.M."""
    files = {}
    for name, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root.parent).with_suffix("").parts)
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                       for n in ast.walk(block)}
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        graph[module] = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                graph[module] |= {a.name for a in node.names if a.name in files}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join([*parts[:len(parts) - node.level + 1], *filter(None, [base])])
                for a in node.names:
                    graph[module] |= {f"{base}.{a.name}"} if f"{base}.{a.name}" in files else \
                        {base} if base in files else set()
    return graph


def test_no_import_circle_deferred_imports_included():
    graph = import_graph()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(m == goal or (m not in seen and not seen.add(m) and reaches(m, goal, seen)) for m in graph[start])

    circles = sorted({module for module in graph if reaches(module, module, set())})
    assert not circles, f"modules on an import circle: {circles}"


def test_no_package_imports_a_higher_layer():
    """The runtime imports neither the tools nor training; training does not import the tools."""
    higher = {"mtpolicy": ("mtpolicy_tools", "mtpolicy_training"), "mtpolicy_training": ("mtpolicy_tools",)}
    found = [f"{module} -> {target}" for module, targets in import_graph().items() for target in targets
             if target.split(".")[0] in higher.get(module.split(".")[0], ())]
    assert not found, found
