"""The humanoid: model, chains, the two-hand reach env, the DLS baseline on it (bring-up over DDS:
tests/ros/test_humanoid_bringup.py)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mtpolicy_training.envs  # noqa: F401  (registers the env ids)
from mtpolicy.kinematics import Kinematics
from mtpolicy.observation import ObservationLayout
from mtpolicy_training.envs.reach import ReachConfig
from mtpolicy_training.envs.reach_evaluation import dls_controller, evaluate_reach
from mtpolicy_training.train.digrad import DiGradTrainConfig as TrainConfig

TORSO = ("waist_yaw", "waist_pitch", "waist_roll", "chest_pitch", "chest_roll")
ARM = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow")
TOLERANCE = 0.03


def test_model_is_a_27_dof_humanoid_1_6_m_tall_with_a_reach_ready_home(humanoid):
    model = humanoid.load_model()
    assert model.nu == model.njnt == 27 and set(model.jnt_type) == {mujoco.mjtJoint.mjJNT_HINGE}
    assert model.nkey and model.key(0).name == "home"
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    top = max(data.geom_xpos[g, 2] + model.geom_rbound[g] for g in range(model.ngeom) if model.geom_bodyid[g] > 0)
    assert 1.55 <= top <= 1.65, top
    # home: both hands in front of the body, arms bent (not the straight-arm singularity), full-rank Jacobian
    kin = Kinematics(humanoid)
    hands = kin.ee_positions(kin.home)
    assert np.all(hands[:, 0] > 0.25) and hands[0, 1] > 0 > hands[1, 1]
    assert np.linalg.svd(kin.jacobians(kin.home).reshape(6, -1), compute_uv=False).min() > 0.05
    assert np.all(kin.home > humanoid.joint_limits[:, 0]) and np.all(kin.home < humanoid.joint_limits[:, 1])


def test_chains_give_a_5_dof_shared_torso_and_4_dof_arms(humanoid):
    assert humanoid.base_body == "pelvis" and humanoid.end_effectors == ("left_hand", "right_hand")
    assert humanoid.n_joints == 13 and humanoid.chain_mask.sum(axis=1).tolist() == [9, 9]  # a1 = a2 = 9
    assert tuple(np.array(humanoid.joint_names)[humanoid.shared_mask]) == TORSO
    for i, side in enumerate(("left", "right")):
        dedicated = humanoid.chain_mask[i] & ~humanoid.shared_mask
        assert tuple(np.array(humanoid.joint_names)[dedicated]) == tuple(f"{side}_{j}" for j in ARM)
    assert len(humanoid.held_joints) == 14 and {"neck_yaw", "neck_pitch", "left_knee"} <= set(humanoid.held_joints)
    assert np.all(humanoid.velocity_limits >= 1.0) and np.all(humanoid.velocity_limits <= 4.0)


def test_upper_body_follows_velocity_commands_while_legs_and_head_hold(humanoid):
    model = humanoid.load_model()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    upper, held = humanoid.actuator_ids(model), humanoid.actuator_ids(model, humanoid.held_joints)
    held_qpos = model.jnt_qposadr[model.actuator_trnid[held, 0]]
    upper_dof = model.jnt_dofadr[model.actuator_trnid[upper, 0]]
    rng = np.random.default_rng(0)
    for k in range(20):  # 2 s of random upper-body commands up to full speed, each held 0.1 s, then reversed
        if k % 2 == 0:
            velocity = rng.uniform(-1, 1, humanoid.n_joints) * humanoid.velocity_limits
        data.ctrl[upper] = velocity * (-1) ** k  # back and forth around home: no joint reaches a limit
        mujoco.mj_step(model, data, nstep=50)
        tracking = np.abs(data.qvel[upper_dof] - data.ctrl[upper]) / humanoid.velocity_limits
        assert tracking.max() < 0.08, tracking  # measured: <= 0.04 of the velocity limit after 0.1 s
    assert np.abs(data.qpos[held_qpos]).max() < 2e-3  # held at the home keyframe (all zero there)


def test_env_is_registered_checked_deterministic_and_uses_3_cm():
    env = gym.make("mtpolicy/HumanoidTwoHandReach-v0")
    assert env.unwrapped.config.reach_tolerance == TOLERANCE and env.spec.max_episode_steps == 60
    with pytest.warns(UserWarning):  # unbounded Box warnings only
        check_env(env.unwrapped, skip_render_check=True)
    assert env.action_space.shape == (13,)

    actions = np.random.default_rng(0).uniform(-1, 1, (20, 13))
    rollouts = {seed: [env.reset(seed=seed)[0]] + [env.step(a)[0] for a in actions] for seed in (4, 5)}
    np.testing.assert_array_equal(rollouts[4], [env.reset(seed=4)[0]] + [env.step(a)[0] for a in actions])
    assert not np.array_equal(rollouts[4], rollouts[5])


def test_train_cli_picks_the_humanoid_defaults():
    import tyro

    config = tyro.cli(TrainConfig, args=["--robot", "humanoid", "--algo.method", "ddpg"])
    assert config.env.reach_tolerance == TOLERANCE and config.env.reward_mode == "ddpg"
    assert config.env.goal_joint_range == 1.0
    custom = tyro.cli(TrainConfig, args=["--robot", "humanoid", "--reach-tolerance", "0.05"])
    assert custom.env.reach_tolerance == 0.05
    assert tyro.cli(TrainConfig, args=[]).env.reach_tolerance == ReachConfig().reach_tolerance == 0.02  # planar8


def test_evaluator_success_follows_the_env_reach_tolerance():
    config = ReachConfig(robot="humanoid")
    dls = dls_controller(config)
    error = ObservationLayout.for_robot(13, 2).slice("goal_error")

    def stop_25_mm_short(obs: np.ndarray) -> np.ndarray:
        """DLS towards each goal moved 25 mm along -x: the hands settle 25 mm from their goals."""
        shifted = obs.copy()
        shifted[:, error] -= np.tile([0.025, 0.0, 0.0], 2)
        return dls(shifted)
    assert evaluate_reach(stop_25_mm_short, config, 8)["success_rate"] >= 0.75
    assert evaluate_reach(stop_25_mm_short, dataclasses.replace(config, reach_tolerance=0.02), 8)["success_rate"] == 0


def test_dls_reaches_held_out_goal_sets(humanoid):
    config = ReachConfig(robot="humanoid")
    result = evaluate_reach(dls_controller(config), config, 40)
    assert result["success_rate"] >= 0.95, result  # 0.998 on 500 sets (docs/humanoid.md)
    assert result["time_to_reach_median"] <= 1.5, result
