"""No log call of the runtime can raise: rclpy keys its logging state by call site and raises ``ValueError``
when a site changes its severity, logger or filters between calls (issue 49: a WARN then an ERROR through one
site killed the controller).

Every call of a severity method on a logger in ``mtpolicy/`` and ``mtpolicy_tools/`` is checked as source: the
severity is the method's literal name (no ``getattr(logger, level)``, no ``logger.log(text, level)``) and every
keyword (a filter such as ``throttle_duration_sec``) is a constant. The one function that picks a severity at run time,
``mtpolicy.nodes.reporting.log``, is run through every severity in turn on one rclpy logger.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (REPO / "mtpolicy", REPO / "mtpolicy_tools")
"""The runtime and the tools beside it (whose monitor node, record and demo log through rclpy too)."""
SEVERITIES = {"debug", "info", "warning", "warn", "error", "fatal"}


def _logger_like(node: ast.AST) -> bool:
    text = ast.unparse(node)
    return "logger" in text.lower() or text.endswith("get_logger()")


def log_site_problems(source: str, filename: str) -> list[str]:
    """Each logging call in ``source`` whose severity or filters can change at run time, as 'file:line: why'."""
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        where = f"{filename}:{node.lineno}"
        if isinstance(func, ast.Name) and func.id == "getattr" and node.args and _logger_like(node.args[0]):
            problems.append(f"{where}: getattr on a logger (severity chosen at run time)")
        elif isinstance(func, ast.Attribute) and _logger_like(func.value):
            if func.attr == "log":
                problems.append(f"{where}: logger.log(...) with a run-time severity")
            elif func.attr in SEVERITIES:
                variable = [k.arg for k in node.keywords if not isinstance(k.value, ast.Constant)]
                if variable or any(k.arg is None for k in node.keywords):
                    problems.append(f"{where}: logging filter(s) {variable or ['**kwargs']} not constant")
    return problems


def test_every_log_site_of_the_runtime_and_the_tools_has_one_severity_and_constant_filters():
    files = sorted(f for package in PACKAGES for f in package.rglob("*.py"))
    assert len({f.parts[len(REPO.parts)] for f in files}) == len(PACKAGES)
    problems = [p for f in files for p in log_site_problems(f.read_text(), str(f.relative_to(REPO)))]
    assert not problems, "\n".join(problems)


def test_the_lint_finds_each_kind_of_unsafe_site():
    bad = ("getattr(self.get_logger(), level)('x')\n"
           "node.get_logger().log('x', level)\n"
           "logger.warning('x', throttle_duration_sec=period)\n"
           "logger.error('x', **filters)\n")
    good = "self.get_logger().warning('x', throttle_duration_sec=5.0)\nlogger.error('y')\n"
    assert len(log_site_problems(bad, "bad.py")) == 4
    assert log_site_problems(good, "good.py") == []


def test_log_and_throttled_log_take_every_severity_in_turn_on_one_logger(monkeypatch: pytest.MonkeyPatch):
    """The reproduction of the crash: a WARN then an ERROR (and back) through ThrottledLog on one node."""
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from mtpolicy.nodes.reporting import ThrottledLog, log
    from helpers import unique_domain_id

    monkeypatch.setenv("ROS_DOMAIN_ID", str(unique_domain_id()))
    import rclpy

    context = rclpy.Context()
    with rclpy.init(args=[], context=context):
        node = rclpy.create_node("log_sites", context=context)
        throttled = ThrottledLog(node, period=0.0)
        for level in ("warning", "error", "info", "warning", "fatal", "debug", "error"):
            throttled("one key", f"a {level} message", level=level)
            log(node.get_logger(), level, f"the same site at {level}")
        node.destroy_node()
