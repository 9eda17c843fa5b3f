"""The D-Grad paper's SAC family: projection, D-Grad(A) layer, head routing, task replay, smoke runs."""

from __future__ import annotations

import copy
import dataclasses
import functools
import gc
import json
import weakref

import metaworld
import mujoco
import numpy as np
import pytest
import torch
from metaworld.sawyer_xyz_env import SawyerXYZEnv
from mtpolicy_training.algos.sac import SACConfig
from mtpolicy_training.algos.sac_family import (
    SURGERY_METRICS,
    DGradLayer,
    SACFamily,
    SACFamilyConfig,
    TaskActor,
    TaskCritic,
    TaskGradients,
    deconflict_weights,
)
from mtpolicy_training.core.networks import Normalizer
from mtpolicy_training.core.offpolicy import LoopConfig, update_precision
from mtpolicy_training.core.replay import Batch, TaskReplayBuffer
from mtpolicy_training.envs.registry import make_task_set
from mtpolicy_training.envs.taskset import TaskOneHotObservations as TaskOneHotEnv
from mtpolicy_training.ship.export import parity
from mtpolicy_training.train.sac_family import SACFamilyTrainConfig, run

from benchmarks.gradient_conflicts import probe
from benchmarks.sac_family_profile import ProfileConfig, profile_method
from mtpolicy.policy import OnnxPolicy

METHODS = ("mtsac", "mh-sac", "dgrad-a", "dgrad-o")
SMOKE_EPISODE_STEPS = 50
"""Meta-World's episode length in the entry-point smokes (the benchmark's: 500)."""
SMOKE_GOALS = 2
"""Goal variations Meta-World draws per task in the entry-point smokes (its ``num_goals`` option; the benchmark's:
50)."""


def quick_metaworld(monkeypatch: pytest.MonkeyPatch, benchmark: str) -> None:
    """Meta-World as the entry-point smokes run it: the same code in a fraction of the time.

    - A run builds the benchmark's vector env twice, for evaluation and for training, with the same seed; each
      build first samples the benchmark's 50 goal variations per task (each task's env reset 50 times, a pure
      function of the seed that leaves numpy's global random state as it was). Here that sampling runs once and
      both builds take its result: the same tasks, the same envs built and wrapped by Meta-World.
    - Each env compiles its task's MJCF file (a quarter of a second each, 150 times for MT50: the sampling and the
      two builds). Here each file is compiled once and every env gets its own copy of the compiled model
      (``copy.copy``: MuJoCo's ``mj_copyModel``), the model compiling would give.
    - Episodes of ``SMOKE_EPISODE_STEPS`` steps: the smokes check what a run produces (a success rate and a return
      per task, eval.json, the checkpoint, the metrics), not its values. Their training budgets end before the
      first episode does at either length; Meta-World's evaluation runs the same steps, truncation and autoreset
      on a tenth of the steps (at 500, most of MT50's).
    - ``SMOKE_GOALS`` goal variations per task, as Meta-World's ``num_goals`` option draws them: each draw resets
      the task's env (50 simulation steps of the hand), 2,500 resets for MT50's 50 (three quarters of its smoke).
    """
    monkeypatch.setattr(metaworld, benchmark, functools.cache(getattr(metaworld, benchmark)))  # looked up by name
    compiled = functools.cache(mujoco.MjModel.from_xml_path)
    monkeypatch.setattr(mujoco.MjModel, "from_xml_path", staticmethod(lambda path: copy.copy(compiled(path))))
    monkeypatch.setattr(SawyerXYZEnv, "max_path_length", SMOKE_EPISODE_STEPS)
    monkeypatch.setattr(metaworld, "_N_GOALS", SMOKE_GOALS)  # what make_mt_envs(num_goals=...) sets


