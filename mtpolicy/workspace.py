"""Where each end effector can be, derived from the kinematic tree: goals outside it are refused.

For each end effector, walking its chain from the base: every hinge or ball
joint rotates the rest of the chain about its anchor, so the distance between
two successive joint anchors (and from the last anchor to the site) never
changes; their sum is a reach radius about the first anchor, which is fixed
in the base frame. A slide joint adds its travel. If every joint on the chain
is a hinge and all their axes are parallel, the end effector moves in a plane
normal to them (a planar robot), fixed in the base frame too.

Both are outer bounds (joint limits and collisions shrink the real
workspace): a goal they refuse is unreachable for certain; a goal they accept
may still be out of reach, which the controller's progress monitor reports.
Pure numpy and MuJoCo; positions in the base frame.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import mujoco
import numpy as np

from mtpolicy.kinematics import Kinematics

PARALLEL_TOLERANCE = 1e-6
"""|a x b| below which two unit joint axes count as parallel."""


@dataclass(frozen=True)
class ReachRegion:
    """The outer bound of one end effector's positions, in the base frame."""

    end_effector: str
    anchor: np.ndarray
    """(3,) anchor of the first joint on the chain (fixed in the base frame), m."""
    radius: float
    """No position of the end effector is farther than this from ``anchor`` (inf: unbounded), m."""
    plane_normal: np.ndarray | None
    """(3,) unit normal of the plane the end effector moves in, or None if it is not planar."""
    plane_point: np.ndarray | None = None
    """(3,) a point of that plane (the end effector at home), m."""

    def rejection(self, goal: np.ndarray, margin: float) -> str | None:
        """Why ``goal`` is out of this region (by more than ``margin`` m), or None."""
        goal = np.asarray(goal, dtype=np.float64)
        if self.plane_normal is not None:
            off_plane = float(self.plane_normal @ (goal - self.plane_point))
            if abs(off_plane) > margin:
                return (f"{self.end_effector!r} moves in the plane {self.plane()} of the base frame; the goal is "
                        f"{off_plane:+.3f} m off it")
        distance = float(np.linalg.norm(goal - self.anchor))
        if distance > self.radius + margin:
            return (f"{self.end_effector!r} reaches at most {self.radius:.3f} m from "
                    f"{tuple(round(float(v), 3) for v in self.anchor)}; the goal is {distance:.3f} m away")
        return None

    def plane(self) -> str:
        """The plane, as an equation in base-frame coordinates."""
        n, p = self.plane_normal, self.plane_point
        assert n is not None and p is not None, "plane() of a planar region"
        for k, axis in enumerate("xyz"):
            if abs(abs(n[k]) - 1) < PARALLEL_TOLERANCE:
                return f"{axis} = {p[k]:.3f} m"
        return f"n.p = {float(n @ p):.3f} m, n = {tuple(round(float(v), 3) for v in n)}"


class Workspace:
    """The reach region of every end effector of a robot, and the check of a goal against it."""

    def __init__(self, kin: Kinematics):
        self.regions = tuple(_region(kin, i) for i in range(len(kin.site_ids)))

    def goal_rejection(self, index: int, goal: np.ndarray, margin: float) -> str | None:
        """Why the goal of end effector ``index`` cannot be reached, or None."""
        return self.regions[index].rejection(goal, margin)


def _region(kin: Kinematics, index: int) -> ReachRegion:
    """The reach region of end effector ``index``, from the model at the kinematics' home configuration."""
    m, d = kin.model, kin.data
    kin.ee_positions(kin.home)  # kinematics at home in kin.data
    base = m.body(kin.spec.base_body).id
    p0, r0 = kin.base_pose()
    to_base = lambda world: (np.asarray(world) - p0) @ r0  # noqa: E731 - world point -> base frame

    site = int(kin.site_ids[index])
    joints = []  # joints from the site's body up to (not including) the base body, tip first
    body = int(m.site_bodyid[site])
    while body != base and body > 0:
        adr = int(m.body_jntadr[body])
        joints += list(range(adr, adr + int(m.body_jntnum[body])))[::-1]
        body = int(m.body_parentid[body])
    joints.reverse()
    name = kin.spec.end_effectors[index]
    tip = to_base(d.site_xpos[site])
    if not joints:
        return ReachRegion(name, tip, 0.0, None)
    anchors = np.array([to_base(d.xanchor[j]) for j in joints])
    points = np.vstack([anchors, tip[None]])
    radius = float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())
    types = [int(m.jnt_type[j]) for j in joints]
    if mujoco.mjtJoint.mjJNT_FREE in types:
        radius = math.inf
    for j, t in zip(joints, types):
        if t == mujoco.mjtJoint.mjJNT_SLIDE:  # it moves what follows by at most its travel from home
            radius += float(m.jnt_range[j, 1] - m.jnt_range[j, 0]) if m.jnt_limited[j] else math.inf
    normal = None
    if all(t == mujoco.mjtJoint.mjJNT_HINGE for t in types):
        axes = np.array([d.xaxis[j] @ r0 for j in joints])
        if all(np.linalg.norm(np.cross(axes[0], a)) < PARALLEL_TOLERANCE for a in axes[1:]):
            normal = axes[0] / np.linalg.norm(axes[0])
    return ReachRegion(name, anchors[0], radius, normal, tip if normal is not None else None)


MIN_PROGRESS = 0.005
"""m an end effector's error must shrink by to count as progress towards its goal."""


class ProgressMonitor:
    """Per end effector: how long its error has not shrunk by MIN_PROGRESS while it is above ``tolerance``.

    ``restart(i, now)`` on a new goal for end effector i; ``pause(now)`` while
    the robot is held still (no progress is expected then); ``update(errors,
    now)`` while it runs.
    """

    def __init__(self, n_end_effectors: int, tolerance: float):
        self.tolerance = tolerance
        self._best = np.full(n_end_effectors, np.inf)
        self._since = np.zeros(n_end_effectors)

    def restart(self, index: int, now: float) -> None:
        self._best[index], self._since[index] = np.inf, now

    def pause(self, now: float) -> None:
        self._since[:] = now

    def update(self, errors: np.ndarray, now: float) -> None:
        better = (errors <= self.tolerance) | (errors < self._best - MIN_PROGRESS)
        self._best[better] = errors[better]
        self._since[better] = now

    def stalled(self, errors: np.ndarray, now: float, timeout: float) -> list[int]:
        """End effectors above tolerance whose error has not shrunk for more than ``timeout`` s."""
        return [int(i) for i in np.flatnonzero((errors > self.tolerance) & (now - self._since > timeout))]


class CounterWindow:
    """How much each of a set of running totals rose over the last ``window`` s.

    ``update(now, totals, window)`` records the totals at ``now`` and returns, per counter, its total now less its
    total at the latest record at least ``window`` s old (the oldest record while none is that old). ``clear()``
    forgets the records (the robot was held: a new window starts).
    """

    def __init__(self) -> None:
        self._records: deque[tuple[float, dict[str, int]]] = deque()

    def clear(self) -> None:
        self._records.clear()

    def update(self, now: float, totals: Mapping[str, int], window: float) -> dict[str, int]:
        self._records.append((now, dict(totals)))
        while len(self._records) > 1 and self._records[1][0] <= now - window:
            self._records.popleft()
        start = self._records[0][1]
        return {name: total - start.get(name, 0) for name, total in totals.items()}
