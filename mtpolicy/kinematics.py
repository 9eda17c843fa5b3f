"""Forward kinematics and Jacobians of a RobotSpec, in the robot's base frame, and its self-collisions.

MuJoCo does the kinematics (``mj_kinematics``, ``mj_jacSite``) on a private
MjData, so the controller node, the DLS baseline, the goal sampler
(``mtpolicy.reach_task``) and the training envs all agree to the last bit on
where an end effector is.
"""

from __future__ import annotations

import functools
import math

import mujoco
import numpy as np

from mtpolicy.robots import RobotSpec


class Kinematics:
    """End-effector positions and Jacobians as functions of the joint angles."""

    def __init__(self, spec: RobotSpec, model: mujoco.MjModel | None = None, clearance: float = 0.0):
        self.spec = spec
        self.model = model if model is not None else spec.load_model()
        self.clearance = clearance
        """m: the distance within which ``first_collision`` counts two geoms as colliding (0: penetration). MuJoCo
        reports the pairs closer than it as contacts (every geom's margin at least this)."""
        if clearance > 0:
            self.model.geom_margin[:] = np.maximum(self.model.geom_margin, clearance)
        self._pair_clearances: dict[tuple[int, int], float] = {}
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.qpos_adr = np.array([m.jnt_qposadr[m.joint(j).id] for j in spec.joint_names])
        self.dof_adr = np.array([m.jnt_dofadr[m.joint(j).id] for j in spec.joint_names])
        self.site_ids = np.array([m.site(s).id for s in spec.end_effectors])
        self._base_id = m.body(spec.base_body).id
        spec.reset_to_home(m, self.data)
        mujoco.mj_kinematics(m, self.data)
        self.home = self.data.qpos[self.qpos_adr].copy()
        """Joint angles of the robot's home keyframe (the MJCF's defaults if it has none)."""
        self._fixed_base = _is_welded_to_world(m, self._base_id)
        self._base = self._read_base_pose()
        self._rotated = not (self._fixed_base and np.array_equal(self._base[1], np.eye(3)))
        self._jac_world = np.zeros((len(self.site_ids), 3, m.nv))
        self.can_collide = _geoms_can_touch(m)
        """Whether any two geoms may come into contact; else every collision query here answers "none" unchecked."""

    @functools.cached_property
    def home_contacts(self) -> set[tuple[int, int]]:
        """The geom pairs in penetration at home: the model's own, which no collision query counts."""
        return _contact_pairs(self, self.home)

    NEIGHBOUR_JOINTS = 2
    """Two bodies at most this many joints apart in the kinematic tree are neighbours: a joint's own range may bring
    them within the clearance (a waist pitching its torso towards the pelvis)."""

    def pair_clearance(self, pair: tuple[int, int]) -> float:
        """The clearance ``first_collision`` holds a geom pair to: ``clearance``, or 0 (no penetration only) for
        neighbours' geoms and for the pairs closer than it at home."""
        if pair not in self._pair_clearances:
            self._pair_clearances[pair] = 0.0 if pair in self._close_at_home or self._joints_between(
                *self.model.geom_bodyid[list(pair)]) <= self.NEIGHBOUR_JOINTS else self.clearance
        return self._pair_clearances[pair]

    @functools.cached_property
    def _close_at_home(self) -> set[tuple[int, int]]:
        return set(_contact_distances(self, self.home))

    def _joints_between(self, body1: int, body2: int) -> int:
        """How many joints the kinematic tree's path from one body to the other crosses."""
        def chain(body: int) -> list[int]:
            bodies = []
            while body > 0:
                bodies.append(body)
                body = self.model.body_parentid[body]
            return bodies
        one, other = chain(body1), chain(body2)
        return int(sum(self.model.body_jntnum[b] for b in set(one) ^ set(other)))

    def _set(self, q: np.ndarray) -> None:
        self.data.qpos[self.qpos_adr] = q
        mujoco.mj_kinematics(self.model, self.data)

    def _read_base_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.xpos[self._base_id].copy(), self.data.xmat[self._base_id].reshape(3, 3).copy()

    def base_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World position and rotation matrix of the base frame (read once when no joint moves it)."""
        return self._base if self._fixed_base else self._read_base_pose()

    def ee_positions(self, q: np.ndarray) -> np.ndarray:
        """(n_ee, 3) end-effector positions in the base frame for joint angles q."""
        self._set(q)
        p, r = self.base_pose()
        ee = self.data.site_xpos[self.site_ids] - p
        return ee @ r if self._rotated else ee

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
        for i, s in enumerate(self.site_ids):
            mujoco.mj_jacSite(self.model, self.data, self._jac_world[i], None, s)
        p, r = self.base_pose()
        ee, jac = self.data.site_xpos[self.site_ids] - p, self._jac_world[:, :, self.dof_adr]
        return (ee @ r, r.T @ jac) if self._rotated else (ee, jac)



def damped_newton(kin: Kinematics, q: np.ndarray, goals: np.ndarray, low: np.ndarray, high: np.ndarray,
                  damping: float, steps: int, tolerance: float,
                  weight: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """At most ``steps`` damped Newton steps from q (clipped into [low, high]) towards the goal set (n_ee, 3),
    stopping once every end effector is within ``tolerance``; the result and its largest error (m):
    ``q <- clip(q + W J^T (J W J^T + lambda^2 I)^-1 e, low, high)``, J and e the stacked Jacobians and errors,
    lambda = ``damping``, W = diag(``weight``) (I without one)."""
    q = np.clip(q, low, high)
    eye = damping ** 2 * np.eye(goals.size)
    for _ in range(steps):
        ee, jac = kin.ee_positions_and_jacobians(q)
        err = goals - ee
        worst = float(np.sqrt((err ** 2).sum(axis=1).max()))
        if worst < tolerance:
            return q, worst
        j = jac.reshape(-1, len(q))
        wj = j if weight is None else j * weight  # J W
        q = np.clip(q + wj.T @ np.linalg.solve(wj @ j.T + eye, err.reshape(-1)), low, high)
    return q, float(np.linalg.norm(goals - kin.ee_positions(q), axis=1).max())

def _is_welded_to_world(model: mujoco.MjModel, body_id: int) -> bool:
    """True if no joint lies between the world and this body."""
    while body_id > 0:
        if model.body_jntnum[body_id]:
            return False
        body_id = model.body_parentid[body_id]
    return True


def self_collisions(kin: Kinematics, q: np.ndarray) -> np.ndarray:
    """(n,) bool: row i of the (n, n_joints) joint angles ``q`` puts two geoms of the robot, or one of the robot
    and one of the world (a floor), into penetration. Pairs already in contact at home are the model's own and
    do not count; the robot's joints not in ``q`` stay at home."""
    if not kin.can_collide:
        return np.zeros(len(np.atleast_2d(q)), dtype=bool)
    home = kin.home_contacts  # read before the rows: computing it moves the private MjData to home
    return np.array([bool(_contact_pairs(kin, qi) - home) for qi in np.atleast_2d(q)], dtype=bool)


