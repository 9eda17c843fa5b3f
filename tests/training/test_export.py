"""ONNX export: checker, parity with torch, the metadata contract (the import rule: tests/unit/test_layout.py)."""

import numpy as np
import onnx
import pytest
import torch

from mtpolicy.integrity import CHECKSUM_KEY, PLACEHOLDER, seal_model
from mtpolicy.policy import ModelMismatch, OnnxPolicy
from mtpolicy_training.algos.digrad import DiGrad, DiGradConfig
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.ship.export import export_policy, parity


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    env = ReachVectorEnv(1, ReachConfig())
    mean, std = env.observation_statistics(n=512)
    m = DiGrad(DiGradConfig(), env.spec, mean, std)
    path = export_policy(m.actor, env.spec, ReachConfig(), "digrad-single-heur", {"seed": 0}, {"success_rate": 0.5},
                         tmp_path_factory.mktemp("export") / "p.onnx")
    return m, env, path


def test_onnx_checker_passes_and_contract_round_trips(exported):
    _, env, path = exported
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    policy = OnnxPolicy(path)
    c = policy.contract
    assert c.joints == env.spec.joint_names and c.end_effectors == env.spec.end_effectors
    assert c.control_period == ReachConfig().control_period and c.metrics == {"success_rate": 0.5}
    policy.check(env.spec)


def test_onnxruntime_matches_torch_on_1000_observations(exported):
    m, env, path = exported
    q = np.random.default_rng(0).uniform(-2, 2, (1000, 8))
    obs, _ = ReachVectorEnv(1000, ReachConfig()).reset(seed=3, options={"q": q})
    assert parity(m.actor, env.spec, path, obs) <= 1e-5
    assert np.abs(OnnxPolicy(path)(obs)).max() <= 2.0 + 1e-6  # rad/s, inside the velocity limits


def test_a_model_for_another_robot_is_refused_naming_the_mismatch(exported, tmp_path):
    _, env, path = exported
    model = onnx.load(str(path))
    for p in model.metadata_props:
        if p.key == "joints":
            p.value = p.value.replace("shoulder_1", "hip")
        if p.key == CHECKSUM_KEY:  # sealed again after the edit: a consistent file, only for another robot
            p.value = PLACEHOLDER
    (tmp_path / "bad.onnx").write_bytes(seal_model(model.SerializeToString()))
    with pytest.raises(ModelMismatch, match="hip"):
        OnnxPolicy(tmp_path / "bad.onnx").check(env.spec)


def test_a_model_for_another_robot_lists_every_mismatch_without_crashing():
    from mtpolicy.robots import load_robot

    problems = OnnxPolicy("planar8_reach").contract.mismatches(load_robot("humanoid"))
    assert problems[0] == "model is for robot 'planar8', not 'humanoid'"
    assert any(p.startswith("model velocity limits") for p in problems)
