"""PPO joint training + gradient-guided specialization (algos/specialization.py, train/ppo.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mtpolicy_training.algos.ppo import PPO, PPOConfig
from mtpolicy_training.algos.specialization import (SpecializationConfig, SpecializationPPO, SpecializedPolicy,
                                                    gradient_variance, highest)
from mtpolicy_training.core.loop import EpisodeStats
from mtpolicy_training.core.networks import GaussianPolicy, RunningNormalizer
from mtpolicy_training.core.onpolicy import Rollout, collect_rollout, gae
from mtpolicy_training.core.vector_envs import action_scaler
from mtpolicy_training.envs.registry import make_task_set
from mtpolicy_training.envs.taskset import TaskOneHotObservations
from mtpolicy_training.train.ppo import SpecializationTrainConfig, run

HIDDEN = (64, 64, 64)


def with_one_hot(obs: torch.Tensor, task: torch.Tensor, n_tasks: int) -> torch.Tensor:
    return torch.cat([obs, torch.nn.functional.one_hot(task, n_tasks).float()], dim=-1)


def test_sp0_computes_the_joint_policy_exactly():
    torch.manual_seed(0)
    obs_size, n_tasks, action_size = 11, 3, 3
    policy = SpecializedPolicy(obs_size, n_tasks, action_size, HIDDEN, "tanh", -0.3, task_input=False)
    joint = GaussianPolicy(RunningNormalizer(obs_size), obs_size, action_size, HIDDEN, log_std_init=-0.3)
    joint.net.load_state_dict(policy.net.state_dict())
    batch = torch.randn(200, obs_size) * 2
    for p in (policy, joint):  # the same (non-trivial) normalization statistics on the observation columns
        p.normalizer.update(torch.cat([batch * 3 + 1, torch.zeros(200, p.normalizer.mean.numel() - obs_size)], 1))
    task = torch.arange(200) % n_tasks
    obs = with_one_hot(batch, task, n_tasks)
    actions = torch.randn(200, action_size)
    mean, value = policy(obs)
    joint_mean, joint_value = joint(batch)
    assert torch.equal(mean, joint_mean) and torch.equal(value, joint_value)
    assert torch.equal(policy.log_prob(mean, actions), joint.log_prob(joint_mean, actions))
    np_mean, np_value = policy.numpy_forward()(obs.numpy())  # the rollout path
    np.testing.assert_allclose(np_mean, mean.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(np_value, value.detach().numpy(), atol=1e-5)


def real_rollout(method: SpecializationPPO, task_set_name: str, envs_per_task: int, steps: int) -> Rollout:
    """A rollout of the real multi-task env under ``method``'s policy, with GAE."""
    task_set = make_task_set(task_set_name)
    env = TaskOneHotObservations(task_set.make_multitask_env(envs_per_task, seed=3),
                                 task_set.task_indices(envs_per_task), task_set.n_tasks)
    rollout = Rollout(steps, env.num_envs, env.single_observation_space.shape[0], env.single_action_space.shape[0])
    obs, _ = env.reset(seed=3)
    with torch.no_grad():
        collect_rollout(method.policy, env, obs, rollout, action_scaler(env.single_action_space),
                        EpisodeStats(env.num_envs), torch.Generator().manual_seed(0))
    env.close()
    gae(rollout, 0.99, 0.95)
    return rollout


