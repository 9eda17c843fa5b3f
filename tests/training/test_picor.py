"""PiCor: Eq. 9 weights, MTSAC equivalence without Ada/Cor, the correction's switch, exact resume, smoke runs
(the shipped planar8 policy in the controller: tests/ros/test_picor_controller.py)."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
from mtpolicy_training.algos.picor import PiCor, PiCorConfig, PiCorFamilyConfig
from mtpolicy_training.algos.sac import SAC, SACConfig
from mtpolicy_training.algos.sac_family import SACFamily, SACFamilyConfig
from benchmarks.harness import METHODS, task_set_metrics
from benchmarks.optimizer_steps import NETWORKS, RULES, adam_figures, continue_run
from benchmarks.picor_constraint import OF_BINDING_UPDATES, probe as constraint_probe
from benchmarks.run_checkpoint import load_run, replay_updates
from mtpolicy_training.core.replay import Batch, TaskReplayBuffer
from mtpolicy_training.core.run_record import RunConfig
from mtpolicy_training.envs.registry import make_task_set
from mtpolicy_training.envs.taskset import TaskOneHotObservations as TaskOneHotEnv
from mtpolicy_training.ship.export import parity
from mtpolicy_training.train.sac_family import SETTINGS as SAC_FAMILY_SETTINGS
from mtpolicy_training.train.sac_family import SACFamilyTrainConfig, run

from mtpolicy.policy import OnnxPolicy

MTSAC = SACFamilyConfig(method="mtsac", paper_hidden=False, sac=SACConfig(hidden=(32, 32), per_task_alpha=True))
PER_TASK = 16


@pytest.fixture(scope="module")
def halfcheetah8():
    """Task-major batches of real halfcheetah8 transitions (8 tasks, random actions, task-specific replay)."""
    torch.set_num_threads(1)
    task_set = make_task_set("halfcheetah8")
    env = TaskOneHotEnv(task_set.make_multitask_env(1, seed=0), task_set.task_indices(), task_set.n_tasks)
    buffer = TaskReplayBuffer(8 * 64, 17 + 8, 6, 1, task_set.n_tasks)
    obs, _ = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(64):
        action = rng.uniform(-1, 1, (8, 6)).astype(np.float32)
        next_obs, reward, terminated, truncated, info = env.step(action)
        buffer.add(obs=obs, action=action, rewards=reward[:, None], next_obs=next_obs, terminated=terminated,
                   truncated=truncated, task=info["task"])
        obs = next_obs
    env.close()
    return buffer.sample(8 * PER_TASK, torch.Generator().manual_seed(0), rounds=8)


def make_picor(seed: int = 0, **picor) -> PiCor:
    torch.manual_seed(seed)
    return PiCor(MTSAC, PiCorConfig(**picor), 17, 6, 8, seed=seed)


def params(method) -> list[torch.Tensor]:
    return [*method.actor.parameters(), *method.critic.parameters(), *method.critic_target.parameters(),
            method.log_alpha]


def test_weights_are_softmax_of_alpha_over_tau():
    method = make_picor(tau=0.5)
    alpha = np.array([0.5, 0.1, 0.2, 0.05, 1.0, 0.3, 0.01, 0.4])
    with torch.no_grad():
        method.log_alpha.copy_(torch.as_tensor(np.log(alpha)))
    expected = np.exp(alpha / 0.5) / np.exp(alpha / 0.5).sum()
    np.testing.assert_allclose(method.task_weights().numpy(), expected, rtol=1e-5)
    assert method.task_weights().argmax() == 4  # the least confident task (largest alpha) weighs most
    method.picor = dataclasses.replace(method.picor, adaptive=False)
    np.testing.assert_array_equal(method.task_weights().numpy(), np.full(8, 1 / 8, dtype=np.float32))


def test_without_ada_and_cor_it_is_mtsac_on_the_drawn_task(halfcheetah8):
    """Bit for bit, with the drawn task's temperature alone stepping: each PiCor update equals SACFamily mtsac's
    update on the drawn task's rows; tasks every k."""
    picor = make_picor(adaptive=False, correction=False, k=3, every_task_temperature=False)
    torch.manual_seed(0)
    mtsac = SACFamily(MTSAC, 17, 6, 8)
    assert all(torch.equal(a, b) for a, b in zip(params(picor), params(mtsac)))
    tasks = []
    for i, batch in enumerate(halfcheetah8):
        torch.manual_seed(100 + i)
        got = picor.update(batch)
        tasks.append(picor.task)
        torch.manual_seed(100 + i)
        expected = mtsac.update(picor.task_rows(batch, picor.task))
        assert torch.equal(picor.task_rows(batch, picor.task).task, torch.full((PER_TASK,), picor.task))
        assert all(torch.equal(got[k], v) for k, v in expected.items())
        assert all(torch.equal(a, b) for a, b in zip(params(picor), params(mtsac)))
    assert tasks[0:3] == [tasks[0]] * 3 and tasks[3:6] == [tasks[3]] * 3 and len(set(tasks)) > 1
    # Ada alone changes nothing without Cor (the weights are used by the correction only)
    ada = make_picor(adaptive=True, correction=False, k=3, every_task_temperature=False)
    for i, batch in enumerate(halfcheetah8):
        torch.manual_seed(100 + i)
        ada.update(batch)
    assert all(torch.equal(a, b) for a, b in zip(params(ada), params(mtsac)))