def _geoms_can_touch(model: mujoco.MjModel) -> bool:
    """Whether any two geoms of ``model`` may come into contact: an explicit contact pair, or one geom's contype
    sharing a bit with another geom's conaffinity (MuJoCo's contact filter)."""
    touch = model.geom_contype[:, None] & model.geom_conaffinity[None, :]
    np.fill_diagonal(touch, 0)  # a geom does not touch itself
    return model.npair > 0 or bool(touch.any())


PATH_RESOLUTION = 0.05
"""rad: the largest joint's travel between two states ``path_collides`` checks, unless told how many."""


def path_collides(kin: Kinematics, q: np.ndarray, step: np.ndarray, samples: int | None = None) -> bool:
    """Whether a state q + step i / samples, i = 1..samples, brings a geom pair not in contact at home closer than
    ``first_collision`` allows; by default one state every ``PATH_RESOLUTION`` of the largest joint's travel."""
    return first_collision(kin, q, step, samples) is not None


APPROACH_TOLERANCE = 1e-4
"""m: how much closer than allowed a pair may come on a path (a move along a contact approaches it to second order)."""


def first_collision(kin: Kinematics, q: np.ndarray, step: np.ndarray,
                    samples: int | None = None) -> tuple[np.ndarray, set[tuple[int, int]]] | None:
    """The first state of ``path_collides``' path where a geom pair not in contact at home comes closer than
    min(c, d_q - ``APPROACH_TOLERANCE``), and those pairs there; None on a free path. c is the pair's
    ``Kinematics.pair_clearance``; d_q is the pair's distance at q (inf beyond c). With c = 0: no new penetration,
    and a contact the robot is in may not deepen; with c > 0, no pair may come within c either, unless it is already
    that close, and then it may not approach."""
    if not kin.can_collide:
        return None
    samples = samples or max(1, math.ceil(float(np.abs(step).max()) / PATH_RESOLUTION))
    home, at_q = kin.home_contacts, None
    for i in range(1, samples + 1):
        state = q + step * (i / samples)
        close = {p: d for p, d in _contact_distances(kin, state).items()
                 if p not in home and d < kin.pair_clearance(p)}
        if close:  # the distances at q only matter then (one collision check fewer on a free path)
            at_q = _contact_distances(kin, q) if at_q is None else at_q
            new = {p for p, d in close.items()
                   if d < min(kin.pair_clearance(p), at_q.get(p, math.inf) - APPROACH_TOLERANCE)}
            if new:
                return state, new
    return None