def test_shared_weights_stay_identical_across_tasks_and_specialized_ones_diverge():
    torch.manual_seed(1)
    config = SpecializationConfig(ppo=PPOConfig(hidden=HIDDEN, epochs=2, minibatch_size=64, lr=1e-3), jt=0, sp=30,
                                  selection="random")
    method = SpecializationPPO(config, 11, 3, 3, rollout_size=3 * 64, seed=0)
    before = [t.detach().clone() for t in method.policy.member_tensors()]
    masks = method.policy.masks
    assert abs(sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks) - 0.30) < 1e-3
    for t, mask in zip(before, masks):  # just split: every task starts as the joint policy
        assert torch.equal(t[0], t[1]) and torch.equal(t[1], t[2])
    method.update(real_rollout(method, "hoppers3", 1, 64))
    after = [t.detach() for t in method.policy.member_tensors()]
    moved_shared = diverged = 0
    for t, t0, mask in zip(after, before, masks):
        policies = t[:3]
        assert torch.equal(policies[0][~mask], policies[1][~mask]) and torch.equal(policies[1][~mask],
                                                                                   policies[2][~mask])
        moved_shared += int((policies[0][~mask] != t0[0][~mask]).sum())
        diverged += int(((policies[0] != policies[1]) & (policies[1] != policies[2]))[mask].sum())
    total_specialized = sum(int(m.sum()) for m in masks)
    assert moved_shared > 0.5 * sum(int((~m).sum()) for m in masks)  # shared weights were trained...
    assert diverged > 0.9 * total_specialized  # ...and the task copies of the split ones went apart


