"""Forward kinematics and Jacobians of a RobotSpec, in the robot's base frame.

MuJoCo does the kinematics (``mj_kinematics``, ``mj_jacSite``) on a private
MjData, so the controller node, the DLS baseline, the goal sampler and the
training envs all agree to the last bit on where an end effector is.
"""

from __future__ import annotations

import mujoco
import numpy as np

from mtpolicy.robots import RobotSpec


class Kinematics:
    """End-effector positions and Jacobians as functions of the joint angles."""

    def __init__(self, spec: RobotSpec, model: mujoco.MjModel | None = None):
        self.spec = spec
        self.model = model if model is not None else spec.load_model()
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.qpos_adr = np.array([m.jnt_qposadr[m.joint(j).id] for j in spec.joint_names])
        self.dof_adr = np.array([m.jnt_dofadr[m.joint(j).id] for j in spec.joint_names])
        self.site_ids = np.array([m.site(s).id for s in spec.end_effectors])
        self._base_id = m.body(spec.base_body).id
        mujoco.mj_resetDataKeyframe(m, self.data, 0) if m.nkey else mujoco.mj_resetData(m, self.data)
        mujoco.mj_kinematics(m, self.data)
        self._jacp = np.zeros((3, m.nv))

    def _set(self, q: np.ndarray) -> None:
        self.data.qpos[self.qpos_adr] = q
        mujoco.mj_kinematics(self.model, self.data)

    def base_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World position and rotation matrix of the base frame (fixed for a fixed-base robot)."""
        return self.data.xpos[self._base_id].copy(), self.data.xmat[self._base_id].reshape(3, 3).copy()

    def ee_positions(self, q: np.ndarray) -> np.ndarray:
        """(n_ee, 3) end-effector positions in the base frame for joint angles q."""
        self._set(q)
        p, r = self.base_pose()
        return (self.data.site_xpos[self.site_ids] - p) @ r

    def ee_positions_batch(self, q: np.ndarray) -> np.ndarray:
        """(B, n_ee, 3) end-effector positions for a (B, n_joints) batch of angles."""
        return np.stack([self.ee_positions(qi) for qi in np.atleast_2d(q)])

    def jacobians(self, q: np.ndarray) -> np.ndarray:
        """(n_ee, 3, n_joints) positional Jacobians d(ee)/dq in the base frame."""
        return self.ee_positions_and_jacobians(q)[1]

    def ee_positions_and_jacobians(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector positions (n_ee, 3) and Jacobians (n_ee, 3, n_joints), base frame, in one pass."""
        self._set(q)
        mujoco.mj_comPos(self.model, self.data)
        p, r = self.base_pose()
        jac = np.empty((len(self.site_ids), 3, len(self.dof_adr)))
        for i, s in enumerate(self.site_ids):
            mujoco.mj_jacSite(self.model, self.data, self._jacp, None, s)
            jac[i] = r.T @ self._jacp[:, self.dof_adr]
        return (self.data.site_xpos[self.site_ids] - p) @ r, jac


def sample_configurations(spec: RobotSpec, rng: np.random.Generator, n: int, margin: float = 0.05) -> np.ndarray:
    """(n, n_joints) joint angles uniform within the limits shrunk by ``margin`` rad."""
    lo, hi = spec.joint_limits[:, 0] + margin, spec.joint_limits[:, 1] - margin
    lo, hi = np.maximum(lo, -np.pi), np.minimum(hi, np.pi)
    return rng.uniform(lo, hi, size=(n, spec.n_joints))


def sample_goal_sets(kin: Kinematics, rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, n_ee, 3) goal sets: the end effectors of random reachable configurations.

    All end effectors' goals come from one configuration, so every goal set is
    feasible at once.
    """
    return kin.ee_positions_batch(sample_configurations(kin.spec, rng, n))