def test_every_task_temperature_steps_every_alpha_and_leaves_the_optimization_phase_alone(halfcheetah8):
    """One update from the same start: actor and critics equal either way; every task's alpha moved on its own
    states with the switch on, only the drawn task's without."""
    every, drawn = make_picor(correction=False), make_picor(correction=False, every_task_temperature=False)
    for method in (every, drawn):
        torch.manual_seed(1)
        method.update(halfcheetah8[0])
    assert every.task == drawn.task
    assert all(torch.equal(a, b) for a, b in zip(params(every)[:-1], params(drawn)[:-1]))
    assert torch.all(every.log_alpha < 0.0)  # Eq. 18: the initial policy's entropy is above -|A|, alpha falls
    assert torch.nonzero(drawn.log_alpha).flatten().tolist() == [drawn.task]


def forced(method: PiCor, c: float) -> PiCor:
    """``method`` with correction on and c set past validation: a positive c is violated at every update."""
    method.picor = dataclasses.replace(method.picor, c=c, correction=True)
    return method


def updated_pair(batch, c: float, **picor):
    """A PiCor update with correction (c forced) and the same update without correction."""
    with_cor, without = forced(make_picor(**picor), c), make_picor(**picor, correction=False)
    torch.manual_seed(1)
    metrics = with_cor.update(batch)
    torch.manual_seed(1)
    without.update(batch)
    return with_cor, without, metrics


def test_correction_is_inactive_when_the_constraint_holds(halfcheetah8):
    with_cor, without, metrics = updated_pair(halfcheetah8[0], c=-1e6)
    assert metrics["correction_active"] == 0 and metrics["constraint_gap"] == 0
    assert metrics["correction_kl"] == 0 and metrics["correction_action_change"] == 0
    assert metrics["log_std_change_correction"] == 0 and metrics["log_std_change_optimization"] != 0
    assert all(torch.equal(a, b) for a, b in zip(params(with_cor), params(without)))  # no step, no Adam drift
    assert not with_cor.correction_opt.state  # the correction's optimizer never stepped


def test_violated_constraint_is_corrected(halfcheetah8):
    """c > 0 (not a valid setting) forces a violation: c~ = c (1 - gamma) - sum_z w_z E[A] > 0, steps reduce it."""
    with_cor, without, metrics = updated_pair(halfcheetah8[0], c=100.0, correction_steps=10, lam=1e3)
    assert metrics["correction_active"] == 1
    assert torch.isclose(metrics["constraint_gap"], 100.0 * (1 - 0.99) - metrics["weighted_advantage"])
    assert metrics["constraint_gap_after"] < metrics["constraint_gap"] and metrics["correction_kl"] > 0
    after = with_cor.actor.distribution(halfcheetah8[0].obs)[1].sum(-1).mean()  # every row: the correction's states
    before = without.actor.distribution(halfcheetah8[0].obs)[1].sum(-1).mean()
    assert torch.isclose(metrics["log_std_change_correction"], after - before, atol=1e-5)
    moved = (with_cor.actor.distribution(halfcheetah8[0].obs)[0].tanh()
             - without.actor.distribution(halfcheetah8[0].obs)[0].tanh()).abs().amax(dim=-1).mean()
    assert 0 < metrics["correction_action_change"] and torch.isclose(metrics["correction_action_change"], moved,
                                                                      atol=1e-5)
    actor = [torch.equal(a, b) for a, b in zip(with_cor.actor.parameters(), without.actor.parameters())]
    critic = [torch.equal(a, b) for a, b in zip(with_cor.critic.parameters(), without.critic.parameters())]
    assert not all(actor) and all(critic)  # the correction moves the actor only


