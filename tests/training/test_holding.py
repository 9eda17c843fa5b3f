"""The holding structure (core/holding.py) in every actor family, its zero at the goal through ONNX export, and the
reach env's ``hold`` reward."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mtpolicy.dls import DampedLeastSquares, DlsConfig
from mtpolicy.observation import ObservationLayout
from mtpolicy.policy import OnnxPolicy
from mtpolicy.robots import load_robot
from mtpolicy_training.algos.a2c import A2C, A2CConfig, load_policy
from mtpolicy_training.algos.dagger import ErrorGainActor
from mtpolicy_training.algos.digrad import DiGrad, DiGradConfig
from mtpolicy_training.algos.picor import PiCor, PiCorConfig, PiCorFamilyConfig
from mtpolicy_training.algos.ppo import PPOConfig
from mtpolicy_training.algos.sac import SACConfig
from mtpolicy_training.algos.sac_family import SACFamily, SACFamilyConfig
from mtpolicy_training.algos.specialization import SpecializationConfig, SpecializationPPO
from mtpolicy_training.core.holding import ErrorGain
from mtpolicy_training.core.networks import GaussianPolicy, Normalizer
from mtpolicy_training.core.trainer import reach_key
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.registry import make_task_set
from mtpolicy_training.envs.taskset import append_task_one_hot
from mtpolicy_training.envs.variants import VariantReachTaskSet
from mtpolicy_training.ship.export import export_policy, export_variant_policies, parity
from mtpolicy_training.ship.model_card import main as model_card
from mtpolicy_training.train.a2c import A2CTrainConfig
from mtpolicy_training.train.cli import main
from mtpolicy_training.train.family import variant_structure
from mtpolicy_training.train.ppo import SpecializationTrainConfig
from mtpolicy_training.train.sac_family import SACFamilyTrainConfig, run

CONFIG = ReachConfig("planar8")
HIDDEN = (32, 32)


@pytest.fixture(scope="module")
def planar8():
    env = ReachVectorEnv(1, CONFIG)
    mean, std = env.observation_statistics(n=512)
    return env, mean, std


def at_goal(n: int = 64, seed: int = 0, config: ReachConfig = CONFIG) -> np.ndarray:
    """Observations (n, obs) of planar8 (or ``config``'s robot) with every end effector at its goal (all goal errors
    zero)."""
    env = ReachVectorEnv(n, config)
    q = np.random.default_rng(seed).uniform(-2, 2, (n, env.spec.n_joints))
    obs, _ = env.reset(options={"q": q, "goals": env.kin.ee_positions_batch(q)})
    assert np.all(obs[:, env.layout.slice("goal_error")] == 0) and np.all(obs[:, env.layout.slice("joint_error")] == 0)
    return obs


def away(n: int = 256, config: ReachConfig = CONFIG) -> np.ndarray:
    return ReachVectorEnv(n, config).reset(seed=3)[0]


class MeanAction(nn.Module):
    """A Gaussian policy's deterministic action: its mean clipped to [-1, 1] (as the env clips it)."""

    def __init__(self, policy: GaussianPolicy):
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy(obs)[0].clamp(-1.0, 1.0)


def deployed_actors(actor: str, env: ReachVectorEnv, mean: np.ndarray, std: np.ndarray) -> dict[str, nn.Module]:
    """The deterministic policy each family exports, built with ``actor`` (random weights)."""
    torch.manual_seed(0)
    n, k, size = env.spec.n_joints, env.spec.n_tasks, len(mean)
    family = SACFamilyConfig(method="mtsac", paper_hidden=False, sac=SACConfig(hidden=HIDDEN, per_task_alpha=True),
                             actor=actor)
    holding = ErrorGain.of(actor, env.layout, n, env.kin)
    return {
        "digrad": DiGrad(DiGradConfig(hidden=HIDDEN, actor=actor), env.spec, mean, std, env.layout).policy,
        "mtsac": SACFamily(family, size, n, k, True, mean, std, layout=env.layout, kin=env.kin).policy,
        "picor": PiCor(family, PiCorConfig(), size, n, k, True, mean, std, layout=env.layout, kin=env.kin).policy,
        "gaussian": MeanAction(GaussianPolicy(Normalizer(mean, std), size, n, HIDDEN, holding=holding)),
    }


