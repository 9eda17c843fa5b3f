"""ROS domain ids: the tests' and the self-contained runs' (demo, benchmarks) never meet."""

from __future__ import annotations

from mtpolicy_tools.environment import ISOLATED_DOMAINS, ros_env
from helpers import unique_domain_id


def test_isolated_runs_draw_domains_apart_from_the_tests():
    tests = {unique_domain_id() for _ in range(300)}
    assert tests == set(range(1, 101))
    isolated = {int(ros_env({}, isolate=True)["ROS_DOMAIN_ID"]) for _ in range(300)}
    assert isolated <= set(range(ISOLATED_DOMAINS[0], ISOLATED_DOMAINS[1] + 1))
    assert not isolated & tests


def test_an_isolated_run_keeps_a_given_domain_and_loopback_discovery():
    env = ros_env({"ROS_DOMAIN_ID": "7"}, isolate=True)
    assert env["ROS_DOMAIN_ID"] == "7"
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
