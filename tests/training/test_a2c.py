"""A2C and its multi-task variants: Eq. 4 against closed forms, head routing, rollout path, smoke runs, bad config."""

import dataclasses
import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from mtpolicy_training.algos.a2c import A2C, A2CConfig, MultiHeadGaussianPolicy, load_policy
from mtpolicy_training.core.distributions import gaussian_kl
from mtpolicy_training.core.onpolicy import OnPolicyLoopConfig, Rollout
from mtpolicy_training.envs import halfcheetah
from mtpolicy_training.envs.registry import make_task_set
from mtpolicy_training.envs.taskset import TaskOneHotObservations
from mtpolicy_training.train.a2c import A2CTrainConfig as TrainA2CConfig
from mtpolicy_training.train.a2c import deterministic_policy
from mtpolicy_training.train.cli import main

OBS, ACT, HEADS = 17, 6, 3


def test_eq4_kl_is_the_closed_form_kl_of_student_to_teacher():
    g = torch.Generator().manual_seed(0)
    t_mean, s_mean = torch.randn(5, ACT, generator=g), torch.randn(5, ACT, generator=g)
    t_log_std, s_log_std = torch.randn(5, ACT, generator=g) * 0.5, torch.randn(5, ACT, generator=g) * 0.5
    normal = torch.distributions.Normal
    want = torch.distributions.kl_divergence(normal(s_mean, s_log_std.exp()), normal(t_mean, t_log_std.exp())).sum(-1)
    torch.testing.assert_close(gaussian_kl(s_mean, s_log_std, t_mean, t_log_std), want)
    # 1-D by hand: KL(N(1, 2^2) || N(0, 1)) = log(1/2) + (4 + 1) / 2 - 1/2
    got = gaussian_kl(torch.ones(1, 1), torch.full((1, 1), math.log(2.0)), torch.zeros(1, 1), torch.zeros(1, 1))
    assert got.item() == pytest.approx(math.log(0.5) + 2.0, abs=1e-6)
    assert gaussian_kl(t_mean, t_log_std, t_mean, t_log_std).abs().max() < 1e-6


