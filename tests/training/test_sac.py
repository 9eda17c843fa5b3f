"""SAC: a few fused updates equal a plain reference SAC; smoke runs with resume; truncation; config errors."""

import csv
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from torch import nn

from mtpolicy_training.algos.sac import SAC, SACConfig
from mtpolicy_training.core.networks import EnsembleLinear
from mtpolicy_training.core.offpolicy import LoopConfig, train_off_policy
from mtpolicy_training.core.replay import Batch
from mtpolicy_training.core.run_record import RunConfig, RunSettings
from mtpolicy_training.core.vector_envs import evaluate_returns, final_observations, gym_vector_env
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import evaluate_reach

from helpers import record_update_metric

OBS, ACT, B = 11, 3, 32


def plain_mlp(ensemble: nn.Sequential, member: int) -> nn.Sequential:
    """nn.Linear / nn.ReLU copy of one member of an EnsembleMLP (same weights)."""
    layers = []
    for m in ensemble:
        if isinstance(m, EnsembleLinear):
            lin = nn.Linear(m.weight.shape[1], m.weight.shape[2])
            with torch.no_grad():
                lin.weight.copy_(m.weight[member].T)
                lin.bias.copy_(m.bias[member, 0])
            layers.append(lin)
        else:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ReferenceSAC:
    """SAC written out plainly: separate networks, torch.distributions, unfused Adam, one loss after another."""

    def __init__(self, fast: SAC, gamma=0.99, tau=0.005, lr=3e-4):
        self.actor = plain_mlp(fast.actor.net, 0)
        self.q = [plain_mlp(fast.critic.net, j) for j in range(2)]
        self.q_target = [plain_mlp(fast.critic_target.net, j) for j in range(2)]
        self.log_alpha = torch.zeros(1, requires_grad=True)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=lr, foreach=False)
        self.q_opt = torch.optim.Adam([p for q in self.q for p in q.parameters()], lr=lr, foreach=False)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=lr, foreach=False)
        self.gamma, self.tau, self.target_entropy = gamma, tau, -float(ACT)

    def sample(self, obs, eps):
        mean, log_std = self.actor(obs).chunk(2, dim=-1)
        log_std = log_std.clamp(-20, 2)
        u = mean + log_std.exp() * eps
        normal = torch.distributions.Normal(mean, log_std.exp())
        log_prob = normal.log_prob(u).sum(-1) - torch.log(1 - torch.tanh(u) ** 2).sum(-1)
        return torch.tanh(u), log_prob

    def update(self, b: Batch, eps: torch.Tensor):
        action, log_prob = self.sample(b.obs, eps[0])
        alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
        alpha = self.log_alpha.exp().detach()
        self.alpha_opt.zero_grad()
        alpha_loss.backward()
        self.alpha_opt.step()
        with torch.no_grad():
            next_action, next_log_prob = self.sample(b.next_obs, eps[1])
            x = torch.cat([b.next_obs, next_action], 1)
            next_q = torch.min(self.q_target[0](x), self.q_target[1](x))[:, 0] - alpha * next_log_prob
            y = b.rewards[:, 0] + self.gamma * (1 - b.terminated.float()) * next_q
        x = torch.cat([b.obs, b.action], 1)
        q_loss = 0.5 * sum(nn.functional.mse_loss(q(x)[:, 0], y) for q in self.q)
        self.q_opt.zero_grad()
        q_loss.backward()
        self.q_opt.step()
        x = torch.cat([b.obs, action], 1)
        actor_loss = (alpha * log_prob - torch.min(self.q[0](x), self.q[1](x))[:, 0]).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()
        with torch.no_grad():
            for q, qt in zip(self.q, self.q_target):
                for p, pt in zip(q.parameters(), qt.parameters()):
                    pt.mul_(1 - self.tau).add_(self.tau * p)


def random_batch(g: torch.Generator, task: torch.Tensor | None = None) -> Batch:
    return Batch(obs=torch.randn(B, OBS, generator=g), action=torch.rand(B, ACT, generator=g) * 2 - 1,
                 rewards=torch.randn(B, 1, generator=g), next_obs=torch.randn(B, OBS, generator=g),
                 terminated=torch.rand(B, generator=g) < 0.2, truncated=torch.zeros(B, dtype=torch.bool),
                 task=torch.zeros(B, dtype=torch.long) if task is None else task)