@pytest.mark.parametrize("kind, structure", [(k, s) for s in ("error-gain", "dls-gain")
                                             for k in ("digrad", "mtsac", "picor", "gaussian")] + [("dagger", "")])
def test_every_error_gain_actor_exports_exactly_zero_at_the_goal(planar8, tmp_path, kind, structure):
    env, mean, std = planar8
    actor = ErrorGainActor(Normalizer(mean, std), env.layout, env.spec.n_joints, HIDDEN, "relu") if kind == "dagger" \
        else deployed_actors(structure, env, mean, std)[kind]
    for p in actor.parameters():  # weights far from any init: the zero is the structure's, not small weights'
        nn.init.normal_(p, std=0.5)
    path = export_policy(actor, env.spec, CONFIG, kind, {}, {}, tmp_path / f"{kind}.onnx")
    goal = at_goal()
    with torch.no_grad():
        assert np.all(actor(torch.as_tensor(goal)).numpy() == 0.0)
    assert np.all(OnnxPolicy(path)(goal) == 0.0)
    moving = OnnxPolicy(path)(away())
    assert np.abs(moving).max() > 0.1
    # dls-gain: the float32 solve rounds differently in torch and onnxruntime, and these gains are ~100
    assert parity(actor, env.spec, path, np.concatenate([goal, away()])) <= (5e-4 if structure == "dls-gain" else 1e-5)


VARIANTS = make_task_set("planar8-variants")


def variant_heads(kind: str, actor: str) -> nn.Module:
    """PPO + specialization's (split, the task copies made to differ) or A2C's multi-head policy over planar8's
    variants, built with ``actor`` and far-from-init random weights."""
    torch.manual_seed(0)
    layout, kins = variant_structure(VARIANTS)
    n, size = VARIANTS.n_tasks, layout.size
    if kind == "ppo":
        policy = SpecializationPPO(SpecializationConfig(ppo=PPOConfig(hidden=HIDDEN), jt=0, sp=50, selection="random",
                                                        actor=actor), size, n, 8, 64, layout=layout, kins=kins).policy
    else:
        policy = A2C(A2CConfig(actor=actor, actor_hidden=HIDDEN, critic_hidden=HIDDEN), size, 8, n, np.arange(n),
                     layout, kins).policy
    for p in policy.parameters():
        nn.init.normal_(p, std=0.5)
    return policy


@pytest.mark.parametrize("kind, structure", [(k, s) for s in ("error-gain", "dls-gain") for k in ("ppo", "a2c")])
def test_every_variant_head_exports_exactly_zero_at_the_goal_with_its_variants_kinematics(tmp_path, kind, structure):
    """Each head of PPO + specialization and A2C, exported as its variant's policy: exactly zero at the goal through
    onnxruntime, equal to torch and to the numpy rollout path, its DLS step that of its own variant's robot."""
    policy, n = variant_heads(kind, structure), VARIANTS.n_tasks
    paths = export_variant_policies(policy, VARIANTS.task_names, [VARIANTS.config(t) for t in range(n)], kind, {}, {},
                                    tmp_path / "policy.onnx")
    layout, kins = variant_structure(VARIANTS)
    for t, path in enumerate(paths):
        config = VARIANTS.config(t)
        goal, moving, onnx = at_goal(config=config), away(64, config), OnnxPolicy(path)
        assert np.all(onnx(goal) == 0.0) and np.abs(onnx(moving)).max() > 0.1
        x = torch.as_tensor(append_task_one_hot(np.concatenate([goal, moving]), np.full(128, t), n))
        with torch.no_grad():
            mean = policy(x)[0]
        assert torch.all(mean[:64] == 0.0)
        tolerance = 5e-4 if structure == "dls-gain" else 1e-5  # dls-gain: the numpy solve is exact, torch's CG
        np.testing.assert_allclose(policy.numpy_forward()(x.numpy())[0], mean.numpy(), rtol=1e-4, atol=tolerance)
        limits = load_robot(VARIANTS.task_names[t]).velocity_limits
        np.testing.assert_allclose(onnx(moving), mean[64:].clamp(-1, 1).numpy() * limits, atol=tolerance)
        if structure == "dls-gain":  # the same network with one variant's own DLS step: equal for t only
            for other, kin in enumerate(kins):
                policy.holding = ErrorGain.of(structure, layout, 8, kin)
                with torch.no_grad():
                    own = policy(x[64:])[0].clamp(-1, 1).numpy() * limits
                assert np.allclose(onnx(moving), own, atol=5e-4) == (other == t)
            policy.holding = ErrorGain.of(structure, layout, 8, kins)