def task_obs(tasks: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return torch.cat([torch.randn(len(tasks), OBS, generator=g), torch.eye(HEADS)[tasks]], dim=-1)


def test_numpy_rollout_path_equals_torch_forward():
    torch.manual_seed(0)
    policy = MultiHeadGaussianPolicy(OBS, ACT, HEADS, (64, 64), 1, (64, 64, 64), 1, "tanh", 0.0, with_critic=True)
    obs = task_obs(torch.tensor([0, 1, 2, 1, 0]), torch.Generator().manual_seed(1))
    mean, value = policy(obs)
    np_mean, np_value = policy.numpy_forward()(obs.numpy())
    np.testing.assert_allclose(np_mean, mean.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(np_value, value.detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("setting", ["multitask", "distill"])
def test_an_update_on_env_i_data_changes_only_head_i_and_the_shared_layers(setting, tmp_path):
    torch.manual_seed(0)
    teachers = ()
    if setting == "distill":  # teachers: single-task networks saved as runs save them
        teachers = tuple(tmp_path / f"teacher{i}.pt" for i in range(HEADS))
        for path in teachers:
            single = A2C(A2CConfig(setting="single", log_std_init=-0.5), OBS, ACT, 1, np.zeros(2, dtype=int))
            torch.save({"method": single.state_dict()}, path)
    method = A2C(A2CConfig(setting=setting, teachers=teachers), OBS, ACT, HEADS, np.arange(HEADS))
    before = {k: v.clone() for k, v in method.policy.state_dict().items()}
    g = torch.Generator().manual_seed(2)
    rollout = Rollout(5, 4, OBS + HEADS, ACT)
    rollout.obs.copy_(task_obs(torch.full((20,), 1), g).view(5, 4, -1))  # every row from env 1
    for name in ("actions", "advantages", "returns"):
        getattr(rollout, name).copy_(torch.randn(getattr(rollout, name).shape, generator=g))
    method.update(rollout)
    after = method.policy.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    head_weights = [k for k in before if k.startswith(("actor.heads", "critic.heads"))] + ["head_log_std"]
    for k in head_weights:
        per_head = [not torch.equal(before[k][i], after[k][i]) for i in range(HEADS)]
        assert per_head == [False, True, False], k
    trunks = {k for k in before if k.startswith(("actor.trunk", "critic.trunk"))}
    assert trunks and trunks <= changed
    assert changed <= trunks | set(head_weights)


def test_one_hot_wrapper_appends_the_task_to_observations_and_final_observations():
    env_id = halfcheetah.env_id("SmallFoot")
    env = SyncVectorEnv([lambda: gym.make(env_id, max_episode_steps=3)] * 2, autoreset_mode=AutoresetMode.SAME_STEP)
    env = TaskOneHotObservations(env, np.array([1, 0]), 2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 19) and env.single_observation_space.shape == (19,)
    np.testing.assert_array_equal(obs[:, -2:], [[0, 1], [1, 0]])
    for _ in range(3):
        obs, _, _, truncated, info = env.step(np.zeros((2, 6), dtype=np.float32))
    assert truncated.all()
    np.testing.assert_array_equal(np.stack(info["final_obs"])[:, -2:], [[0, 1], [1, 0]])
    env.close()


def test_evaluated_actions_are_the_head_means_clipped_to_the_box():
    method = A2C(A2CConfig(), OBS, ACT, HEADS, np.arange(HEADS))
    with torch.no_grad():
        method.policy.actor.heads[-1].bias[1] = 5.0  # head 1's mean far outside [-1, 1]
    obs = np.random.default_rng(0).normal(size=(4, OBS)).astype(np.float32)
    tasks = np.array([0, 1, 2, 1])
    actions = deterministic_policy(method, np.arange(HEADS))(obs, tasks)
    np.testing.assert_array_equal(actions[[1, 3]], 1.0)
    np.testing.assert_allclose(actions[[0, 2]], method.act(obs, tasks)[[0, 2]], atol=1e-6)
    assert np.abs(actions[[0, 2]]).max() < 1.0


def tiny(tmp_path, name: str, *args: str) -> list[str]:
    return ["a2c", *args, "--budget-steps", "20", "--loop.num-envs", "2", "--loop.eval-every", "10",
            "--final-eval-episodes", "2", "--periodic-eval-episodes", "1", "--out-dir", str(tmp_path / name),
            "--no-progress"]


def test_smoke_every_setting_and_fine_tuning_trains_only_the_last_layers(tmp_path, capsys):
    for task in ("SmallFoot", "SmallLeg"):
        main(tiny(tmp_path, task, "--algo.setting", "single", "--tasks", task))
    main(tiny(tmp_path, "ft", "--algo.setting", "finetune", "--algo.init-from", str(tmp_path / "SmallFoot"),
              "--tasks", "SmallLeg", "--eval-tasks", "SmallFoot", "SmallLeg"))
    main(tiny(tmp_path, "mt", "--algo.setting", "multitask", "--tasks", "SmallFoot", "SmallLeg"))
    main(tiny(tmp_path, "distill", "--algo.setting", "distill", "--tasks", "SmallFoot", "SmallLeg",
              "--algo.teachers", str(tmp_path / "SmallFoot"), str(tmp_path / "SmallLeg")))
    for name in ("SmallFoot", "ft", "mt", "distill"):
        final = json.loads((tmp_path / name / "eval.json").read_text())
        tasks = ("SmallFoot",) if name == "SmallFoot" else ("SmallFoot", "SmallLeg")
        for t in tasks:
            assert np.isfinite([final[f"return_{t}"], final[f"return_std_{t}"]]).all()
        assert final["mean_return"] == pytest.approx(np.mean([final[f"return_{t}"] for t in tasks]))
        header = (tmp_path / name / "metrics.csv").read_text().splitlines()[0]
        assert "eval/return_SmallFoot" in header and ("train/kl" in header) == (name == "distill")
    source, tuned = load_policy(tmp_path / "SmallFoot").state_dict(), load_policy(tmp_path / "ft").state_dict()
    last = {"actor.heads.0.weight", "actor.heads.0.bias", "critic.heads.4.weight", "critic.heads.4.bias",
            "head_log_std"}
    assert last <= set(source)
    for k in source:
        assert torch.equal(source[k], tuned[k]) == (k not in last), k


def test_a_seed_fixes_the_run(tmp_path):
    """Same seed: the same initial networks and the same training; another seed: other networks."""
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        main(tiny(tmp_path, name, "--algo.setting", "single", "--tasks", "SmallFoot", "--seed", seed))
    a, b, c = (load_policy(tmp_path / name).state_dict() for name in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    finals = [json.loads((tmp_path / name / "eval.json").read_text()) for name in "ab"]
    for final in finals:
        final.pop("train_wall_seconds_this_session")
    assert finals[0] == finals[1]


@pytest.mark.parametrize("args, field", [
    (["--algo.lr", "0"], "algo.lr"),
    (["--algo.setting", "finetune", "--tasks", "SmallFoot"], "algo.init_from"),
    (["--algo.shared-actor-layers", "3"], "algo.shared_actor_layers"),
    (["--loop.num-envs", "4"], "loop.num_envs"),
    (["--tasks", "HugeFoot"], "tasks"),
    (["--algo.setting", "single"], "algo.setting"),
    (["--algo.setting", "distill", "--algo.teachers", "a", "b"], "algo.teachers"),
    (["--loop.rollout-steps", "0"], "loop.rollout_steps"),
])
def test_bad_config_values_are_named(args, field, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["a2c", *args, "--out-dir", str(tmp_path)])
    message = " ".join(line.strip("│ ") for line in capsys.readouterr().err.splitlines())  # tyro's box
    assert "invalid config value(s): " in message and field in message


def test_loop_defaults_are_the_papers_a2c():
    loop = TrainA2CConfig().loop
    assert (loop.rollout_steps, loop.gae_lambda) == (5, 1.0) and isinstance(loop, OnPolicyLoopConfig)
    algo = A2CConfig()
    assert (algo.lr, algo.ent_coef, algo.actor_hidden, algo.critic_hidden) == (7e-4, 0.01, (64, 64), (64, 64, 64))


@pytest.mark.parametrize("preset", ["a2c-table2", "a2c-table1"])
def test_table_grids_run_each_cell_after_the_runs_it_starts_from(preset, tmp_path):
    """Distillation reads the scratch cell's teachers, fine-tuning its networks: the pool must run them after it."""
    from benchmarks import harness

    _, spec = harness.PRESETS[preset]
    tiny_spec = dataclasses.replace(spec, seed=[1], budget_steps=120, results_root=tmp_path, bootstrap_reps=10,
                                    overrides=["loop.num_envs=6", "loop.eval_every=120", "final_eval_episodes=1",
                                               "periodic_eval_episodes=1"])
    harness.run_grid(tiny_spec)
    tasks = list(make_task_set(spec.task_set[0]).task_names)
    for method in spec.methods:
        cell = harness.Cell(method, spec.task_set[0], 1).dir(tmp_path / spec.name)
        final = json.loads((cell / "eval.json").read_text())
        assert harness.task_names(final, "return") == tasks
        curves = harness.read_curves(cell)
        assert curves["step"][-1] >= 60 and np.isfinite(curves["eval/mean_return"]).all()
        if method.startswith("a2c-multitask"):
            envs = json.loads((cell / "config.json").read_text())["loop"]["num_envs"]
            assert envs == (6 * len(tasks) if method == "a2c-multitask-envs-per-task" else 6)

    def cell_file(method):
        return harness.Cell(method, spec.task_set[0], 1).dir(tmp_path / spec.name) / "cell.json"

    scratch_done = cell_file("a2c-scratch").stat().st_mtime
    for method in ("a2c-distill", "a2c-finetune-e1e2", "a2c-finetune-e2e1"):
        if method in spec.methods:  # it started (its end minus its duration) once the scratch cell had finished
            started = cell_file(method).stat().st_mtime - json.loads(cell_file(method).read_text())["wall_seconds"]
            assert started >= scratch_done


def test_a_grid_without_the_runs_a_method_starts_from_fails_at_start(tmp_path):
    from benchmarks import harness

    spec = harness.GridSpec(methods=["a2c-distill"], task_set=["halfcheetah6"], results_root=tmp_path)
    with pytest.raises(ValueError, match="'a2c-distill' starts from the runs of 'a2c-scratch'"):
        harness.run_grid(spec)