def test_fused_updates_equal_a_plain_reference_sac():
    torch.manual_seed(0)
    lr = 1e-2  # large steps, so a wrong update order or loss shows far above float noise
    fast = SAC(SACConfig(hidden=(64, 64), actor_lr=lr, critic_lr=lr, alpha_lr=lr), OBS, ACT)
    ref = ReferenceSAC(fast, lr=lr)
    g = torch.Generator().manual_seed(1)
    for i in range(4):
        batch = random_batch(g)
        torch.manual_seed(100 + i)
        fast.update(batch)
        torch.manual_seed(100 + i)
        ref.update(batch, torch.randn(2, B, ACT))
    for j in range(2):
        torch.testing.assert_close(plain_mlp(fast.critic.net, j).state_dict(), ref.q[j].state_dict(),
                                   rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(plain_mlp(fast.critic_target.net, j).state_dict(), ref.q_target[j].state_dict(),
                                   rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(plain_mlp(fast.actor.net, 0).state_dict(), ref.actor.state_dict(),
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.log_alpha.detach(), ref.log_alpha.detach(), rtol=1e-5, atol=1e-6)
    assert fast.log_alpha.item() != 0.0  # the temperature did move


def test_per_task_alpha_moves_only_the_temperatures_of_tasks_in_the_batch():
    torch.manual_seed(0)
    single = SAC(SACConfig(hidden=(32, 32)), OBS, ACT)
    per_task = SAC(SACConfig(hidden=(32, 32), per_task_alpha=True), OBS, ACT, n_tasks=3)
    per_task.actor.load_state_dict(single.actor.state_dict())
    batch = random_batch(torch.Generator().manual_seed(2), task=torch.zeros(B, dtype=torch.long))
    for m in (single, per_task):
        torch.manual_seed(5)
        m.update(batch)
    torch.testing.assert_close(per_task.log_alpha[0], single.log_alpha[0])
    assert per_task.log_alpha[1].item() == per_task.log_alpha[2].item() == math.log(1.0)


def test_the_log_std_starts_where_asked_and_the_critics_warm_up_alone():
    torch.manual_seed(0)
    sac = SAC(SACConfig(hidden=(32, 32), log_std_init=-2.5, critic_warmup=2), OBS, ACT)
    obs = torch.randn(B, OBS)
    with torch.no_grad():
        log_std = sac.actor.distribution(obs)[1]
    torch.testing.assert_close(log_std, torch.full_like(log_std, -2.5), atol=0.05, rtol=0)
    actor, alpha = [p.detach().clone() for p in sac.actor.parameters()], sac.log_alpha.item()
    critic = [p.detach().clone() for p in sac.critic.parameters()]
    batch = random_batch(torch.Generator().manual_seed(3))
    for _ in range(2):
        sac.update(batch)
    assert all(torch.equal(p, q) for p, q in zip(sac.actor.parameters(), actor)) and sac.log_alpha.item() == alpha
    assert not all(torch.equal(p, q) for p, q in zip(sac.critic.parameters(), critic))
    sac.update(batch)
    assert not all(torch.equal(p, q) for p, q in zip(sac.actor.parameters(), actor)) and sac.log_alpha.item() != alpha
    assert SACConfig(log_std_init=5.0, critic_warmup=-1).validate() == ["log_std_init", "critic_warmup"]


def test_truncated_transition_keeps_the_final_observation():
    env = gym_vector_env("HalfCheetah-v5", 2, max_episode_steps=3)
    env.reset(seed=0)
    for _ in range(3):
        next_obs, _, terminated, truncated, info = env.step(np.zeros((2, 6), dtype=np.float32))
    assert truncated.all() and not terminated.any()
    final = final_observations(next_obs, terminated | truncated, info)
    np.testing.assert_array_equal(final, np.stack(info["final_obs"]))
    assert not np.allclose(final, next_obs)  # next_obs is already the reset observation


TINY = {"num_envs": 4, "batch_size": 32, "update_every": 4, "updates_per_round": 2, "learning_starts": 64,
        "eval_every": 64, "checkpoint_every": 64}


def run_settings(budget_steps, out_dir):
    return RunSettings(budget_steps=budget_steps, seed=0, out_dir=out_dir, progress=False)


def run_twice(tmp_path, make_env, evaluate, method_factory, capsys):
    """Train to 128 steps, then resume the same run to 192: the second call starts from the checkpoint."""
    for total in (128, 192):
        train_off_policy(method_factory(), make_env, LoopConfig(**TINY), run_settings(total, tmp_path), evaluate,
                         None, RunConfig({"test": 1}, {}))
    assert "from step 128" in capsys.readouterr().out
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert [int(float(r.split(",")[0])) for r in rows[1:]] == [64, 128, 192]
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 192
    return rows[0]


def test_sac_runs_and_resumes_on_halfcheetah(tmp_path, capsys):
    def make_env(n):
        return gym_vector_env("HalfCheetah-v5", n, max_episode_steps=20)

    def evaluate(m):
        return evaluate_returns(lambda o: m.act(o, 0.0), make_env, 2, seed=7)

    header = run_twice(tmp_path, make_env, evaluate, lambda: SAC(SACConfig(hidden=(32, 32)), 17, 6), capsys)
    for key in ("eval/return_mean", "train/episode_return", "train/critic_loss", "train/alpha"):
        assert key in header


def test_training_rows_between_evaluations_hold_the_mean_over_their_updates(tmp_path):
    """log_every 32 < eval_every 64: a row every 32 steps, an evaluation in every other one. Each row's train/
    metrics average the updates since the previous row: 2 updates per 4 steps from learning_starts = 64 on, so
    the row at 64 holds 2 updates, those at 96 and 128 16 each."""
    def make_env(n):
        return gym_vector_env("HalfCheetah-v5", n, max_episode_steps=20)

    method = SAC(SACConfig(hidden=(32, 32)), 17, 6)
    alphas = record_update_metric(method, "alpha")
    final = train_off_policy(method, make_env, LoopConfig(**TINY | {"log_every": 32}), run_settings(128, tmp_path),
                             lambda m: {"return_mean": float(len(alphas))}, None, RunConfig({}, {}))
    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [32, 64, 96, 128]
    assert [r["eval/return_mean"] for r in rows] == ["", "2.0", "", "34.0"] and final == {"return_mean": 34.0}
    assert rows[0]["train/alpha"] == ""  # no update before learning_starts
    for row, (lo, hi) in zip(rows[1:], [(0, 2), (2, 18), (18, 34)]):
        assert float(row["train/alpha"]) == pytest.approx(np.mean(alphas[lo:hi]))


def test_sac_runs_and_resumes_on_planar8(tmp_path, capsys):
    config = ReachConfig(max_episode_steps=20)
    mean, std = ReachVectorEnv(1, config).observation_statistics()

    def evaluate(m):
        return evaluate_reach(lambda o: m.act(o, 0.0), config, 4)

    header = run_twice(tmp_path, lambda n: ReachVectorEnv(n, config), evaluate,
                       lambda: SAC(SACConfig(hidden=(32, 32)), len(mean), 8, obs_mean=mean, obs_std=std), capsys)
    assert "eval/success_rate" in header and "train/success" in header


@pytest.mark.parametrize("field,value", [("tau", 0.0), ("gamma", 1.0), ("init_alpha", 0.0), ("hidden", ())])
def test_bad_sac_config_value_is_named(field, value):
    with pytest.raises(ValueError, match=field):
        SAC(SACConfig(**{field: value}), OBS, ACT)


def test_next_step_autoreset_env_is_refused_naming_the_mode(tmp_path):
    def make_env(n):
        return gym.make_vec("HalfCheetah-v5", n, vectorization_mode="sync",
                            vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP})

    with pytest.raises(ValueError, match="autoreset_mode"):
        train_off_policy(SAC(SACConfig(), 17, 6), make_env, LoopConfig(**TINY), run_settings(64, tmp_path),
                         lambda m: {}, None, RunConfig({}, {}))