@pytest.mark.parametrize("kind", ["digrad", "mtsac", "picor", "gaussian"])
def test_the_papers_mlp_actors_stay_available_and_are_not_zero_at_the_goal(planar8, kind):
    env, mean, std = planar8
    actor = deployed_actors("mlp", env, mean, std)[kind]
    with torch.no_grad():
        assert np.abs(actor(torch.as_tensor(at_goal())).numpy()).max() > 1e-4


@pytest.mark.parametrize("structure", ["error-gain", "dls-gain"])
def test_gaussian_policy_numpy_forward_matches_torch_with_the_error_gain(planar8, structure):
    env, mean, std = planar8
    policy = GaussianPolicy(Normalizer(mean, std), len(mean), env.spec.n_joints, HIDDEN,
                            holding=ErrorGain.of(structure, env.layout, env.spec.n_joints, env.kin), gain_init=5.0)
    obs = away(32)
    with torch.no_grad():
        expected = policy(torch.as_tensor(obs))
    got = policy.numpy_forward()(obs)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-4, atol=1e-5)


def test_gain_init_starts_near_jacobian_transpose_control(planar8):
    env, mean, std = planar8
    m = DiGrad(DiGradConfig(hidden=HIDDEN, actor="error-gain", gain_init=20.0), env.spec, mean, std, env.layout)
    obs = away(64)
    n = len(obs)
    jt = obs[:, env.layout.slice("joint_error")].reshape(n, -1, env.spec.n_joints).sum(axis=1)
    with torch.no_grad():
        a = m.actor(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(a, np.tanh(20.0 * jt), atol=0.05)


@pytest.mark.parametrize("robot", ["planar8", "humanoid"])
def test_the_dls_step_in_the_graph_is_the_dls_controllers_direction(robot):
    """DlsStep (conjugate gradients in float32) against the exact solve and against mtpolicy.dls at gain 1 with no
    joint frozen, per unit of velocity limit; and dls-gain's constant start ``tanh(k d)``."""
    env = ReachVectorEnv(64, ReachConfig(robot))
    obs = env.reset(seed=4)[0]
    holding = ErrorGain.of("dls-gain", env.layout, env.spec.n_joints, env.kin)
    exact = holding.dls.numpy_forward(obs)
    with torch.no_grad():
        in_graph = holding.dls(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(in_graph, exact, atol=1e-4 * np.abs(exact).max())
    dls = DampedLeastSquares(env.kin, env.layout, DlsConfig(gain=1.0, limit_margin=-np.inf))
    velocity = dls(obs) / env.spec.velocity_limits
    unsaturated = np.abs(velocity).max(axis=1) < 1.0
    assert unsaturated.sum() > 8
    np.testing.assert_allclose(exact[unsaturated], velocity[unsaturated], rtol=1e-4, atol=1e-6)
    start = holding.constant_gain(8.0).expand(len(obs), -1)
    with torch.no_grad():
        np.testing.assert_allclose(torch.tanh(holding(start, torch.as_tensor(obs))).numpy(), np.tanh(8.0 * exact),
                                   atol=1e-4)


def test_error_gain_is_refused_where_observations_have_no_goal_errors():
    with pytest.raises(ValueError, match="needs reach observations"):
        ErrorGain.of("error-gain", None, 6)
    with pytest.raises(ValueError, match="not one of"):
        ErrorGain.of("gain", None, 6)
    with pytest.raises(ValueError, match="kinematics"):
        ErrorGain.of("dls-gain", ObservationLayout.for_robot(6, 1), 6)
    with pytest.raises(ValueError, match="algo.actor"):
        SACFamilyTrainConfig(task_set="halfcheetah8", algo=PiCorFamilyConfig(method="mtsac", actor="error-gain"))
    assert "gain_init" in DiGradConfig(gain_init=3.0).validate()  # a gain for the MLP actor means nothing
    with pytest.raises(ValueError, match="reward"):
        SACFamilyTrainConfig(task_set="halfcheetah8", reward="hold")
    with pytest.raises(ValueError, match="algo.actor"):
        SpecializationTrainConfig(task_set="hoppers3", algo=SpecializationConfig(actor="dls-gain"), out_dir=Path())
    with pytest.raises(ValueError, match="algo.actor"):
        A2CTrainConfig(task_set="halfcheetah6", algo=A2CConfig(actor="error-gain"), out_dir=Path())
    with pytest.raises(ValueError, match="reward"):
        A2CTrainConfig(task_set="halfcheetah6", reward="hold", out_dir=Path())
    with pytest.raises(ValueError, match="reward"):
        VariantReachTaskSet.of("planar8", reward="pays")
    assert "gain_init" in SpecializationConfig(gain_init=3.0).validate() and "gain_init" in A2CConfig(
        gain_init=3.0).validate()


def hold_env(**overrides) -> ReachVectorEnv:
    return ReachVectorEnv(2, dataclasses.replace(CONFIG, reward="hold", error_scale=2.0, step_cost=1.0,
                                                 leave_penalty=5.0, **overrides))


def test_hold_reward_costs_until_all_are_within_and_penalizes_leaving():
    env = hold_env()
    tol = env.config.reach_tolerance
    goals = np.zeros((1, 3, 3))

    def at(*distances: float) -> np.ndarray:
        return np.array([[[d, 0.0, 0.0] for d in distances]])

    out = env.reward_info(at(0.5 * tol, 0.5 * tol, 3 * tol), goals, at(0.5 * tol, 0.5 * tol, 3 * tol))
    errors = np.array([0.5, 0.5, 3.0]) * tol
    np.testing.assert_allclose(out["task_rewards"][0], -2.0 * errors - 1.0, rtol=1e-6)  # one out: all pay the cost
    np.testing.assert_allclose(out["ddpg_reward"][0], -2.0 * errors.sum() - 1.0, rtol=1e-6)
    out = env.reward_info(at(0.5 * tol, 0.5 * tol, 0.9 * tol), goals, at(0.5 * tol, 0.5 * tol, 3 * tol))
    errors = np.array([0.5, 0.5, 0.9]) * tol
    np.testing.assert_allclose(out["task_rewards"][0], -2.0 * errors, rtol=1e-6)  # all within: no cost
    out = env.reward_info(at(0.5 * tol, 2 * tol, 0.9 * tol), goals, at(0.5 * tol, 0.5 * tol, 0.9 * tol))
    errors = np.array([0.5, 2.0, 0.9]) * tol
    np.testing.assert_allclose(out["task_rewards"][0], -2.0 * errors - 1.0 - np.array([0, 5.0, 0]), rtol=1e-6)
    np.testing.assert_allclose(out["ddpg_reward"][0], -2.0 * errors.sum() - 1.0 - 5.0, rtol=1e-6)


def test_hold_reward_in_episodes_and_hindsight_penalizes_the_step_that_leaves():
    env = hold_env()
    tol = env.config.reach_tolerance
    q = np.random.default_rng(1).uniform(-1, 1, (2, env.spec.n_joints))
    env.reset(options={"q": q, "goals": env.kin.ee_positions_batch(q)})
    obs, reward, _, _, info = env.step(np.zeros((2, env.spec.n_joints)))
    assert np.all(reward == 0) and np.all(info["all_done"])  # held at the goal: nothing to pay
    observations, left = [obs], np.zeros(2, dtype=int)
    for _ in range(6):  # full speed away: every end effector leaves once
        before = info["errors"] <= tol
        obs, reward, _, _, info = env.step(np.ones((2, env.spec.n_joints)))
        observations.append(obs)
        leaving = before & (info["errors"] > tol)
        left += leaving.sum(axis=1)
        expected = -2.0 * info["errors"] - (1.0 * ~info["all_done"])[:, None] - 5.0 * leaving
        np.testing.assert_allclose(info["task_rewards"], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(reward, expected.sum(axis=1), rtol=1e-5, atol=1e-5)
    assert np.all(left == env.spec.n_tasks)
    relabelled = env.relabel(np.stack(observations[:-1]), np.stack(observations[1:]), np.random.default_rng(0))
    np.testing.assert_allclose(relabelled["reward"][-1], 0.0, atol=1e-5)  # hindsight goals where it ended: no cost


TINY = ["--budget-steps", "320", "--loop.learning-starts", "160", "--loop.eval-every", "320",
        "--loop.checkpoint-every", "320", "--periodic-eval-episodes", "4", "--final-eval-episodes", "4",
        "--loop.batch-size", "32", "--no-progress"]


def assert_zero_at_goal(path) -> None:
    policy = OnnxPolicy(path)
    assert np.all(policy(at_goal()) == 0.0) and np.abs(policy(away())).max() > 0


@pytest.mark.parametrize("method", ["digrad", "ddpg"])
def test_digrad_and_ddpg_train_the_error_gain_actor_on_the_hold_reward(tmp_path, method):
    main(["digrad", "--algo.method", method, "--algo.hidden", "32", "32", "--algo.actor", "error-gain",
          "--algo.gain-init", "10", "--env.reward", "hold", "--out-dir", str(tmp_path)] + TINY)
    assert_zero_at_goal(tmp_path / "policy.onnx")
    assert '"reward": "hold"' in (tmp_path / "config.json").read_text()


def test_a_robot_folder_put_in_mtpolicy_robots_trains_by_its_name_with_no_other_file_edited(arm3_shipped, tmp_path):
    """Issue 64: adding a folder makes a robot trainable: ``train digrad --robot arm3`` ends in arm3's policy."""
    main(["digrad", "--robot", "arm3", "--algo.hidden", "32", "32", "--algo.actor", "dls-gain", "--env.reward", "hold",
          "--out-dir", str(tmp_path / "run")] + TINY)
    policy = OnnxPolicy(tmp_path / "run" / "policy.onnx")
    assert policy.contract.robot == "arm3" and policy.contract.end_effectors == ("tool",)
    config = ReachConfig("arm3")
    assert np.all(policy(at_goal(config=config)) == 0.0) and np.abs(policy(away(config=config))).max() > 0


@pytest.mark.parametrize("method", ["mtsac", "dgrad-o", "picor"])
def test_sac_family_and_picor_train_the_error_gain_actor_on_the_hold_reward(tmp_path, method):
    sac = SACConfig(hidden=HIDDEN, per_task_alpha=True)
    config = SACFamilyTrainConfig(algo=PiCorFamilyConfig(method=method, paper_hidden=False, sac=sac, actor="error-gain",
                                                         gain_init=10.0),
                                  task_set="planar8", reward="hold", out_dir=tmp_path, batch_per_task=8,
                                  budget_steps=160, periodic_eval_episodes=2, final_eval_episodes=2, progress=False)
    loop = config.loop
    loop.num_envs, loop.update_every, loop.updates_per_round, loop.learning_starts, loop.eval_every = 8, 8, 2, 80, 160
    final = run(config)
    assert 0 <= final["success_rate"] <= 1
    assert_zero_at_goal(tmp_path / "policy.onnx")
    assert OnnxPolicy(tmp_path / "policy.onnx").contract.training_config["reward"] == "hold"
    assert_zero_at_goal(tmp_path / "best_policy.onnx")  # the best validated policy ships too, as DiGrad's does
    assert json.loads((tmp_path / "best_eval.json").read_text())["success_rate"] >= 0


def test_a_reach_validation_is_better_when_it_holds_as_often_and_reaches_sooner():
    assert reach_key({"success_rate": 1.0, "time_to_reach_median": 0.50}) > reach_key(
        {"success_rate": 1.0, "time_to_reach_median": 0.55})
    assert reach_key({"success_rate": 1.0, "time_to_reach_median": 0.9}) > reach_key(
        {"success_rate": 0.99, "time_to_reach_median": 0.3})
    assert reach_key({"success_rate": 0.0, "time_to_reach_median": 0.3}) > reach_key(
        {"success_rate": 0.0, "time_to_reach_median": float("nan")}) == reach_key(
        {"success_rate": 0.0, "time_to_reach_median": None})  # a best.json read back: JSON has no NaN


@pytest.mark.parametrize("family, args", [
    ("ppo", ["--budget-steps", "192", "--algo.jt", "0", "--algo.sp", "0", "--algo.ppo.epochs", "2",
             "--loop.rollout-steps", "32", "--loop.eval-every", "192", "--loop.checkpoint-every", "192"]),
    ("a2c", ["--budget-steps", "120", "--loop.eval-every", "120", "--loop.checkpoint-every", "60"])])
def test_ppo_and_a2c_train_the_dls_gain_actor_on_a_robots_variants(tmp_path, family, args):
    main([family, "--robot", "planar8", "--algo.actor", "dls-gain", "--algo.gain-init", "8", "--reward", "hold", *args,
          "--periodic-eval-episodes", "1", "--final-eval-episodes", "1", "--no-progress", "--out-dir", str(tmp_path)])
    for t, variant in enumerate(VARIANTS.task_names):
        policy = OnnxPolicy(tmp_path / f"policy_{variant}.onnx")
        config = VARIANTS.config(t)
        assert np.all(policy(at_goal(config=config)) == 0.0) and np.abs(policy(away(64, config))).max() > 0
        assert policy.contract.training_config["algo"]["actor"] == "dls-gain"
        assert policy.contract.training_config["reward"] == "hold"
    if family == "ppo":  # a variant's policy ships with the test figures of that variant robot
        model_card(["--name", "long_ppo", "--model", str(tmp_path / "policy_planar8_long.onnx"), "--command",
                    "train it", "--episodes", "2", "--out-dir", str(tmp_path / "models"), str(tmp_path)])
        card = (tmp_path / "models" / "long_ppo.md").read_text()
        assert "on robot **planar8_long**" in card and "| held success [95% CI] |" in card
        assert (tmp_path / "models" / "long_ppo_curve.png").stat().st_size > 0
    if family == "a2c":  # a run's network comes back with its structure (fine-tuning, distillation)
        layout, kins = variant_structure(VARIANTS)
        loaded = load_policy(tmp_path, lambda actor: ErrorGain.of(actor, layout, 8, kins))
        assert loaded.kwargs["actor"] == "dls-gain" and isinstance(loaded.holding, ErrorGain)
        with pytest.raises(ValueError, match="needs reach observations"):
            load_policy(tmp_path)


def test_holding_screen_prints_every_controller_at_every_scale(capsys):
    from benchmarks.holding_screen import main as screen

    screen(["jt:20", "--episodes", "4", "--scales", "1", "0"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["controller"], r["scale"]) for r in rows] == [("jt:20", 1.0), ("jt:20", 0.0)]
    assert rows[0]["reached_rate"] > 0 and rows[1]["reached_rate"] == 0 and rows[1]["dither_sign_changes"] == 0