def algorithm_1(grads: torch.Tensor, order: list[list[int]]) -> torch.Tensor:
    """D-Grad's Algorithm 1 on the vectors themselves, as the paper writes it: each g_i projected, against the
    original g_j in ``order[i]``, onto g_j's normal plane where they conflict; the projected g_i summed."""
    total = torch.zeros_like(grads[0])
    for i, others in enumerate(order):
        g = grads[i].clone()
        for j in others:
            dot = g @ grads[j]
            if dot < 0:
                g -= dot / (grads[j] @ grads[j]) * grads[j]
        total += g
    return total


def deconflicted_sum(grads: torch.Tensor, order: list[list[int]]) -> torch.Tensor:
    """The library's Gram-matrix form of Algorithm 1 applied to ``grads`` (T, P)."""
    weights = deconflict_weights((grads @ grads.T).double().numpy(), order)
    return torch.from_numpy(weights).to(grads.dtype) @ grads


def test_projection_hand_computed():
    conflicting = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])  # g1 . g2 = -1
    # g1 - (-1 / 2) g2 = (0.5, 0.5); g2 - (-1 / 1) g1 = (0, 1); sum (0.5, 1.5)
    assert torch.allclose(deconflicted_sum(conflicting, [[1], [0]]), torch.tensor([0.5, 1.5]))
    agreeing = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # no conflict: the plain sum
    assert torch.allclose(deconflicted_sum(agreeing, [[1], [0]]), torch.tensor([2.0, 1.0]))
    # three tasks, order matters: g1 projected on g2 then g3 (the original g3, Algorithm 1)
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [-1.0, -1.0]])
    g1 = torch.tensor([0.5, 0.5])  # after g2; then g1 . g3 = -1 < 0: minus (-1 / 2) g3
    g1 = g1 + 0.5 * g[2]
    g2 = g[1] + g[0]  # g2 . g1 = -1: (0, 1); then (0, 1) . g3 = -1: + 0.5 g3 -> (-0.5, 0.5)
    g2 = g2 + 0.5 * g[2]
    g3 = g[2] + g[0]  # g3 . g1 = -1: (0, -1); then (0, -1) . g2 = -1: + 0.5 g2 -> (-0.5, -0.5)
    g3 = g3 + 0.5 * g[1]
    assert torch.allclose(deconflicted_sum(g, [[1, 2], [0, 2], [0, 1]]), g1 + g2 + g3)
    assert torch.allclose(algorithm_1(g, [[1, 2], [0, 2], [0, 1]]), g1 + g2 + g3)


def test_gram_form_equals_algorithm_1_on_vectors():
    generator = torch.Generator().manual_seed(0)
    for n_tasks in (2, 5, 10):
        grads = torch.randn(n_tasks, 50, generator=generator, dtype=torch.float64)
        order = [[j for j in torch.randperm(n_tasks, generator=generator).tolist() if j != i] for i in range(n_tasks)]
        torch.testing.assert_close(deconflicted_sum(grads, order), algorithm_1(grads, order))


def test_dgrad_o_step_equals_sac_without_conflict_and_differs_with():
    """Through ``apply_gradients``: one task in the batch -> SAC's step exactly; conflicts change it."""
    torch.manual_seed(0)
    config = SACFamilyConfig(method="dgrad-o", paper_hidden=False, sac=SACConfig(hidden=(8,), per_task_alpha=True))
    method = SACFamily(config, 3, 2, n_tasks=2)
    obs = torch.cat([torch.randn(4, 3), torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 1]), 2)], dim=1)
    params = method._critic_params
    for sign, conflict in ((torch.ones(4), False), (torch.tensor([1.0, 1.0, -1.0, -1.0]), True)):
        losses = method.critic(obs, torch.zeros(4, 2))[0, :, 0] * sign
        grads = torch.autograd.grad(losses.mean(), params, retain_graph=True)
        read_only = torch.optim.SGD(params, lr=0.0)  # keeps the parameters, so the same q serves both cases
        method.apply_gradients(losses, torch.tensor([0, 0, 1, 1]), params, read_only)
        same = all(torch.allclose(p.grad, g, atol=1e-6) for p, g in zip(params, grads))
        assert same != conflict
        diagnostics = {k: float(v) for k, v in method.surgery_metrics.items()}
        assert diagnostics["critic_conflicting_pairs"] == float(conflict)
        for k in ("critic_step_norm_ratio", "critic_step_cosine"):
            assert (abs(diagnostics[k] - 1.0) < 1e-5) != conflict


