"""Forward kinematics and positional Jacobians of a robot's end effectors as a torch module (ONNX-exportable).

The same quantities as ``mtpolicy.kinematics.Kinematics.ee_positions_and_jacobians``, batched, built once from
the robot's MuJoCo model so that a policy graph can evaluate them at configurations other than the observed
one. Per body from the base body down, as MuJoCo's ``mj_kinematics`` composes them:

    p_b = p_parent + R_parent o_b,   R_b = R_parent Q_b                     (the body's fixed offset and rotation)
    hinge j (anchor c_j, axis a_j in the body frame, reference angle q0_j):
        R_b <- R_b Rot(a_j, q_j - q0_j),   p_b <- (p_b + R_b,before c_j) - R_b c_j
    slide j:  p_b <- p_b + R_b a_j (q_j - q0_j)
    site s on body b:  x_s = p_b + R_b o_s

and the Jacobian column of a commanded joint on the site's chain is ``(R a_j) x (x_s - c_j^world)`` (hinge) or
``R a_j`` (slide), zero off the chain. Joints on a chain that the robot does not command (a held leg, a head)
stay at their home angle, as ``Kinematics`` keeps them.
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch
from torch import nn

from mtpolicy.kinematics import Kinematics


def _rotation(quat: np.ndarray) -> np.ndarray:
    out = np.zeros(9)
    mujoco.mju_quat2Mat(out, np.asarray(quat, dtype=np.float64))
    return out.reshape(3, 3)


def _skew(a: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])


def cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a x b of (B, 3) tensors (written out: every exporter knows it)."""
    a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
    b0, b1, b2 = b[:, 0], b[:, 1], b[:, 2]
    return torch.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], dim=1)


class TorchKinematics(nn.Module):
    """q (B, n_joints) -> end-effector positions (B, n_ee, 3) and Jacobians (B, n_ee, 3, n_joints), base frame."""

    def __init__(self, kin: Kinematics):
        super().__init__()
        m, spec = kin.model, kin.spec
        data = mujoco.MjData(m)
        spec.reset_to_home(m, data)
        commanded = {int(m.joint(name).id): i for i, name in enumerate(spec.joint_names)}
        base = int(m.body(spec.base_body).id)
        chains = []
        for site in kin.site_ids:
            body, chain = int(m.site_bodyid[site]), []
            while body != base:
                if body == 0:
                    raise ValueError(f"{spec.name}: end-effector site {m.site(site).name!r} is not below the base body")
                chain.append(body)
                body = int(m.body_parentid[body])
            chains.append(chain[::-1])
        above = self._path(m, base)  # the base and its ancestors: a commanded joint there would move the base frame
        if any(j in commanded for b in above for j in range(m.body_jntadr[b], m.body_jntadr[b] + m.body_jntnum[b])):
            raise ValueError(f"{spec.name}: a commanded joint moves the base body")
        bodies = sorted({b for chain in chains for b in chain}, key=lambda b: (len(self._path(m, b)), b))
        self.n_joints, self.base = spec.n_joints, base
        self.bodies = []  # (body, parent, joints): joints as (kind, commanded index or -1, buffer-name prefix)
        for body in bodies:
            parent = int(m.body_parentid[body])
            self._constant(f"b{body}_pos", m.body_pos[body])
            self._constant(f"b{body}_rot", _rotation(m.body_quat[body]))
            joints = []
            for j in range(m.body_jntadr[body], m.body_jntadr[body] + m.body_jntnum[body]):
                kind = int(m.jnt_type[j])
                if kind not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
                    raise ValueError(f"{spec.name}: joint {m.joint(j).name!r} is neither a hinge nor a slide")
                adr, axis = m.jnt_qposadr[j], m.jnt_axis[j] / np.linalg.norm(m.jnt_axis[j])
                self._constant(f"j{j}_anchor", m.jnt_pos[j])
                self._constant(f"j{j}_axis", axis)
                self._constant(f"j{j}_k", _skew(axis))
                self._constant(f"j{j}_k2", _skew(axis) @ _skew(axis))
                self._constant(f"j{j}_offset", [m.qpos0[adr] if j in commanded else m.qpos0[adr] - data.qpos[adr]])
                joints.append((kind == mujoco.mjtJoint.mjJNT_HINGE, commanded.get(j, -1), j))
            self.bodies.append((body, parent, joints))
        self.sites = []
        for site, chain in zip(kin.site_ids, chains):
            self._constant(f"s{site}_pos", m.site_pos[site])
            on_chain = [(j, commanded[j]) for b in chain for j in range(m.body_jntadr[b], m.body_jntadr[b]
                                                                         + m.body_jntnum[b]) if j in commanded]
            self.sites.append((int(site), int(m.site_bodyid[site]), on_chain))
        self._constant("eye", np.eye(3))

    @staticmethod
    def _path(m: mujoco.MjModel, body: int) -> list[int]:
        path = []
        while body:
            path.append(body)
            body = int(m.body_parentid[body])
        return path

    def _constant(self, name: str, value) -> None:  # noqa: ANN001 - array-like
        self.register_buffer(name, torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=torch.float32),
                             persistent=False)

    def forward(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = dict(self.named_buffers())
        batch = q.shape[0]
        identity = c["eye"].expand(batch, 3, 3)
        origin = torch.zeros_like(q[:, :1]).expand(batch, 3)
        pose = {self.base: (origin, identity)}
        joint_frames = {}  # joint -> (world anchor, world axis), for the Jacobian
        for body, parent, joints in self.bodies:
            p_parent, r_parent = pose[parent]
            p = p_parent + torch.matmul(r_parent, c[f"b{body}_pos"])
            r = torch.matmul(r_parent, c[f"b{body}_rot"])
            for hinge, index, j in joints:
                angle = (q[:, index] if index >= 0 else torch.zeros_like(q[:, 0])) - c[f"j{j}_offset"]
                axis = torch.matmul(r, c[f"j{j}_axis"])
                if hinge:
                    anchor = p + torch.matmul(r, c[f"j{j}_anchor"])
                    rot = (c["eye"] + torch.sin(angle)[:, None, None] * c[f"j{j}_k"]
                           + (1.0 - torch.cos(angle))[:, None, None] * c[f"j{j}_k2"])
                    r = torch.matmul(r, rot)
                    p = anchor - torch.matmul(r, c[f"j{j}_anchor"])
                else:
                    anchor = p
                    p = p + axis * angle[:, None]
                joint_frames[j] = (hinge, anchor, axis)
            pose[body] = (p, r)
        positions, jacobians = [], []
        zero = torch.zeros_like(q[:, :1]).expand(batch, 3)
        for site, body, on_chain in self.sites:
            p, r = pose[body]
            x = p + torch.matmul(r, c[f"s{site}_pos"])
            columns = [zero] * self.n_joints
            for j, index in on_chain:
                hinge, anchor, axis = joint_frames[j]
                columns[index] = cross(axis, x - anchor) if hinge else axis
            positions.append(x)
            jacobians.append(torch.stack(columns, dim=2))
        return torch.stack(positions, dim=1), torch.stack(jacobians, dim=1)