def test_soft_advantage_subtracts_alpha_log_pi_on_both_sides(halfcheetah8):
    """A = (Q(s, a) - alpha_z log pi_phi(a|s)) - (Q(s, a') - alpha_z log pi_t(a'|s)): Q's advantage as every
    alpha goes to 0, and at alpha = 1 Q's minus E[log pi'_t(a|s) - log pi_t(a'|s)] > 0 for the widened policy."""
    def update(log_alpha: float, soft: bool) -> dict[str, torch.Tensor]:
        method = forced(make_picor(soft_advantage=soft), c=100.0)
        with torch.no_grad():
            method.log_alpha.fill_(log_alpha)
        torch.manual_seed(1)
        return method.update(halfcheetah8[0])

    assert torch.isclose(update(-30.0, True)["weighted_advantage"], update(-30.0, False)["weighted_advantage"],
                         atol=1e-6)
    soft, plain = update(0.0, True), update(0.0, False)
    assert soft["log_std_change_optimization"] > 0  # at alpha = 1 SAC's step widens the policy ...
    assert soft["weighted_advantage"] > plain["weighted_advantage"] + 0.01  # ... which the soft advantage counts


def test_correction_takes_its_states_from_every_task_block(halfcheetah8):
    """correction_states_per_task rows of each task's block: the correction on them is the correction of a PiCor
    that takes every row of a batch holding only those rows besides the drawn task's."""
    batch = halfcheetah8[0]
    few = forced(make_picor(correction_states_per_task=4), c=100.0)
    rows = few.correction_rows(batch)
    assert torch.equal(rows.task, torch.arange(8).repeat_interleave(4))
    assert torch.equal(rows.obs, batch.obs.view(8, PER_TASK, -1)[:, :4].reshape(32, -1))
    torch.manual_seed(1)
    metrics = few.update(batch)
    every = forced(make_picor(correction_states_per_task=0), c=100.0)
    every.correction_rows = lambda full: rows  # the same states
    torch.manual_seed(1)
    expected = every.update(batch)
    assert every.task == few.task and all(torch.equal(v, expected[k]) for k, v in metrics.items())
    assert make_picor(correction_states_per_task=0).correction_rows(batch) is batch


def test_picor_steps_on_as_many_rows_of_the_drawn_task_as_mtsac_on_all_tasks(tmp_path, monkeypatch):
    """On a task family PiCor's batch holds batch_per_task x n_tasks rows of every task: one step per vector step,
    as MTSAC, on a block of the drawn task as large as MTSAC's whole batch."""
    config = train_config("picor", "halfcheetah8", tmp_path)
    mtsac = SACFamilyTrainConfig(algo=PiCorFamilyConfig(method="mtsac"), task_set="halfcheetah8", batch_per_task=8)
    assert (config.loop.batch_size, config.loop.updates_per_round) == (8 * 8 * 8, 1)
    assert (mtsac.loop.batch_size, mtsac.loop.updates_per_round) == (8 * 8, 1)
    optimized = []
    sac_update = SAC.update
    monkeypatch.setattr(SAC, "update", lambda self, batch: optimized.append(batch.task) or sac_update(self, batch))
    run(config)
    assert len(optimized) == (160 - 80) // 8 + 1  # vector steps from learning_starts (80) to 160
    assert all(len(task) == 64 and (task == task[0]).all() for task in optimized)


def test_advantage_split_adds_up_to_the_weighted_advantage(halfcheetah8):
    """With uniform weights, sum_z w_z E_z[A] = (E[A] on the drawn task + 7 x the other tasks' mean) / 8."""
    metrics = forced(make_picor(adaptive=False), c=100.0).update(halfcheetah8[0])
    parts = (metrics["advantage_sampled_task"] + 7 * metrics["advantage_other_tasks"]) / 8
    assert torch.isclose(metrics["weighted_advantage"], parts, atol=1e-6) and metrics["advantage_other_tasks"] != 0