@pytest.mark.parametrize("network", ["actor", "critic"])
def test_dgrad_o_step_is_algorithm_1_on_per_task_autograd_gradients(network):
    """``apply_gradients`` (per-parameter blocks, one backward) equals the plain definition: one autograd pass per
    task, concatenated, Algorithm 1 on those vectors in the same random order, divided by T; with conflicting
    tasks."""
    torch.manual_seed(0)
    n_tasks, per = 4, 6
    config = SACFamilyConfig(method="dgrad-o", paper_hidden=False, sac=SACConfig(hidden=(16, 16), per_task_alpha=True))
    method = SACFamily(config, 5, 3, n_tasks=n_tasks, seed=7)
    task = torch.arange(n_tasks).repeat_interleave(per)
    obs = torch.cat([torch.randn(len(task), 5), torch.nn.functional.one_hot(task, n_tasks)], dim=1)
    sign = torch.tensor([1.0, -1.0, 1.0, -1.0]).repeat_interleave(per)  # tasks pull against each other
    if network == "actor":
        params = method._actor_params
        action, log_prob = method.actor.sample(obs, torch.randn(len(task), 3))
        losses = sign * (0.1 * log_prob - method.critic(obs, action).min(0).values[:, 0])
    else:
        params = method._critic_params
        losses = sign * method.critic(obs, torch.rand(len(task), 3))[..., 0].square().sum(0)
    per_task = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        losses[task == t].mean(), params, retain_graph=True)]) for t in range(n_tasks)])
    gram = per_task @ per_task.T
    assert (gram < 0).any()  # the projection does something
    order_rng = np.random.default_rng()
    order_rng.bit_generator.state = method.order_rng.bit_generator.state
    order = [[j for j in order_rng.permutation(n_tasks) if j != i] for i in range(n_tasks)]
    expected = algorithm_1(per_task, order) / n_tasks
    method.apply_gradients(losses, task, params, torch.optim.SGD(params, lr=0.0))
    got = torch.cat([p.grad.reshape(-1) for p in params])
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(expected, per_task.mean(0), rtol=1e-3, atol=1e-6)  # differs from SAC's step


@pytest.mark.parametrize("conditioning", ["one-hot", "heads", "dgrad-a"])
def test_per_task_gradients_from_one_backward(conditioning):
    """TaskGradients (one backward) equals one autograd pass per task, for actor and twin critic."""
    torch.manual_seed(0)
    n_tasks, state, action, per = 3, 4, 2, 5
    norm = Normalizer(np.zeros(state), np.ones(state))
    actor = TaskActor(norm, state, action, n_tasks, (8, 8), "relu", conditioning)
    critic = TaskCritic(norm, state, action, n_tasks, (8, 8), "relu", conditioning)
    with torch.no_grad():
        for p in [*actor.parameters(), *critic.parameters()]:
            p.add_(0.1 * torch.randn_like(p))  # D-Grad(A) layers away from identity
    grads = TaskGradients([actor, critic])
    task = torch.arange(n_tasks).repeat_interleave(per)
    obs = torch.cat([torch.randn(len(task), state), torch.nn.functional.one_hot(task, n_tasks)], dim=1)
    a, log_prob = actor.sample(obs, torch.randn(len(task), action))
    for net, losses in ((critic, critic(obs, a.detach()).square().sum(0)[:, 0]),
                        (actor, log_prob - critic(obs, a).min(0).values[:, 0])):
        params = list(net.parameters())
        expected = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(
            losses[task == t].mean(), params, retain_graph=True)]) for t in range(n_tasks)])
        blocks = grads.per_task_blocks(losses.sum() / per, params, n_tasks)
        got = torch.cat([block.transpose(0, 1).reshape(n_tasks, -1) for block in blocks], dim=1)
        assert torch.allclose(got, expected, atol=1e-5)


