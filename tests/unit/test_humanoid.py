"""The humanoid: model and chains (its two-hand reach env and the DLS baseline on it:
tests/training/test_humanoid_reach.py; bring-up over DDS: tests/ros/test_humanoid_bringup.py)."""

from __future__ import annotations

import mujoco
import numpy as np

from mtpolicy.kinematics import Kinematics

TORSO = ("waist_yaw", "waist_pitch", "waist_roll", "chest_pitch", "chest_roll")
ARM = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow")


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