def test_resume_from_state_dict_is_exact(halfcheetah8):
    """Mid task interval (k=3), the reloaded method continues exactly: task draws, Adam states, counters."""
    method = forced(make_picor(k=3), c=100.0)  # the correction steps every update
    for batch in halfcheetah8[:4]:
        method.update(batch)
    saved = copy.deepcopy(method.state_dict())
    resumed = forced(make_picor(seed=5, k=3), c=100.0)
    resumed.load_state_dict(saved)
    for i, batch in enumerate(halfcheetah8[4:]):
        out = []
        for m in (method, resumed):
            torch.manual_seed(i)
            out.append(m.update(batch))
        assert method.task == resumed.task and all(torch.equal(out[0][k], out[1][k]) for k in out[0])
        assert out[0]["correction_active"] == 1
    assert all(torch.equal(a, b) for a, b in zip(params(method), params(resumed)))


def test_checkpoint_from_before_the_picor_options_resumes_only_with_their_old_behaviour():
    """correction_states_per_task and every_task_temperature came with defaults that changed PiCor's update."""
    def run_config(method: str, picor: PiCorConfig = PiCorConfig()) -> RunConfig:
        return RunConfig.of(SACFamilyTrainConfig(algo=PiCorFamilyConfig(method=method, picor=picor)))

    def before_the_options(config: RunConfig) -> dict:
        """``config``'s record as a checkpoint made before the two options existed holds it."""
        record = json.loads(json.dumps(config.record))
        for name in ("correction_states_per_task", "every_task_temperature"):
            del record["algo"]["picor"][name]
        return record

    old = before_the_options(run_config("picor"))
    assert run_config("picor").differences(old) == ["algo.picor.correction_states_per_task",
                                                    "algo.picor.every_task_temperature"]
    before = PiCorConfig(correction_states_per_task=0, every_task_temperature=False)
    assert run_config("picor", before).differences(old) == []
    mtsac = run_config("mtsac")
    assert mtsac.differences(before_the_options(mtsac)) == []  # the other methods ignore PiCor's settings


def test_bad_picor_config_names_field():
    with pytest.raises(ValueError, match="picor.k"):
        SACFamilyTrainConfig(task_set="planar8", algo=PiCorFamilyConfig(method="picor", picor=PiCorConfig(k=0)))
    with pytest.raises(ValueError, match="per_task_alpha"):
        SACFamilyTrainConfig(task_set="planar8", algo=PiCorFamilyConfig(method="picor", sac=SACConfig()))
    with pytest.raises(ValueError, match="mtsac"):
        PiCor(dataclasses.replace(MTSAC, method="dgrad-o"), PiCorConfig(), 17, 6, 8)
    assert PiCorFamilyConfig(method="picor").family().hidden == (512, 512)  # the paper's 2 x 512


SETTINGS = ("picor", "picor-no-ada", "picor-no-cor", "picor-no-ada-no-cor")


def train_config(setting: str, task_set: str, out) -> SACFamilyTrainConfig:
    """The harness's options for ``setting`` (so the registered methods are what runs), at a tiny budget."""
    args = SAC_FAMILY_SETTINGS[setting]
    picor = PiCorConfig(adaptive="--algo.picor.no-adaptive" not in args,
                        correction="--algo.picor.no-correction" not in args)
    algo = PiCorFamilyConfig(method="picor", paper_hidden=False, picor=picor,
                             sac=SACConfig(hidden=(32, 32), per_task_alpha=True))
    config = SACFamilyTrainConfig(algo=algo, task_set=task_set, out_dir=out, batch_per_task=8, budget_steps=160,
                                  periodic_eval_episodes=2, final_eval_episodes=2, progress=False)
    loop = config.loop
    if task_set == "planar8":
        loop.num_envs, loop.update_every, loop.updates_per_round = 8, 8, 2
    loop.learning_starts, loop.eval_every = 80, 160
    return config