def test_dgrad_o_update_leaves_no_graph_alive():
    """Once an update's records are dropped, its layer inputs are freed (hooks on layer outputs made autograd
    keep them: ~20 MB per update at MT10 sizes, out of memory within ~10k env steps)."""
    torch.manual_seed(0)
    config = SACFamilyConfig(method="dgrad-o", paper_hidden=False, sac=SACConfig(hidden=(16, 16), per_task_alpha=True))
    method = SACFamily(config, 5, 2, n_tasks=3)
    buffer = TaskReplayBuffer(30, 8, 2, 1, 3)
    task = np.repeat(np.arange(3), 4)
    obs = np.concatenate([np.random.randn(12, 5), np.eye(3)[task]], 1).astype(np.float32)
    buffer.add(obs=obs, action=np.zeros((12, 2)), rewards=np.ones((12, 1)), next_obs=obs, terminated=np.zeros(12),
               truncated=np.zeros(12), task=task)
    method.update(buffer.sample(6, torch.Generator().manual_seed(0))[0])
    inputs = [weakref.ref(entry[0]) for entries in method.task_gradients.records.values() for entry in entries]
    method.task_gradients.records.clear()  # what the next update does first
    gc.collect()
    assert len(inputs) == 9 and all(ref() is None for ref in inputs)  # actor: 3 layers; critic: 3 x 2 forwards


def test_dgrad_a_layer_identity_init_and_both_paths():
    layer = DGradLayer(members=2, n_tasks=3, width=5)
    assert layer.matrix.shape == (2, 3, 5, 5) and layer.shift.shape == (2, 3, 1, 5)
    x = torch.randn(2, 6, 5)
    grouped = torch.tensor([0, 0, 1, 1, 2, 2])
    assert torch.equal(layer(x, grouped), x)  # identity at init
    with torch.no_grad():
        layer.matrix.normal_()
        layer.shift.normal_()
    perm = torch.tensor([3, 0, 5, 1, 4, 2])  # not task-major: the per-sample path
    out = layer(x, grouped)
    assert torch.allclose(layer(x[:, perm], grouped[perm]), out[:, perm], atol=1e-5)
    expected = torch.einsum("ebn,ebnm->ebm", x, layer.matrix[:, grouped]) + layer.shift[:, grouped, 0]
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("network", ["actor", "critic"])
def test_multi_head_routing(network):
    """Task 1's loss moves head 1 and the trunk, never the other heads."""
    torch.manual_seed(0)
    n_tasks, state, action, hidden = 3, 4, 2, (8, 8)
    norm = Normalizer(np.zeros(state), np.ones(state))
    obs = torch.cat([torch.randn(5, state), torch.nn.functional.one_hot(torch.full((5,), 1), n_tasks)], dim=1)
    if network == "actor":
        net = TaskActor(norm, state, action, n_tasks, hidden, "relu", "heads")
        loss, out = net.sample(obs, torch.randn(5, action))[1].sum(), 2 * action
    else:
        net = TaskCritic(norm, state, action, n_tasks, hidden, "relu", "heads")
        loss, out = net(obs, torch.randn(5, action)).sum(), 1
    loss.backward()
    linears = [m for m in net.net.net if hasattr(m, "weight")]
    for trunk in linears[:-1]:
        assert trunk.weight.grad.abs().sum() > 0
    head_grads = linears[-1].weight.grad.unflatten(-1, (n_tasks, out)).abs().sum(dim=(0, 1, 3))
    assert head_grads[1] > 0 and head_grads[0] == 0 and head_grads[2] == 0


