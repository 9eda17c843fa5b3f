"""The reach task, as every part of the stack states it: the reach tolerance of a robot, how long a goal set must
be held, and the goal sets themselves (each the end effectors of one reachable configuration free of
self-collision, drawn near the previous one for ``local`` goals or anywhere for ``workspace`` ones).
"""

from __future__ import annotations

import numpy as np

from mtpolicy.kinematics import Kinematics, self_collisions
from mtpolicy.robots import RobotSpec, RobotSpecError, find_robot
from mtpolicy.robots.manifest import DEFAULT_REACH_TOLERANCE

GOAL_JOINT_RANGE = 1.0
"""Half-width (rad) of the joint-space box around the current configuration that ``local`` goal configurations
come from (``None``: the full range, the ``workspace`` distribution; docs/reach.md)."""
GOAL_SLIDE_RANGE = 0.1
"""Half-width (m) of that box for a prismatic (slide) joint: its own units, not ``GOAL_JOINT_RANGE`` rad as m."""

def reach_tolerance(robot: str) -> float:
    """The reach tolerance (m) of a robot's manifest: a shipped name, a robot folder, or an MJCF/URDF path
    (``DEFAULT_REACH_TOLERANCE``), as is a name that is none of these (a robot folder's name alone)."""
    try:
        return find_robot(robot).reach_tolerance
    except RobotSpecError:
        return DEFAULT_REACH_TOLERANCE


SETTLE = 1.0
"""Seconds every end effector must stay within tolerance after reaching for a goal set to count as held (the demo,
the goal tool's ``until_held``)."""


def sample_configurations(spec: RobotSpec, rng: np.random.Generator, n: int, margin: float = 0.05,
                          around: np.ndarray | None = None, joint_range: float | None = None,
                          slide_range: float = GOAL_SLIDE_RANGE) -> np.ndarray:
    """(n, n_joints) joint angles uniform within the search limits (``RobotSpec.search_limits``) shrunk by ``margin``.

    With ``around`` (n_joints or (n, n_joints)) and ``joint_range``, each row is
    uniform in ``around +- joint_range`` (rad; ``slide_range`` m for a prismatic
    joint) intersected with those limits.
    """
    search = spec.search_limits
    lo = np.maximum(spec.joint_limits[:, 0] + margin, search[:, 0])
    hi = np.minimum(spec.joint_limits[:, 1] - margin, search[:, 1])
    if around is not None and joint_range is not None:
        around = np.clip(around, lo, hi)
        span: float | np.ndarray = joint_range
        if spec.slide_mask is not None and spec.slide_mask.any():
            span = np.where(spec.slide_mask, slide_range, joint_range)
        lo, hi = np.maximum(lo, around - span), np.minimum(hi, around + span)
    return rng.uniform(lo, hi, size=(n, spec.n_joints))


def sample_goal_sets(kin: Kinematics, rng: np.random.Generator, n: int, start: np.ndarray | None = None,
                     joint_range: float | None = GOAL_JOINT_RANGE) -> np.ndarray:
    """(n, n_ee, 3) a sequence of goal sets, each the end effectors of one reachable configuration.

    All end effectors' goals come from one configuration free of self-collision
    (``sample_free_configurations``), so every goal set is feasible at once. Configuration k is drawn within
    ``joint_range`` of configuration k-1 (the first within range of ``start``, default the home
    keyframe), so each set is a local move from where the previous one left the
    robot -- the distribution the reach env trains on.
    """
    q = kin.home if start is None else np.asarray(start, dtype=np.float64)
    configs = []
    for _ in range(n):
        q = sample_free_configurations(kin, rng, 1, around=q, joint_range=joint_range)[0]
        configs.append(q)
    return kin.ee_positions_batch(np.array(configs))


def sample_free_configurations(kin: Kinematics, rng: np.random.Generator, n: int, margin: float = 0.05,
                               around: np.ndarray | None = None, joint_range: float | None = None,
                               slide_range: float = GOAL_SLIDE_RANGE, tries: int = 100) -> np.ndarray:
    """``sample_configurations`` free of self-collision (``self_collisions``): colliding rows are drawn again, up
    to ``tries`` times; a row still colliding then is ``around``'s (a local goal stays at its start), else an error.

    A robot with no collision in the first draw gets exactly ``sample_configurations``'s rows (same generator use).
    """
    q = sample_configurations(kin.spec, rng, n, margin, around, joint_range, slide_range)
    bad = self_collisions(kin, q)
    rows = np.broadcast_to(around, q.shape) if around is not None and joint_range is not None else None
    for _ in range(tries):
        if not bad.any():
            return q
        idx = np.flatnonzero(bad)
        q[idx] = sample_configurations(kin.spec, rng, len(idx), margin, None if rows is None else rows[idx],
                                       joint_range, slide_range)
        bad[idx] = self_collisions(kin, q[idx])
    if rows is None:
        raise RuntimeError(f"{kin.spec.name}: no configuration free of self-collision in {tries} draws")
    q[bad] = rows[bad]
    return q
