"""The controller's parameters as declared (PARAMS), documented in docs/real_robot.md and the params YAMLs."""

import re
from pathlib import Path

import yaml

from mtpolicy.nodes.controller import PARAMS

REPO = Path(__file__).resolve().parents[2]


def test_every_parameter_is_in_the_docs_table_with_its_default_and_description():
    rows = dict(re.findall(r"^\| `(\w+)` \| (.+?) \|", (REPO / "docs" / "real_robot.md").read_text(), re.M))
    for p in PARAMS:
        default = '""' if p.default == "" else str(p.default).lower() if isinstance(p.default, bool) else p.default
        assert rows.get(p.name) == f"`{default}`", (p.name, rows.get(p.name))
    text = (REPO / "docs" / "real_robot.md").read_text()
    assert all(p.description in text for p in PARAMS)


def test_the_params_yamls_set_only_declared_parameters():
    declared = {p.name: p.default for p in PARAMS}
    for path in sorted((REPO / "config").glob("*.yaml")):
        params = yaml.safe_load(path.read_text())["controller"]["ros__parameters"]
        assert set(params) <= set(declared), (path.name, set(params) - set(declared))