def test_task_replay_equal_per_task_and_resumable():
    buffer = TaskReplayBuffer(30, obs_size=1, action_size=1, n_rewards=1, n_tasks=3)
    for count in (1, 2, 9):  # unequal arrivals, task 2 wraps its ring of 10
        task = np.repeat([0, 1, 2], [count, 2 * count, 3 * count])
        buffer.add(obs=task[:, None].astype(np.float32), action=np.zeros((len(task), 1)),
                   rewards=np.zeros((len(task), 1)), next_obs=np.zeros((len(task), 1)),
                   terminated=np.zeros(len(task)), truncated=np.zeros(len(task)), task=task)
    assert buffer.sizes == [10, 10, 10] and buffer.positions == [2, 4, 6]
    batches = buffer.sample(12, torch.Generator().manual_seed(0), rounds=2)
    for b in batches:
        assert torch.equal(b.task, torch.arange(3).repeat_interleave(4))
        assert torch.equal(b.obs[:, 0].long(), b.task)  # each task's rows come from its own buffer
    restored = TaskReplayBuffer(30, 1, 1, 1, 3)
    restored.load_state_dict(buffer.state_dict())
    again = restored.sample(12, torch.Generator().manual_seed(0), rounds=2)
    assert all(torch.equal(a.obs, b.obs) for a, b in zip(batches, again))


def test_task_replay_keeps_arrival_order_of_interleaved_tasks():
    """Rows of mixed tasks in one ``add`` go to their task's ring in arrival order, wrapping as one at a time."""
    buffer = TaskReplayBuffer(8, obs_size=1, action_size=1, n_rewards=1, n_tasks=2)
    rows = [(1, 10.0), (0, 20.0), (1, 11.0), (1, 12.0), (0, 21.0), (1, 13.0), (1, 14.0), (1, 15.0)]
    for chunk in (rows[:3], rows[3:]):
        task = np.array([t for t, _ in chunk])
        buffer.add(obs=np.array([[v] for _, v in chunk], np.float32), action=np.zeros((len(task), 1)),
                   rewards=np.zeros((len(task), 1)), next_obs=np.zeros((len(task), 1)),
                   terminated=np.zeros(len(task)), truncated=np.zeros(len(task)), task=task)
    assert buffer.sizes == [2, 4] and buffer.positions == [2, 2] and buffer.size == 6
    assert buffer.data["obs"][:2, 0].tolist() == [20.0, 21.0]
    assert buffer.data["obs"][4:, 0].tolist() == [14.0, 15.0, 12.0, 13.0]  # 10, 11 overwritten by 14, 15
    assert buffer.data["task"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_bad_config_names_field():
    with pytest.raises(ValueError, match="batch_per_task"):
        SACFamilyTrainConfig(task_set="planar8", batch_per_task=0)
    with pytest.raises(ValueError, match="task_set 'hoppers3' is neither one of"):
        SACFamilyTrainConfig(task_set="hoppers3")
    with pytest.raises(ValueError, match="sac.gamma"):
        SACFamilyTrainConfig(task_set="planar8", algo=SACFamilyConfig(sac=SACConfig(gamma=1.5)))
    with pytest.raises(ValueError, match="matmul_precision .'float16' not in float32, bfloat16"):
        SACFamilyTrainConfig(task_set="planar8", loop=dataclasses.replace(LoopConfig(), matmul_precision="float16"))


def cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    a, b = torch.cat([x.reshape(-1) for x in a]), torch.cat([x.reshape(-1) for x in b])
    return float(a @ b / (a.norm() * b.norm()))


@pytest.mark.parametrize("method_name", METHODS)
def test_bfloat16_products_keep_outputs_in_float32_and_gradients_close(method_name):
    """Under ``--loop.matmul-precision bfloat16`` the paper-size networks' outputs (Q, mean, log-std) stay float32,
    the critic and actor losses and their gradients stay within bfloat16's rounding of float32's, and an update
    (D-Grad(O): Algorithm 1 included) leaves float32 parameters that moved."""
    torch.manual_seed(0)
    n, state, action, per = 10, 39, 4, 32
    method = SACFamily(SACFamilyConfig(method=method_name), state, action, n, seed=0)
    task = torch.arange(n).repeat_interleave(per)
    obs = torch.cat([torch.randn(n * per, state), torch.nn.functional.one_hot(task, n)], dim=1)
    batch = Batch(obs=obs, action=torch.rand(n * per, action) * 2 - 1, rewards=torch.randn(n * per, 1),
                  next_obs=obs, terminated=torch.zeros(n * per, dtype=torch.bool),
                  truncated=torch.zeros(n * per, dtype=torch.bool), task=task)
    noise = torch.randn(n * per, action)
    y = torch.randn(n * per) * 10

    def losses_and_gradients(precision: str) -> dict[str, tuple[float, list[torch.Tensor]]]:
        with update_precision(precision):
            sampled, log_prob = method.actor.sample(obs, noise)
            assert method.critic(obs, batch.action).dtype == torch.float32
            assert all(t.dtype == torch.float32 for t in method.actor.distribution(obs))
            critic = method.critic_losses(batch, y).mean()
            actor = method.actor_losses(obs, sampled, log_prob, torch.tensor(0.1)).mean()
            return {"critic": (float(critic.detach()), torch.autograd.grad(critic, method._critic_params)),
                    "actor": (float(actor.detach()), torch.autograd.grad(actor, method._actor_params))}
    full, low = losses_and_gradients("float32"), losses_and_gradients("bfloat16")
    for network in ("critic", "actor"):
        assert low[network][0] == pytest.approx(full[network][0], rel=0.02, abs=0.02)
        assert cosine(low[network][1], full[network][1]) > 0.98  # measured 0.993-0.99998 (AMX)
    before = [p.detach().clone() for p in method._critic_params + method._actor_params]
    with update_precision("bfloat16"):
        metrics = method.update(batch)
    after = method._critic_params + method._actor_params
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in after)
    assert all(not torch.equal(a, b) for a, b in zip(before, after) if a.numel() > n * 160)
    assert all(np.isfinite(float(v)) for v in metrics.values())


