"""The controller's parameters, declared once (controller_params.PARAMS): the docs table and the params YAMLs'
comments are generated from the declaration, and the checked-in files match what the generator writes."""

import math
import re
from pathlib import Path

import pytest
import yaml

from mtpolicy.nodes import param_docs
from mtpolicy.nodes.controller_params import PARAMS
from mtpolicy.nodes.params import Param, Range

REPO = Path(__file__).resolve().parents[2]


def test_the_docs_table_and_the_yaml_comments_are_what_the_declaration_generates():
    stale = [str(path.relative_to(REPO)) for path, text in param_docs.generated(PARAMS).items()
             if path.read_text() != text]
    assert not stale, f"{stale} drifted from controller_params.PARAMS: run python -m mtpolicy.nodes.param_docs"


def test_every_parameter_is_in_the_docs_table_with_its_default_and_description():
    text = (REPO / "docs" / "real_robot.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| (.+?) \|", text, re.M))
    for p in PARAMS:
        assert rows.get(p.name) == f"`{param_docs.default_text(p)}`", (p.name, rows.get(p.name))
        assert p.description in text, p.name


def test_a_changed_declaration_changes_the_generated_table_and_comment_but_no_value():
    doc = Param("state_timeout", 0.25, "a new doc", Range(0.0, open_low=True), unit="s")
    markdown = f"intro\n{param_docs.TABLE_START}\nold table\n{param_docs.TABLE_END}\nafter\n"
    assert param_docs.with_table(markdown, [doc]) == (
        f"intro\n{param_docs.TABLE_START}\n| parameter | default | unit, range | what it is |\n|---|---|---|---|\n"
        f"| `state_timeout` | `0.25` | s, > 0 | a new doc |\n{param_docs.TABLE_END}\nafter\n")
    params_yaml = ("controller:\n  ros__parameters:\n    state_timeout: 0.5   # the old doc\n    # a comment line\n"
                   "sim:\n  ros__parameters:\n    state_timeout: 0.1   # another node's\n")
    assert param_docs.with_comments(params_yaml, [doc]) == (
        "controller:\n  ros__parameters:\n    state_timeout: 0.5       # s: a new doc\n    # a comment line\n"
        "sim:\n  ros__parameters:\n    state_timeout: 0.1   # another node's\n")


def test_the_params_yamls_set_only_declared_parameters():
    declared = {p.name for p in PARAMS}
    for path in sorted((REPO / "config").glob("*.yaml")):
        params = yaml.safe_load(path.read_text())["controller"]["ros__parameters"]
        assert set(params) <= declared, (path.name, set(params) - declared)


def test_a_range_says_its_rule_in_the_docs_and_in_a_rejection():
    rate = Range(0.0, 1000.0)
    assert str(rate) == ">= 0, <= 1000" and str(Range(0.0, open_low=True)) == "> 0"
    assert rate(-1.0) == rate(1e6) == "must be >= 0, <= 1000" and rate(50.0) is None
    assert Range(0.0, open_low=True)(0.0) == "must be > 0"
    off_or_rate = Range(1.0, 1000.0, or_zero=True)  # a rate with a floor, 0 meaning "off" or "the default"
    assert str(off_or_rate) == "0 or >= 1, <= 1000" and off_or_rate(0.0) is None and off_or_rate(20.0) is None
    assert off_or_rate(0.001) == off_or_rate(5e-324) == off_or_rate(-0.0 - 1) == "must be 0 or >= 1, <= 1000"
    assert all(r(math.nan) is not None for r in (rate, off_or_rate, Range(-math.inf)))  # NaN lies in no range


def test_a_bad_value_at_start_is_refused_in_one_line_and_the_descriptor_carries_unit_and_range(
        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from helpers import unique_domain_id
    from mtpolicy.nodes.params import PARAMETER_OPTIONS, ParamSet, StartupError

    monkeypatch.setenv("ROS_DOMAIN_ID", str(unique_domain_id()))
    import rclpy
    from rclpy.parameter import Parameter

    context = rclpy.Context()
    with rclpy.init(args=[], context=context):
        def node(*overrides: Parameter):  # noqa: ANN202 - as the nodes are made (PARAMETER_OPTIONS)
            return rclpy.create_node("controller", context=context, parameter_overrides=list(overrides),
                                     **PARAMETER_OPTIONS)

        bad = node(Parameter("rate_hz", value=-5.0))
        with pytest.raises(StartupError, match=r"^parameter 'rate_hz': must be 0 or >= 1, <= 1000 Hz, got -5.0$"):
            ParamSet(bad, PARAMS)
        bad.destroy_node()
        misspelled = node(Parameter("state_timout", value=0.5), Parameter("use_sim_time", value=True))
        with pytest.raises(StartupError, match=r"^unknown parameter\(s\) \['state_timout'\] given to node "):
            ParamSet(misspelled, PARAMS)
        misspelled.destroy_node()
        good = node(Parameter("rate_hz", value=50))  # an integer for a float parameter: taken as 50.0
        params = ParamSet(good, PARAMS)
        assert params.rate_hz == 50.0 and isinstance(params.rate_hz, float)
        descriptor = good.describe_parameter("state_timeout")
        assert (descriptor.description, descriptor.additional_constraints) == (
            "s: joint states older than this, by arrival or by their stamp, => zeros", ">= 0.001, <= 10")
        good.destroy_node()
