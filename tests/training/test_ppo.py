"""PPO and the on-policy core: GAE with truncation, updates equal a plain reference PPO, smoke runs, config errors."""

import csv

import numpy as np
import pytest
import torch
from torch import nn

from mtpolicy_training.algos.ppo import PPO, PPOConfig
from mtpolicy_training.core.loop import EpisodeStats
from mtpolicy_training.core.networks import EnsembleLinear
from mtpolicy_training.core.onpolicy import OnPolicyLoopConfig, Rollout, collect_rollout, gae, train_on_policy
from mtpolicy_training.core.run_record import RunConfig, RunSettings
from mtpolicy_training.core.vector_envs import action_scaler, evaluate_returns, gym_vector_env
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import evaluate_reach

from helpers import record_update_metric

OBS, ACT = 9, 4


def random_rollout(steps: int, envs: int, seed: int) -> Rollout:
    g = torch.Generator().manual_seed(seed)
    r = Rollout(steps, envs, OBS, ACT)
    for name in ("obs", "actions", "rewards", "values", "next_values"):
        getattr(r, name).copy_(torch.randn(getattr(r, name).shape, generator=g))
    r.log_probs.copy_(-torch.rand(steps, envs, generator=g) * 5)
    r.terminated.copy_(torch.rand(steps, envs, generator=g) < 0.1)
    r.cut.copy_((torch.rand(steps, envs, generator=g) < 0.1) & ~r.terminated)
    r.done.copy_(r.terminated | r.cut)
    return r


def test_gae_bootstraps_time_limit_cuts_and_stops_at_episode_ends():
    r = random_rollout(50, 3, seed=0)
    gamma, lam = 0.9, 0.8
    gae(r, gamma, lam)
    want = np.zeros((50, 3))
    for e in range(3):
        following = 0.0
        for t in reversed(range(50)):
            if r.terminated[t, e]:
                delta, following = r.rewards[t, e] - r.values[t, e], 0.0
            else:  # next_values holds V(final obs) where cut, V(s_{t+1}) otherwise
                delta = r.rewards[t, e] + gamma * r.next_values[t, e] - r.values[t, e]
                if r.cut[t, e]:
                    following = 0.0
            want[t, e] = following = float(delta) + gamma * lam * following
    np.testing.assert_allclose(r.advantages.numpy(), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r.returns.numpy(), want + r.values.numpy(), rtol=1e-5, atol=1e-5)


def test_rollout_bootstraps_from_the_final_observation_of_a_cut_episode():
    env = gym_vector_env("HalfCheetah-v5", 2, max_episode_steps=5)
    ppo = PPO(PPOConfig(hidden=(16, 16), minibatch_size=16), 17, 6, 16)
    r = Rollout(8, 2, 17, 6)
    obs, _ = env.reset(seed=0)
    with torch.no_grad():
        collect_rollout(ppo.policy, env, obs, r, action_scaler(env.single_action_space), EpisodeStats(2),
                        torch.Generator().manual_seed(0))
    assert r.cut[4].all() and not r.cut[:4].any() and not r.terminated.any()
    # the value of step 4's successor is not that of the reset observation stored at step 5
    assert not torch.allclose(r.next_values[4], r.values[5])
    torch.testing.assert_close(r.next_values[:4], r.values[1:5])
    torch.testing.assert_close(r.log_probs, ppo.policy.log_prob(r.means, r.actions))
    with torch.no_grad():  # the rollout's numpy policy is the torch policy
        mean, value = ppo.policy(r.obs.flatten(0, 1))
    torch.testing.assert_close(r.means, mean.reshape(8, 2, 6))
    torch.testing.assert_close(r.values, value.reshape(8, 2))


def plain_copy(policy, member: int) -> nn.Sequential:
    layers = []
    for m in policy.net:
        if isinstance(m, EnsembleLinear):
            out = m.weight.shape[2] if member == 0 or m is not policy.net[-1] else 1
            lin = nn.Linear(m.weight.shape[1], out)
            with torch.no_grad():
                lin.weight.copy_(m.weight[member, :, :out].T)
                lin.bias.copy_(m.bias[member, 0, :out])
            layers.append(lin)
        else:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def reference_ppo_update(pi: nn.Sequential, vf: nn.Sequential, log_std: nn.Parameter, rollout: Rollout,
                         c: PPOConfig, seed: int) -> None:
    """PPO's update written plainly: torch.distributions, separate networks, unfused Adam, clip_grad_norm_."""
    params = [*pi.parameters(), *vf.parameters(), log_std]
    opt = torch.optim.Adam(params, lr=c.lr, eps=c.adam_eps, foreach=False)
    data = {k: getattr(rollout, k).flatten(0, 1) for k in ("obs", "actions", "log_probs", "advantages", "returns")}
    g = torch.Generator().manual_seed(seed)
    n = len(data["obs"])
    for _ in range(c.epochs):
        perm = torch.randperm(n, generator=g)
        for start in range(0, n, c.minibatch_size):
            mb = {k: v[perm[start:start + c.minibatch_size]] for k, v in data.items()}
            dist = torch.distributions.Normal(pi(mb["obs"]), log_std.exp())
            adv = (mb["advantages"] - mb["advantages"].mean()) / (mb["advantages"].std() + 1e-8)
            ratio = torch.exp(dist.log_prob(mb["actions"]).sum(-1) - mb["log_probs"])
            policy_loss = -torch.min(ratio * adv, torch.clamp(ratio, 1 - c.clip, 1 + c.clip) * adv).mean()
            value_loss = nn.functional.mse_loss(vf(mb["obs"])[:, 0], mb["returns"])
            loss = policy_loss + c.vf_coef * value_loss - c.ent_coef * dist.entropy().sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, c.max_grad_norm)
            opt.step()