@pytest.fixture(scope="module")
def mt10():
    """One real MT10 vector env (with the one-hot) for the whole module, drawing ``SMOKE_GOALS`` goal variations per
    task (with 50, construction took 10-27 s)."""
    task_set = make_task_set("mt10")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metaworld, "_N_GOALS", SMOKE_GOALS)
        env = TaskOneHotEnv(task_set.make_multitask_env(1, seed=0), task_set.task_indices(), task_set.n_tasks)
    yield task_set, env
    env.close()


@pytest.mark.parametrize("method_name", METHODS)
def test_mt10_smoke(mt10, method_name):
    """Each method acts on real MT10, fills task-specific replay and takes updates with finite losses."""
    task_set, env = mt10
    torch.manual_seed(0)
    config = SACFamilyConfig(method=method_name, paper_hidden=False, sac=SACConfig(hidden=(32, 32),
                                                                                   per_task_alpha=True))
    obs, info = env.reset()
    assert obs.shape == (10, 49) and np.array_equal(obs[:, 39:], np.eye(10))
    method = SACFamily(config, 39, 4, task_set.n_tasks)
    buffer = TaskReplayBuffer(1000, 49, 4, 1, task_set.n_tasks)
    for _ in range(8):
        action = method.act(obs, 0.3)
        assert action.shape == (10, 4) and np.abs(action).max() <= 1
        next_obs, reward, terminated, truncated, info = env.step(action)
        buffer.add(obs=obs, action=action, rewards=reward[:, None], next_obs=next_obs, terminated=terminated,
                   truncated=truncated, task=info["task"])
        obs = next_obs
    before = [p.detach().clone() for p in method.actor.parameters()]
    for batch in buffer.sample(40, torch.Generator().manual_seed(0), rounds=2):
        metrics = method.update(batch)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, method.actor.parameters()))
    assert metrics["alpha"] != 1.0  # the per-task temperatures took a step