def separation_rates(kin: Kinematics, q: np.ndarray, pairs: set[tuple[int, int]]) -> np.ndarray:
    """(n_contacts, n_joints): row c is d(distance)/dq of a contact of ``pairs`` at ``q`` (closer than
    ``kin.clearance``), so a joint velocity v separates its geoms at rate a_c v: a_c = n_c^T (J_2(p_c) - J_1(p_c)),
    n_c the contact normal from geom 1 to geom 2 and J_k(p_c) the positional Jacobian of geom k's body at the contact
    point (world frame)."""
    m, d = kin.model, kin.data
    kin._set(q)
    mujoco.mj_collision(m, d)
    mujoco.mj_comPos(m, d)
    jac1, jac2, rows = np.zeros((3, m.nv)), np.zeros((3, m.nv)), []
    for c in d.contact[:d.ncon]:
        if (int(c.geom1), int(c.geom2)) in pairs:
            mujoco.mj_jac(m, d, jac1, None, c.pos, m.geom_bodyid[c.geom1])
            mujoco.mj_jac(m, d, jac2, None, c.pos, m.geom_bodyid[c.geom2])
            rows.append(c.frame[:3] @ (jac2 - jac1)[:, kin.dof_adr])
    return np.array(rows).reshape(-1, len(kin.dof_adr))


def _contact_distances(kin: Kinematics, q: np.ndarray) -> dict[tuple[int, int], float]:
    """Each geom pair MuJoCo reports in contact at ``q`` (closer than its geoms' margin; one geom of the robot), and
    its least signed distance (m, negative in penetration)."""
    kin._set(q)
    mujoco.mj_collision(kin.model, kin.data)
    body, distances = kin.model.geom_bodyid, dict[tuple[int, int], float]()
    for c in kin.data.contact[:kin.data.ncon]:
        if body[c.geom1] > 0 or body[c.geom2] > 0:
            pair = (int(c.geom1), int(c.geom2))
            distances[pair] = min(float(c.dist), distances.get(pair, math.inf))
    return distances


def _contact_pairs(kin: Kinematics, q: np.ndarray) -> set[tuple[int, int]]:
    """The geom pairs in penetration at ``q`` (one geom of the robot)."""
    return {p for p, d in _contact_distances(kin, q).items() if d < 0}
