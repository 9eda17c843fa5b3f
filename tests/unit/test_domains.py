"""ROS domain ids: the tests' and the self-contained runs' (demo, benchmarks) never meet."""

from __future__ import annotations

import os

import pytest

from mtpolicy_tools.environment import ISOLATED_DOMAINS, ros_env
from helpers import unique_domain_id


def test_isolated_runs_draw_domains_apart_from_the_tests():
    tests = {unique_domain_id() for _ in range(300)}
    assert tests <= set(range(1, 101)) and len(tests) == 100 // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    isolated = {int(ros_env({}, isolate=True)["ROS_DOMAIN_ID"]) for _ in range(300)}
    assert isolated <= set(range(ISOLATED_DOMAINS[0], ISOLATED_DOMAINS[1] + 1))
    assert not isolated & tests


def test_an_isolated_run_keeps_a_given_domain_and_loopback_discovery():
    env = ros_env({"ROS_DOMAIN_ID": "7"}, isolate=True)
    assert env["ROS_DOMAIN_ID"] == "7"
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"


def test_two_xdist_workers_draw_disjoint_domains(monkeypatch):
    drawn = []
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
        drawn.append({unique_domain_id() for _ in range(200)})
    assert not drawn[0] & drawn[1]
    assert drawn[0] | drawn[1] == set(range(1, 101))


@pytest.mark.parametrize("domain", ["818", "-1", "seven", "233"])
def test_a_domain_id_no_dds_can_use_exits_with_one_line(domain):
    with pytest.raises(SystemExit, match=rf"^ROS_DOMAIN_ID='{domain}': expected an integer from 0 to 232 \("):
        ros_env({"ROS_DOMAIN_ID": domain})
    assert ros_env({"ROS_DOMAIN_ID": "232"})["ROS_DOMAIN_ID"] == "232"