def test_mt10_entry_point(tmp_path, monkeypatch):
    """The training entry point end to end on MT10 (Meta-World's evaluation, checkpoint, metrics)."""
    quick_metaworld(monkeypatch, "MT10")
    out = tmp_path / "mt10"
    config = SACFamilyTrainConfig(algo=SACFamilyConfig(method="dgrad-o"), task_set="mt10", out_dir=out, seed=3,
                                  batch_per_task=4, budget_steps=60, periodic_eval_episodes=1, final_eval_episodes=1,
                                  progress=False)
    config.loop.learning_starts = 30
    final = run(config)
    assert 0 <= final["mean_success"] <= 1 and len([k for k in final if k.startswith("success_")]) == 10
    assert json.loads((out / "eval.json").read_text()) == final
    columns = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert (out / "checkpoint.pt").exists() and "perf/steps_per_second" in columns
    assert {f"train/{k}" for k in SURGERY_METRICS} <= set(columns)
    step, diagnostics = probe(out, batches=3, seed=0)  # the run's checkpoint, probed
    assert step == 60 and set(diagnostics) == set(SURGERY_METRICS)
    assert all(np.isfinite(mean) and std >= 0 for mean, std in diagnostics.values())


@pytest.mark.parametrize("method_name,precision", [("dgrad-o", "float32"), ("picor", "float32"),
                                                    ("dgrad-o", "bfloat16")])
def test_profile_times_every_part_of_an_update(method_name, precision):
    """The MT10 profile's breakdown of one update: the method's own parts are timed (D-Grad(O)'s per-task
    gradients, PiCor's correction) and the timed parts fit inside the update, in either precision."""
    times = profile_method(method_name, precision, ProfileConfig(updates=1, env_steps=0, episodes=0))
    own = {"dgrad-o": "    critic step: per-task gradients", "picor": "  correction"}[method_name]
    assert own in times and times[own] > 0
    assert 0 <= times["  other (Polyak, bookkeeping)"] < times["update"] and times["GEMM floor of the update"] > 0


@pytest.mark.parametrize("method_name,precision", [(m, "float32") for m in METHODS] + [("dgrad-o", "bfloat16")])
def test_planar8_smoke_and_onnx(tmp_path, monkeypatch, method_name, precision):
    """Each method on planar8 (one task per end effector), its updates in the loop's matrix-product precision,
    exported to ONNX, checked and matching torch."""
    out = tmp_path / method_name
    config = SACFamilyTrainConfig(algo=SACFamilyConfig(method=method_name), task_set="planar8", out_dir=out,
                                  batch_per_task=32, budget_steps=320, periodic_eval_episodes=4,
                                  final_eval_episodes=8, progress=False)
    loop = config.loop
    loop.num_envs, loop.update_every, loop.updates_per_round = 8, 16, 2
    loop.learning_starts, loop.eval_every = 160, 320
    loop.matmul_precision = precision
    update, precisions = SACFamily.update, []

    def recorded_update(self, batch):
        precisions.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else torch.float32)
        return update(self, batch)
    monkeypatch.setattr(SACFamily, "update", recorded_update)
    final = run(config)
    assert precisions and set(precisions) == {getattr(torch, precision)}
    assert 0 <= final["success_rate"] <= 1 and np.isfinite(final["mean_score"])
    policy = OnnxPolicy(out / "policy.onnx")
    task_set = make_task_set("planar8")
    env = task_set.make_env(None, 16, seed=5)
    policy.check(env.spec)
    obs, _ = env.reset()
    mean, std = env.observation_statistics()
    method = SACFamily(config.algo, obs.shape[1], env.single_action_space.shape[0], 3, True, mean, std)
    method.load_state_dict(torch.load(out / "checkpoint.pt", weights_only=False)["method"])
    assert parity(method.policy, env.spec, out / "policy.onnx", obs) < 1e-4


def test_mt50_smoke(tmp_path, monkeypatch):
    """MT50 end to end with the same code: the suite's longest test (Meta-World as ``quick_metaworld`` runs it)."""
    quick_metaworld(monkeypatch, "MT50")
    config = SACFamilyTrainConfig(algo=SACFamilyConfig(method="dgrad-a"), task_set="mt50", out_dir=tmp_path,
                                  batch_per_task=2, budget_steps=150, periodic_eval_episodes=1, final_eval_episodes=1,
                                  progress=False)
    config.loop.learning_starts = 100
    final = run(config)
    assert len([k for k in final if k.startswith("success_")]) == 50
