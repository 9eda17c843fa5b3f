"""The one observation builder, used by the training envs and the nodes alike.

Observation (float32), segments in this order:

| segment      | size        | meaning                                         |
|--------------|-------------|-------------------------------------------------|
| joint_pos    | n_joints    | joint angles (rad), in RobotSpec joint order    |
| ee_pos       | 3 * n_ee    | end-effector positions, base frame (m)          |
| goal_pos     | 3 * n_ee    | goal positions, base frame (m)                  |
| goal_error   | 3 * n_ee    | goal_pos - ee_pos (m)                           |

Joint velocities are left out: the robots are velocity-servoed, so the state
that matters is the configuration, and a real driver's velocity estimate is
the noisiest field of a JointState. The DiGrad paper's state is "joint angles,
joint positions and goal positions"; ``goal_error`` is redundant with them but
spares the network learning a subtraction it needs to millimetre precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ObservationLayout:
    """Named segments of the observation vector, in order."""

    segments: tuple[tuple[str, int], ...]

    @classmethod
    def for_robot(cls, n_joints: int, n_end_effectors: int) -> "ObservationLayout":
        k = 3 * n_end_effectors
        return cls((("joint_pos", n_joints), ("ee_pos", k), ("goal_pos", k), ("goal_error", k)))

    @property
    def size(self) -> int:
        return sum(n for _, n in self.segments)

    def slice(self, name: str) -> slice:
        start = 0
        for seg, n in self.segments:
            if seg == name:
                return slice(start, start + n)
            start += n
        raise KeyError(f"no observation segment {name!r} in {self.names}")

    @property
    def names(self) -> list[str]:
        return [s for s, _ in self.segments]

    def to_json(self) -> list[list]:
        return [[s, n] for s, n in self.segments]

    @classmethod
    def from_json(cls, value: list) -> "ObservationLayout":
        return cls(tuple((str(s), int(n)) for s, n in value))


def build_observation(q: np.ndarray, ee_pos: np.ndarray, goals: np.ndarray) -> np.ndarray:
    """Observation(s) from joint angles (..., n_j), EE positions and goals (..., n_ee, 3)."""
    lead = q.shape[:-1]
    ee = ee_pos.reshape(*lead, -1)
    g = goals.reshape(*lead, -1)
    return np.concatenate([q, ee, g, g - ee], axis=-1).astype(np.float32)