def test_fused_update_equals_a_plain_reference_ppo():
    torch.manual_seed(0)
    config = PPOConfig(hidden=(32, 32), lr=1e-2, epochs=2, minibatch_size=40, ent_coef=0.01)
    fast = PPO(config, OBS, ACT, rollout_size=160, seed=3)
    pi, vf = plain_copy(fast.policy, 0), plain_copy(fast.policy, 1)
    log_std = nn.Parameter(fast.policy.log_std.detach().clone())
    rollout = random_rollout(40, 4, seed=1)
    with torch.no_grad():  # consistent old log-probs: the current policy's, slightly perturbed
        rollout.log_probs.copy_(fast.policy.log_prob(fast.policy(rollout.obs.flatten(0, 1))[0], rollout.actions.flatten(
            0, 1)).reshape(40, 4) + 0.1 * torch.randn(40, 4))
    gae(rollout, 0.99, 0.95)
    reference_ppo_update(pi, vf, log_std, rollout, config, seed=3)
    fast.update(rollout)
    torch.testing.assert_close(plain_copy(fast.policy, 0).state_dict(), pi.state_dict(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(plain_copy(fast.policy, 1).state_dict(), vf.state_dict(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.policy.log_std.detach(), log_std.detach(), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(log_std, torch.zeros(ACT))  # the update did move the policy


def run_settings(budget_steps, out_dir):
    return RunSettings(budget_steps=budget_steps, seed=0, out_dir=out_dir, progress=False)


def run_twice(tmp_path, make_env, evaluate, method_factory, capsys, normalize_obs=False):
    """Train two rollouts, then resume the same run for a third: the second call starts from the checkpoint."""
    for total in (128, 192):
        loop = OnPolicyLoopConfig(num_envs=4, rollout_steps=16, eval_every=64, checkpoint_every=64,
                                  normalize_obs=normalize_obs)
        train_on_policy(method_factory(), make_env, loop, run_settings(total, tmp_path), evaluate,
                        RunConfig({"test": 1}, {}))
    assert "from step 128" in capsys.readouterr().out
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert [int(float(r.split(",")[0])) for r in rows[1:]] == [64, 128, 192]
    return rows[0], torch.load(tmp_path / "checkpoint.pt", weights_only=False)


def test_ppo_runs_and_resumes_on_halfcheetah(tmp_path, capsys):
    def make_env(n):
        return gym_vector_env("HalfCheetah-v5", n, max_episode_steps=20)

    def evaluate(m):
        return evaluate_returns(m.act, make_env, 2, seed=7)

    header, ckpt = run_twice(tmp_path, make_env, evaluate,
                             lambda: PPO(PPOConfig(hidden=(16, 16), minibatch_size=16), 17, 6, 64), capsys,
                             normalize_obs=True)
    for key in ("eval/return_mean", "train/episode_return", "train/loss"):
        assert key in header
    assert ckpt["step"] == 192
    normalizer = ckpt["method"]["policy"]
    assert normalizer["normalizer.count"] > 192 and not torch.all(normalizer["normalizer.mean"] == 0)


def test_ppo_runs_and_resumes_on_planar8(tmp_path, capsys):
    config = ReachConfig(max_episode_steps=20)

    def evaluate(m):
        return evaluate_reach(m.act, config, 4)

    n_obs = ReachVectorEnv(1, config).single_observation_space.shape[0]
    header, _ = run_twice(tmp_path, lambda n: ReachVectorEnv(n, config), evaluate,
                          lambda: PPO(PPOConfig(hidden=(16, 16), minibatch_size=16), n_obs, 8, 64), capsys)
    assert "eval/success_rate" in header and "train/success" in header


def test_training_rows_between_evaluations_hold_the_mean_over_their_updates(tmp_path):
    """Rollouts of 64 steps, log_every 128, eval_every 256: rows at 128 (no evaluation) and 256, each averaging
    the 2 updates since the previous row, not the last update's values."""
    def make_env(n):
        return gym_vector_env("HalfCheetah-v5", n, max_episode_steps=20)

    method = PPO(PPOConfig(hidden=(16, 16), minibatch_size=16), 17, 6, 64)
    losses = record_update_metric(method, "loss")
    loop = OnPolicyLoopConfig(num_envs=4, rollout_steps=16, eval_every=256, log_every=128, checkpoint_every=256)
    train_on_policy(method, make_env, loop, run_settings(256, tmp_path), lambda m: {"updates": float(len(losses))},
                    RunConfig({}, {}))
    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [128, 256] and [r["eval/updates"] for r in rows] == ["", "4.0"]
    assert len(set(losses)) == 4
    for row, pair in zip(rows, (losses[:2], losses[2:])):
        assert float(row["train/loss"]) == pytest.approx(np.mean(pair))


@pytest.mark.parametrize("field,value", [("clip", 0.0), ("epochs", 0), ("lr", -1.0), ("minibatch_size", 48)])
def test_bad_ppo_config_value_is_named(field, value):
    with pytest.raises(ValueError, match=field):
        PPO(PPOConfig(**{field: value}), OBS, ACT, rollout_size=64)


@pytest.mark.parametrize("field,value", [("gae_lambda", 1.5), ("rollout_steps", 0), ("log_every", 0)])
def test_bad_loop_config_value_fails_at_start_naming_it(tmp_path, field, value):
    with pytest.raises(ValueError, match=field):
        train_on_policy(PPO(PPOConfig(), OBS, ACT, 64), lambda n: None, OnPolicyLoopConfig(**{field: value}),
                        run_settings(64, tmp_path), lambda m: {}, RunConfig({}, {}))
