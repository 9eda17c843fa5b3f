"""PPO + specialization and A2C on a robot's morphology variants: the task set, one command per method, and each
variant's exported policy served by the variant robot (issue 63)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from helpers import REPO, scaled
from mtpolicy.policy import ModelMismatch, OnnxPolicy
from mtpolicy.robots import find_robot, load_robot
from mtpolicy.robots.variants import variants_of
from mtpolicy_training.algos.a2c import MultiHeadGaussianPolicy
from mtpolicy_training.algos.ppo import PPOConfig
from mtpolicy_training.algos.specialization import SpecializationConfig, SpecializationPPO
from mtpolicy_training.core.vector_envs import env_rng_state, set_env_rng_state
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.registry import make_task_set
from mtpolicy_training.envs.taskset import TaskOneHotObservations, append_task_one_hot
from mtpolicy_training.envs.variants import VariantReachTaskSet
from mtpolicy_training.ship.export import export_variant_policies
from mtpolicy_training.envs.seeds import HELD_OUT_SEED, VALIDATION_SEED
from mtpolicy_training.train.cli import main
from mtpolicy_training.train.family import periodic_seed
from mtpolicy_tools.model_choice import robot_for_model

PLANAR8 = variants_of("planar8")
RUN = ["--loop.rollout-steps", "64", "--loop.checkpoint-every", "384", "--periodic-eval-episodes", "2",
       "--final-eval-episodes", "2", "--no-progress"]
"""A tiny on-policy run: rollouts of 6 envs x 64 steps."""


def test_the_variants_of_a_robot_are_a_task_set_of_reach_envs_side_by_side():
    tasks = make_task_set("planar8-variants")
    assert isinstance(tasks, VariantReachTaskSet) and tasks.task_names == PLANAR8 and not tasks.simultaneous
    assert make_task_set("humanoid-variants").task_names == variants_of("humanoid")
    env = tasks.make_multitask_env(2, seed=3)
    wrapped = TaskOneHotObservations(env, tasks.task_indices(2), tasks.n_tasks)
    obs, _ = wrapped.reset(seed=3)
    assert obs.shape == (6, 59 + 3) and (obs[:, -3:].argmax(1) == [0, 0, 1, 1, 2, 2]).all()
    # each block is its variant's reach env: the end effectors observed are that robot's
    for block, variant in zip(env.envs, PLANAR8):
        assert block.spec.name == variant
    state = env_rng_state(wrapped)
    for _ in range(tasks.max_episode_steps):
        obs, reward, terminated, truncated, info = wrapped.step(np.zeros((6, 8)))
    assert truncated.all() and not terminated.any() and info["_final_obs"].all()
    assert info["final_obs"].dtype == object and info["final_obs"][5].shape == (62,) and info["final_obs"][5][-1] == 1
    assert info["final_info"]["errors"].shape == (6, 3) and reward.shape == (6,)
    set_env_rng_state(wrapped, state)  # the checkpointed random state of every block comes back
    assert env_rng_state(wrapped) == state
    # periodic evaluations choose the best policy: validation goal sets, as in every reach trainer
    assert periodic_seed(tasks) == VALIDATION_SEED and periodic_seed(make_task_set("hoppers3")) == HELD_OUT_SEED


def variant_obs(variant: str, n: int = 5) -> np.ndarray:
    env = ReachVectorEnv(n, ReachConfig(robot=variant))
    return env.reset(seed=1)[0]


@pytest.mark.parametrize("method", ["ppo", "a2c"])
def test_each_variants_head_exports_with_its_one_hot_baked_in(method, tmp_path):
    """The ONNX policy of variant i is head i of the multi-task network on [obs, one_hot(i)], clipped, in rad/s."""
    torch.manual_seed(0)
    obs_size, n = variant_obs(PLANAR8[0]).shape[1], len(PLANAR8)
    if method == "ppo":  # split at the start, the task copies made to differ
        learner = SpecializationPPO(SpecializationConfig(ppo=PPOConfig(hidden=(16, 16)), jt=0, sp=50,
                                                         selection="random"), obs_size, n, 8, 64)
        policy = learner.policy
        with torch.no_grad():
            for copy in policy.copies:
                copy.add_(torch.randn_like(copy))
    else:
        policy = MultiHeadGaussianPolicy(obs_size, 8, n, (16, 16), 1, (16,), 1, "tanh", 0.0, with_critic=True)
    tasks = make_task_set("planar8-variants")
    paths = export_variant_policies(policy, tasks.task_names, [tasks.config(t) for t in range(n)], method, {},
                                    {"success_rate": 0.5, "success_rate_planar8_short": 0.25}, tmp_path / "policy.onnx")
    assert [p.name for p in paths] == [f"policy_{v}.onnx" for v in PLANAR8]
    outputs = []
    for t, (variant, path) in enumerate(zip(PLANAR8, paths)):
        obs = variant_obs(variant)
        with torch.no_grad():
            mean = policy(torch.as_tensor(append_task_one_hot(obs, np.full(len(obs), t), n)))[0].clamp(-1, 1)
        expected = mean.numpy() * load_robot(variant).velocity_limits
        onnx = OnnxPolicy(path)
        np.testing.assert_allclose(onnx(obs), expected, atol=1e-5)
        outputs.append(onnx(variant_obs(PLANAR8[0])))
        assert onnx.contract.metrics["success_rate"] == (0.25 if variant == "planar8_short" else 0.5)
    assert not np.allclose(outputs[0], outputs[1])  # the heads differ: each file runs its own


def check_served(path, variant: str) -> None:
    """``path`` is a policy of robot ``variant``: its contract names the variant and its MJCF (found from the
    robot name, hash and all), the variant's spec accepts it, another robot's refuses it, and it runs a step."""
    policy = OnnxPolicy(path)
    contract = policy.contract
    assert contract.robot == variant
    mjcf = find_robot(contract.robot).mjcf_path
    assert mjcf == REPO / contract.robot_mjcf
    assert hashlib.sha256(mjcf.read_bytes()).hexdigest() == contract.robot_mjcf_sha256
    spec = robot_for_model(variant, policy)  # what mtpolicy demo --robot <variant> --model <path> checks
    with pytest.raises(ModelMismatch):
        robot_for_model(variant.split("_")[0], policy)
    env = ReachVectorEnv(1, ReachConfig(robot=variant))
    obs, _ = env.reset(seed=0)
    action = policy(obs)
    assert action.shape == (1, spec.n_joints) and np.isfinite(action).all()
    assert (np.abs(action) <= spec.velocity_limits + 1e-6).all()
    env.step(action / spec.velocity_limits)


def test_train_ppo_on_a_robot_ends_in_each_variants_policy(tmp_path):
    out = tmp_path / "ppo"
    main(["ppo", "--robot", "planar8", "--budget-steps", "768", "--algo.jt", "384", "--algo.sp", "25",
          "--algo.variance-iterations", "1", "--loop.eval-every", "384", "--out-dir", str(out), *RUN])
    final = json.loads((out / "eval.json").read_text())
    assert {f"success_rate_{v}" for v in PLANAR8} <= set(final)
    for variant in PLANAR8:
        check_served(out / f"policy_{variant}.onnx", variant)
        assert (out / f"best_policy_{variant}.onnx").is_file()
    assert OnnxPolicy(out / f"policy_{PLANAR8[0]}.onnx").contract.method == "ppo-specialization"


def test_train_a2c_on_a_robot_single_finetune_distill_and_multitask_end_in_variant_policies(tmp_path):
    a2c = ["a2c", "--robot", "planar8", "--budget-steps", "120", "--loop.eval-every", "60",
           "--loop.checkpoint-every", "60", "--periodic-eval-episodes", "2", "--final-eval-episodes", "2",
           "--no-progress"]
    single = tmp_path / "single"
    main([*a2c, "--algo.setting", "single", "--tasks", "planar8_long", "--loop.num-envs", "1", "--out-dir",
          str(single)])
    check_served(single / "policy_planar8_long.onnx", "planar8_long")
    finetuned = tmp_path / "finetune"  # from one variant to another
    main([*a2c, "--algo.setting", "finetune", "--algo.init-from", str(single), "--tasks", "planar8_short",
          "--eval-tasks", "planar8_long", "planar8_short", "--loop.num-envs", "1", "--out-dir", str(finetuned)])
    check_served(finetuned / "policy_planar8_short.onnx", "planar8_short")
    assert not (finetuned / "policy_planar8_long.onnx").exists()  # evaluated on it, not trained for it
    assert {"success_rate_planar8_long", "success_rate_planar8_short"} <= set(
        json.loads((finetuned / "eval.json").read_text()))
    distilled = tmp_path / "distill"
    main([*a2c, "--algo.setting", "distill", "--tasks", "planar8_long", "planar8_short", "--algo.teachers",
          str(single), str(finetuned), "--loop.num-envs", "2", "--out-dir", str(distilled)])
    multitask = tmp_path / "multitask"
    main([*a2c, "--algo.setting", "multitask", "--loop.num-envs", "3", "--out-dir", str(multitask)])
    for run, variants in ((distilled, ("planar8_long", "planar8_short")), (multitask, PLANAR8)):
        for variant in variants:
            check_served(run / f"policy_{variant}.onnx", variant)
        assert OnnxPolicy(run / f"policy_{variants[0]}.onnx").contract.method == f"a2c-{run.name}"


@pytest.mark.parametrize("argv, message", [
    (["ppo", "--robot", "panda"], ("robot 'panda' has no morphology variants; robots with some: ['humanoid', "
                                   "'planar8']")),
    (["ppo", "--robot", "planar8", "--task-set", "walker-fwd-bwd"], "robot and task_set (give one"),
    (["a2c", "--task-set", "planar8"], "planar8 is not a set of Gym tasks; a robot's variants: --robot planar8"),
])
def test_a_task_source_that_cannot_be_is_one_line(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--out-dir", str(tmp_path / "run")])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_a_killed_ppo_run_on_variants_resumes(tmp_path, capsys):
    """SIGKILL after the first checkpoint; the same command again resumes from it and ends in the policies."""
    out = tmp_path / "run"
    argv = ["ppo", "--robot", "planar8", "--budget-steps", str(20 * 384), "--algo.jt", "768", "--loop.eval-every",
            str(40 * 384), "--out-dir", str(out), *RUN]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "training")]), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "mtpolicy_training.train", *argv], env=env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + scaled(120)
    while not (out / "checkpoint.pt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL  # killed mid-run, not finished
    assert not (out / "eval.json").exists()
    step = torch.load(out / "checkpoint.pt", weights_only=False)["step"]
    assert 0 < step < 20 * 384
    main(argv)
    assert f"from step {step}" in capsys.readouterr().out
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 20 * 384
    for variant in PLANAR8:
        check_served(out / f"policy_{variant}.onnx", variant)