def test_gradient_variance_and_selection_on_a_hand_made_case():
    g = torch.tensor([[1.0, 2.0, 3.0, 5.0], [3.0, 2.0, 1.0, 5.0]])
    torch.testing.assert_close(gradient_variance(g), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    assert highest(torch.tensor([0.3, 0.1, 0.9, 0.0]), 50).tolist() == [True, False, True, False]
    assert not highest(torch.rand(10), 0).any() and highest(torch.rand(10), 100).all()


def test_task_gradients_of_opposite_advantages_have_variance_g_squared():
    """Two tasks with the same samples and opposite advantages: g_2 = -g_1, so var = g_1^2 per weight (Eq. 5 and
    Algorithm 1), where g_1 is the gradient of -mean(A log pi(a|s)) (Eq. 4 at ratio 1) computed here directly."""
    torch.manual_seed(2)
    method = SpecializationPPO(SpecializationConfig(ppo=PPOConfig(hidden=(8, 8)), jt=10, sp=25), 5, 2, 2,
                               rollout_size=64)
    obs, actions, adv = torch.randn(16, 5), torch.randn(16, 2), torch.randn(16)
    rollout = Rollout(2, 16, 7, 2)
    rollout.obs.copy_(torch.stack([with_one_hot(obs, torch.full((16,), i), 2) for i in (0, 1)]))
    rollout.actions.copy_(actions.expand(2, -1, -1))
    with torch.no_grad():
        mean, _ = method.policy(rollout.obs[0])
        rollout.log_probs.copy_(method.policy.log_prob(mean, actions).expand(2, -1))
    rollout.advantages.copy_(torch.stack([adv, -adv]))
    grads = method.task_gradients(rollout)
    pooled = torch.cat([adv, -adv])
    normalized = adv / pooled.std()
    loss = -(normalized * method.policy.log_prob(method.policy(rollout.obs[0])[0], actions)).mean()
    g1 = torch.cat([g[0].reshape(-1) for g in torch.autograd.grad(loss, method.policy.shared)])
    torch.testing.assert_close(grads[0], g1)
    torch.testing.assert_close(grads[1], -g1)
    torch.testing.assert_close(gradient_variance(grads), g1.square())


SETTINGS = {
    "sp0": dict(sp=0),
    "jt0-sp100": dict(jt=0, sp=100),
    "random": dict(jt=384, sp=25, selection="random"),
    "append": dict(sp=0, task_input=True),
    "variance": dict(jt=384, sp=25, variance_iterations=2),
}


@pytest.mark.parametrize("setting", SETTINGS)
def test_smoke_run_of_each_setting(setting, tmp_path):
    task_set = "walker-fwd-bwd" if setting == "append" else "hoppers3"
    method = SpecializationConfig(ppo=PPOConfig(hidden=HIDDEN, epochs=2), **SETTINGS[setting])
    config = SpecializationTrainConfig(task_set=task_set, algo=method, seed=1, out_dir=tmp_path,
                                       periodic_eval_episodes=1, final_eval_episodes=1, progress=False)
    config.budget_steps, config.loop.rollout_steps, config.loop.eval_every = 3 * 192, 32, 384
    final = run(config)
    assert set(final) >= {"mean_return", *(f"return_{t}" for t in make_task_set(task_set).task_names)}
    assert json.loads((tmp_path / "eval.json").read_text())["mean_return"] == final["mean_return"]
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    fraction = float(rows[-1].split(",")[header.index("train/specialized_fraction")])
    assert fraction == pytest.approx(method.sp / 100, abs=1e-3)
    if setting == "variance":  # measured over the 2 joint updates, then split; a rerun resumes the checkpoint
        state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["method"]
        assert state["variance_count"] == 2 and state["is_split"] and state["samples"] == 3 * 192
        assert run(config)["mean_return"] == pytest.approx(final["mean_return"])


@pytest.mark.parametrize("field, kwargs", [
    ("sp", dict(sp=150)),
    ("jt", dict(jt=-1)),
    ("jt", dict(jt=0, sp=25)),
    ("variance_iterations", dict(variance_iterations=0)),
    ("ppo.clip", dict(ppo=PPOConfig(clip=0))),
])
def test_bad_config_value_is_named(field, kwargs):
    with pytest.raises(ValueError, match=field):
        SpecializationPPO(SpecializationConfig(**kwargs), 11, 3, 3, rollout_size=2048)


def test_num_envs_not_a_multiple_of_the_tasks_is_named(tmp_path):
    config = SpecializationTrainConfig(task_set="hoppers3", out_dir=tmp_path, progress=False)
    config.loop.num_envs = 4
    with pytest.raises(ValueError, match="loop.num_envs"):
        run(config)


def test_sp0_trains_like_plain_ppo():
    """Joint training (sp=0) is PPO on the joint network: one update from the same initial weights and rollout
    gives the same policy (up to float rounding of the per-task copies' zero gradients in the backward pass)."""
    config = PPOConfig(hidden=HIDDEN, epochs=2)
    torch.manual_seed(5)
    specialized = SpecializationPPO(SpecializationConfig(ppo=config, sp=0), 11, 3, 3, rollout_size=192, seed=0)
    torch.manual_seed(5)
    plain = PPO(config, 11, 3, rollout_size=192, seed=0)
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(64, 3, 11, generator=g)
    with_task, without_task = Rollout(64, 3, 14, 3), Rollout(64, 3, 11, 3)
    with_task.obs.copy_(torch.cat([obs, torch.eye(3).expand(64, 3, 3)], -1))
    without_task.obs.copy_(obs)
    for key in ("actions", "advantages", "returns"):
        value = torch.randn(getattr(with_task, key).shape, generator=g)
        getattr(with_task, key).copy_(value)
        getattr(without_task, key).copy_(value)
    with torch.no_grad():
        log_probs = plain.policy.log_prob(plain.policy(obs.reshape(-1, 11))[0], without_task.actions.reshape(-1, 3))
    with_task.log_probs.copy_(log_probs.view(64, 3))
    without_task.log_probs.copy_(log_probs.view(64, 3))
    before = plain.policy(obs.reshape(-1, 11))[0].detach()
    specialized.update(with_task)
    plain.update(without_task)
    after = plain.policy(obs.reshape(-1, 11))[0]
    assert (after - before).abs().max() > 1e-3  # the update moved the policy
    torch.testing.assert_close(specialized.policy(with_task.obs.reshape(-1, 14))[0], after, rtol=0, atol=1e-6)


def test_harness_cell(tmp_path):
    """A registered Table I cell trains through the harness entry (tiny budget)."""
    from benchmarks import harness

    overrides = {"loop.rollout-steps": "32", "loop.eval-every": "192", "periodic_eval_episodes": "1",
                 "final_eval_episodes": "1", "algo.ppo.epochs": "1"}
    method = harness.METHODS["ppo-jt0-sp100"]
    method.check("hopper-mass-3", overrides)
    method.train("hopper-mass-3", 1, 192, tmp_path, overrides)
    assert set(json.loads((tmp_path / "eval.json").read_text())) >= {"mean_return", "return_torso3kg",
                                                                     "return_torso15kg"}
    with pytest.raises(ValueError, match="algo.sp"):
        method.check("hopper-mass-3", {"algo.sp": "5"})