@pytest.mark.parametrize("setting", SETTINGS)
def test_halfcheetah8_smoke(tmp_path, setting):
    """PiCor and its ablations through the entry point on the real HalfCheetah group (8 morphologies)."""
    assert "halfcheetah8" in METHODS[setting].task_sets and task_set_metrics("halfcheetah8").per_task_metric == "return"
    final = run(train_config(setting, "halfcheetah8", tmp_path))
    names = make_task_set("halfcheetah8").task_names
    assert np.isfinite(final["mean_return"]) and all(f"return_{t}" in final for t in names)
    assert json.loads((tmp_path / "eval.json").read_text()) == final
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert "train/task" in header and ("train/constraint_gap" in header) == ("no-cor" not in setting)
    if setting == "picor":  # the run's checkpoint and replay, probed for how often the correction acts
        step, probed = constraint_probe(tmp_path, PiCorConfig(), batches=4, seed=0)
        assert step == 160 and 0 <= probed["binds"] <= 1 and all(np.isfinite(v) for k, v in probed.items()
                                                                 if k not in OF_BINDING_UPDATES)
        never = constraint_probe(tmp_path, PiCorConfig(c=-1e6), batches=4, seed=0)[1]
        assert never["binds"] == 0 and all(np.isnan(never[k]) for k in ("kl", "kl_max", "action_change"))
        one = [constraint_probe(tmp_path, PiCorConfig(), batches=1, seed=0, sequential=s)[1] for s in (False, True)]
        np.testing.assert_equal(*one)  # one update: from the checkpoint either way
        chained = constraint_probe(tmp_path, PiCorConfig(), batches=4, seed=0, sequential=True)[1]
        assert chained["weighted_advantage"] != probed["weighted_advantage"]  # later updates from later states
        run_checkpoint = load_run(tmp_path)
        method = PiCor(run_checkpoint.family, PiCorConfig(), 17, 6, 8)
        first, again = (list(replay_updates(method, [run_checkpoint.state], run_checkpoint, seed=0)) for _ in range(2))
        assert first == again  # an update from a loaded state leaves the state as it was
        # The checkpoint continued under MTSAC's update and under the optimization phase alone:
        steps = {rule: continue_run(run_checkpoint, rule, updates=3, window=1, seed=0) for rule in RULES}
        assert all(r[f"{n}_moved"] > 0 and 0 < r[f"{n}_step"] and r[f"{n}_gradient_rms"] > 0
                   for r in steps.values() for n in NETWORKS)
        assert steps["mtsac"] != steps["picor-no-cor"]


def test_adam_figures_are_the_step_in_learning_rates_and_the_gradient_rms():
    """After steps on gradients g then -g: m = 0.1 (0.9 g - g) = -0.01 g, v = 0.001 (0.999 + 1) g^2."""
    weight = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.Adam([weight], fused=True)
    for sign in (1.0, -1.0):
        weight.grad = sign * torch.tensor([1.0, 2.0, 4.0])
        optimizer.step()
    step, rms = adam_figures(optimizer, [weight])
    assert step == pytest.approx(0.01 / np.sqrt(0.001 * 1.999), rel=1e-4)
    assert rms == pytest.approx(np.sqrt(0.001 * 1.999 * 7), rel=1e-4)


@pytest.mark.parametrize("setting", ["picor", "picor-no-ada-no-cor"])
def test_planar8_smoke_and_onnx(tmp_path, setting):
    """PiCor on planar8 (one task per end effector, task-blind actor), exported to ONNX, loaded and matching torch."""
    config = train_config(setting, "planar8", tmp_path)
    final = run(config)
    assert 0 <= final["success_rate"] <= 1 and np.isfinite(final["mean_score"])
    task_set = make_task_set("planar8")
    env = task_set.make_env(None, 8, seed=5)
    policy = OnnxPolicy(tmp_path / "policy.onnx")
    policy.check(env.spec)
    obs, _ = env.reset()
    assert policy(obs[0]).shape == (8,)
    mean, std = env.observation_statistics()
    method = PiCor(config.algo.family(), config.algo.picor, obs.shape[1], 8, 3, True, mean, std)
    method.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=False)["method"])
    assert parity(method.policy, env.spec, tmp_path / "policy.onnx", obs) < 1e-4
    action = np.random.default_rng(0).uniform(-1, 1, (8, 8)).astype(np.float32)
    next_obs, _, terminated, truncated, info = env.step(action)  # a correction on real planar8 transitions
    batch = Batch(obs=torch.as_tensor(obs), action=torch.as_tensor(action), next_obs=torch.as_tensor(next_obs),
                  rewards=torch.as_tensor(info["task_rewards"], dtype=torch.float32),
                  terminated=torch.as_tensor(terminated), truncated=torch.as_tensor(truncated),
                  task=torch.zeros(8, dtype=torch.long))
    metrics = forced(method, c=100.0).update(batch)
    assert metrics["correction_active"] == 1 and metrics["constraint_gap_after"] < metrics["constraint_gap"]
