"""The one observation builder, used by the training envs and the nodes alike.

Observation (float32), segments in this order:

| segment      | size        | meaning                                         |
|--------------|-------------|-------------------------------------------------|
| joint_pos    | n_joints    | joint angles (rad), in RobotSpec joint order    |
| ee_pos       | 3 * n_ee    | end-effector positions, base frame (m)          |
| goal_pos     | 3 * n_ee    | goal positions, base frame (m)                  |
| goal_error   | 3 * n_ee    | goal_pos - ee_pos (m)                           |
| joint_error  | n_ee * n_j  | J_i(q)^T (goal_i - ee_i) per end effector i     |
| goal_config_error | n_j    | q* - q (rad); planner-conditioned layouts only  |
| previous_command | n_j     | joint velocities sent the period before (rad/s) |

Positions are in metres, x y z per end effector, end effectors in the
contract's order; ``J_i`` is the positional Jacobian (3 x n_j) of end effector
i's site in the base frame (zero columns off its chain). ``q*`` is the goal
configuration of ``mtpolicy.planner`` for the current goal set.
``previous_command`` is the velocity command sent to the servos the period
before (after the acceleration ramp; zero from rest), in layouts whose graph
times its braking by it (``TargetRefinement.command`` ``deadbeat``): it is the
state the ramp starts from and the motion the servos still carry.

Measured joint velocities are left out: the robots are velocity-servoed, so
the state that matters is the configuration and the command in flight (which
the controller knows exactly), and a real driver's velocity estimate is the
noisiest field of a JointState. The DiGrad paper's state is "joint angles,
joint positions and goal positions"; ``goal_error`` and ``joint_error`` are
functions of them that spare the network learning what it needs at millimetre
precision: the subtraction, and each task's error pulled back to joint space
through its chain's Jacobian (zero off the chain), in which the local
reaching solution (Jacobian-transpose control) is linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtpolicy.kinematics import Kinematics


@dataclass(frozen=True)
class ObservationLayout:
    """Named segments of the observation vector, in order."""

    segments: tuple[tuple[str, int], ...]

    @classmethod
    def for_robot(cls, n_joints: int, n_end_effectors: int, planned: bool = False,
                  previous_command: bool = False) -> "ObservationLayout":
        """The layout of a robot; ``planned`` appends the planner's ``goal_config_error``, ``previous_command`` then
        the command sent the period before."""
        k = 3 * n_end_effectors
        planned_segment = (("goal_config_error", n_joints),) if planned else ()
        command_segment = (("previous_command", n_joints),) if previous_command else ()
        return cls((("joint_pos", n_joints), ("ee_pos", k), ("goal_pos", k), ("goal_error", k),
                    ("joint_error", n_end_effectors * n_joints)) + planned_segment + command_segment)

    @property
    def planned(self) -> bool:
        """True if the layout observes the planner's goal configuration."""
        return "goal_config_error" in self.names

    @property
    def previous_command(self) -> bool:
        """True if the layout observes the command sent the period before."""
        return "previous_command" in self.names

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


def build_observation(q: np.ndarray, ee_pos: np.ndarray, goals: np.ndarray, jacobians: np.ndarray,
                      goal_config: np.ndarray | None = None, previous_command: np.ndarray | None = None) -> np.ndarray:
    """Observation(s) from joint angles (..., n_j), EE positions and goals (..., n_ee, 3), Jacobians
    (..., n_ee, 3, n_j), for planned layouts the goal configuration q* (..., n_j) and for layouts with
    ``previous_command`` that command (..., n_j)."""
    lead = q.shape[:-1]
    error = goals - ee_pos
    joint_error = np.einsum("...kdj,...kd->...kj", jacobians, error)
    planned = [] if goal_config is None else [goal_config - q]
    command = [] if previous_command is None else [np.broadcast_to(previous_command, q.shape)]
    return np.concatenate([q, ee_pos.reshape(*lead, -1), goals.reshape(*lead, -1), error.reshape(*lead, -1),
                           joint_error.reshape(*lead, -1)] + planned + command, axis=-1).astype(np.float32)


def observe(kin: Kinematics, q: np.ndarray, goals: np.ndarray, goal_config: np.ndarray | None = None,
            previous_command: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Observation and EE positions for joint angles q (n_j,) or (B, n_j), goals (.., n_ee, 3) and, for
    planned layouts, goal configurations q* shaped like q, for layouts with it the previous command."""
    n_ee = len(kin.site_ids)
    if np.ndim(q) == 1:  # the controller's path: no batch bookkeeping
        ee, jac = kin.ee_positions_and_jacobians(q)
        goals = np.asarray(goals, dtype=np.float64).reshape(n_ee, 3)
        return build_observation(np.asarray(q, dtype=np.float64), ee, goals, jac, goal_config, previous_command), ee
    qb = np.asarray(q, dtype=np.float64)
    ee, jac = np.empty((len(qb), n_ee, 3)), np.empty((len(qb), n_ee, 3, qb.shape[1]))
    for b, qi in enumerate(qb):
        ee[b], jac[b] = kin.ee_positions_and_jacobians(qi)
    obs = build_observation(qb, ee, np.asarray(goals, dtype=np.float64).reshape(len(qb), n_ee, 3), jac, goal_config,
                            previous_command)
    return obs, ee
