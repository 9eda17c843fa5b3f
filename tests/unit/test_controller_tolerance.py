"""The controller judges progress against the reach tolerance of the model's contract (issue 51)."""

from dataclasses import replace

from mtpolicy.reach_task import reach_tolerance
from mtpolicy.nodes.controller_model import contract_reach_tolerance
from mtpolicy.policy import OnnxPolicy


def test_the_tolerance_is_the_contracts_and_the_robots_default_only_where_the_contract_has_none():
    contract = OnnxPolicy("humanoid_digrad").contract
    assert contract_reach_tolerance(contract) == contract.reach_tolerance == 0.03
    assert contract_reach_tolerance(replace(contract, reach_tolerance=0.05)) == 0.05  # not the robot's table
    assert contract_reach_tolerance(replace(contract, reach_tolerance=0.0)) == reach_tolerance("humanoid")
