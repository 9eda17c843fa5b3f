"""Pure safety filters between a policy's output and a robot's command input.

No ROS, no I/O: every function here takes arrays and numbers (the collision
guard also the robot's kinematics) and returns a decision, so each rule is unit
tested on its own and the controller node is a thin sequence of them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np

from mtpolicy.kinematics import Kinematics, first_collision, path_collides, separation_rates


def finite_or_zero(velocity: np.ndarray) -> tuple[np.ndarray, bool]:
    """Zeros (and False) if any component is NaN or infinite, else the input (and True)."""
    if np.isfinite(velocity).all():
        return velocity, True
    return np.zeros_like(velocity), False


def clamp_velocity(velocity: np.ndarray, limits: np.ndarray) -> tuple[np.ndarray, int]:
    """Clip each joint velocity to +-limit; also return how many were clipped."""
    clipped = np.minimum(np.maximum(velocity, -limits), limits)  # np.clip's wrapper costs 3x on short vectors
    return clipped, int(np.count_nonzero(clipped != velocity))


def at_upper_and_lower_limits(q: np.ndarray, limits: np.ndarray, margin: float = 0.0) \
        -> tuple[np.ndarray, np.ndarray]:
    """The masks of the joints at (within ``margin`` of, or past) their upper and their lower position ``limits``
    (n, 2)."""
    return q >= limits[:, 1] - margin, q <= limits[:, 0] + margin


def joint_limit_guard(q: np.ndarray, velocity: np.ndarray, limits: np.ndarray,
                      margin: float = 0.0) -> tuple[np.ndarray, int]:
    """Zero the velocity of joints at (or past) a limit that would move further out.

    ``limits`` is (n, 2); a joint within ``margin`` of its upper limit may only
    move down, and symmetrically. Returns the filtered velocity and how many
    joints were stopped.
    """
    return _stopped_outward(velocity, *at_upper_and_lower_limits(q, limits, margin))


def _stopped_outward(velocity: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> tuple[np.ndarray, int]:
    stop = (upper & (velocity > 0)) | (lower & (velocity < 0))
    if not stop.any():
        return velocity, 0
    return np.where(stop, 0.0, velocity), int(np.count_nonzero(stop))


GuardFn = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, bool]]
"""A collision guard's signature: (q, velocity, fixed joints) -> (the command allowed, whether it was changed)."""


def limited_command(q: np.ndarray, velocity: np.ndarray, velocity_limits: np.ndarray, joint_limits: np.ndarray,
                    margin: float = 0.0, collision_guard: GuardFn | None = None) -> tuple[np.ndarray, dict[str, int]]:
    """A finite command as the supervisor passes it on: clamped to the velocity limits, joints at (within ``margin``
    of, or past) a position limit only moving inwards, then changed by ``collision_guard`` (if any), whose slide leaves
    the joints at a limit as they are; with the counts ``clamped`` (joint velocities), ``limit_guarded`` (joints
    stopped) and ``collision_guarded`` (1 if the guard changed the command)."""
    velocity, clamped = clamp_velocity(velocity, velocity_limits)
    upper, lower = at_upper_and_lower_limits(q, joint_limits, margin)
    velocity, stopped = _stopped_outward(velocity, upper, lower)
    changed = False
    if collision_guard is not None:
        velocity, changed = collision_guard(q, velocity, upper | lower)
    return velocity, dict(clamped=clamped, limit_guarded=stopped, collision_guarded=int(changed))


def step_limit_guard(q: np.ndarray, velocity: np.ndarray, limits: np.ndarray,
                     dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Cap each joint's velocity so that ``dt`` s of it does not carry the joint past its position ``limits``
    (n, 2): v within [min((lo - q) / dt, 0), max((hi - q) / dt, 0)] (a joint already past a limit may not move
    further out); also the mask of the joints capped."""
    upper = np.maximum((limits[:, 1] - q) / dt, 0.0)
    lower = np.minimum((limits[:, 0] - q) / dt, 0.0)
    capped = np.minimum(np.maximum(velocity, lower), upper)
    return capped, capped != velocity


def is_stale(last_stamp: float | None, now: float, timeout: float) -> bool:
    """True if nothing arrived yet, or the last arrival is older than ``timeout`` s."""
    return last_stamp is None or now - last_stamp > timeout


def stamp_age(age: float, tolerance: float) -> float:
    """The ``age`` (s) of a sample by its stamp, set by a clock that may be ``tolerance`` s off this one: the age
    less the tolerance; 0 within +-``tolerance``; negative for a stamp more than ``tolerance`` in the future."""
    return age - tolerance if age > tolerance else age + tolerance if age < -tolerance else 0.0


def sample_intervals(stamp: float, previous_stamps: np.ndarray, time: float,
                     previous_times: np.ndarray) -> np.ndarray:
    """Seconds from each joint's previous sample to a new one: by header stamps where both have one (``stamp``,
    ``previous_stamps``; NaN: none), else by the times the samples were taken on this computer's clock."""
    by_stamp = stamp - previous_stamps
    return np.where(np.isfinite(by_stamp), by_stamp, time - previous_times)


def goal_rejection(point: tuple[float, float, float], frame_id: str, expected_frame: str) -> str | None:
    """Why a goal point must be rejected, or None if it is acceptable."""
    if not all(math.isfinite(c) for c in point):
        return f"non-finite goal {tuple(point)}"
    if frame_id != expected_frame:
        return f"goal in frame {frame_id!r}, expected the robot base frame {expected_frame!r}"
    return None


def command_rejection(command: list[float] | np.ndarray, n_joints: int) -> str | None:
    """Why a joint-velocity command must be rejected (wrong length, non-finite), or None."""
    if len(command) != n_joints:
        return f"command has {len(command)} values, robot has {n_joints} joints"
    if not np.all(np.isfinite(np.asarray(command, dtype=np.float64))):
        return "command has non-finite values"
    return None


JUMP_VELOCITY_FACTOR = 1.5
"""A joint may appear to move this many times its velocity limit between two states (servo overshoot, jitter)."""
JUMP_DELAY = 0.05
"""s added to the time between two states when bounding a joint's move (delivery jitter, bursts)."""


def duplicated_names(names: Sequence[str]) -> str | None:
    """Why a JointState whose ``names`` repeat a joint must be rejected, or None."""
    seen, repeated = set(), []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return f"joint name(s) {repeated} appear more than once" if repeated else None


def outside_limits(names: list[str], q: np.ndarray, limits: np.ndarray, margin: float) -> str | None:
    """Why joint positions ``q`` of joints ``names`` are implausible (beyond their (n, 2) ``limits`` by more than
    ``margin`` rad), or None."""
    bad = (q < limits[:, 0] - margin) | (q > limits[:, 1] + margin)
    if not bad.any():
        return None
    k = int(np.argmax(bad))
    more = f" (and {int(bad.sum()) - 1} more)" if bad.sum() > 1 else ""
    return (f"joint {names[k]!r} at {q[k]:.3f} rad is outside its limits [{limits[k, 0]:.3f}, {limits[k, 1]:.3f}] "
            f"by more than {margin} rad{more}")


def implausible_jump(names: list[str], q_before: np.ndarray, q_after: np.ndarray, seconds: np.ndarray,
                     velocity_limits: np.ndarray) -> str | None:
    """Why moving from ``q_before`` to ``q_after`` in ``seconds`` (per joint) is impossible at the velocity
    limits (see JUMP_VELOCITY_FACTOR, JUMP_DELAY), or None."""
    step = np.abs(q_after - q_before)
    bad = step > JUMP_VELOCITY_FACTOR * velocity_limits * (seconds + JUMP_DELAY)
    if not bad.any():
        return None
    k = int(np.argmax(bad))
    return (f"joint {names[k]!r} jumped {step[k]:.3f} rad in {seconds[k]:.3f} s (velocity limit "
            f"{velocity_limits[k]:.3g} rad/s)")


def predicted_positions(q: np.ndarray, velocity: np.ndarray, lead: float, limits: np.ndarray) -> np.ndarray:
    """The joint angles ``lead`` s after ``q`` was measured, the robot following the command ``velocity`` meanwhile
    (the stack's command model): clip(q + lead v) within the position ``limits`` (n, 2)."""
    return np.clip(q + lead * velocity, limits[:, 0], limits[:, 1])


def step_bounds(acceleration_limits: np.ndarray, dt: float) -> np.ndarray:
    """How far each joint's command may move in ``dt`` s: a_max dt (inf for an unlimited joint, whatever dt)."""
    with np.errstate(invalid="ignore"):  # inf * 0
        return np.where(np.isinf(acceleration_limits), np.inf, acceleration_limits * max(dt, 0.0))


def rate_limit(command: np.ndarray, previous: np.ndarray, acceleration_limits: np.ndarray,
               dt: float) -> tuple[np.ndarray, int]:
    """``command`` with each joint within a_max ``dt`` of its ``previous`` command (rad/s, or m/s for a slide);
    also how many joints were limited. An infinite limit leaves the joint's command as it is."""
    bound = step_bounds(acceleration_limits, dt)
    limited = np.minimum(np.maximum(command, previous - bound), previous + bound)
    return limited, int(np.count_nonzero(limited != command))


def braking_guard(q: np.ndarray, velocity: np.ndarray, limits: np.ndarray, acceleration_limits: np.ndarray,
                  dt: float, margin: float = 0.0) -> tuple[np.ndarray, int]:
    """Cap each joint's speed towards a position limit so that, decelerating at its acceleration limit, it can stop
    before it (within ``margin``): after moving v dt the distance d left must hold the braking distance v^2 / 2a,
    so v <= sqrt((a dt)^2 + 2 a d) - a dt. Unlimited joints are not capped (``joint_limit_guard`` stops them at
    the limit); also returns how many joints were capped."""
    a, t = acceleration_limits, max(dt, 0.0)
    finite = np.isfinite(a)
    if not finite.any():
        return velocity, 0
    to_upper = np.maximum(limits[:, 1] - margin - q, 0.0)
    to_lower = np.maximum(q - limits[:, 0] - margin, 0.0)
    with np.errstate(invalid="ignore"):  # inf - inf of an unlimited joint or an unbounded range
        cap_up = np.where(finite, np.sqrt((a * t) ** 2 + 2 * a * to_upper) - a * t, np.inf)
        cap_down = np.where(finite, np.sqrt((a * t) ** 2 + 2 * a * to_lower) - a * t, np.inf)
    cap_up, cap_down = np.nan_to_num(cap_up, nan=np.inf), np.nan_to_num(cap_down, nan=np.inf)
    capped = np.minimum(np.maximum(velocity, -cap_down), cap_up)
    return capped, int(np.count_nonzero(capped != velocity))


class CollisionGuard:
    """Changes a velocity command until its move stays free of new self-collisions: the move from q -- ``periods``
    control periods at the command v (the command's own, and one for the state's age and the servos' lag), then
    braking to rest at the acceleration limits, per joint d = v periods dt + v |v| / (2 a) -- may bring no geom pair
    closer than ``kinematics.first_collision`` allows: into a new penetration, or within a clearance (the larger of
    ``clearance`` and the robot's, ``RobotSpec.collision_clearance``) (``kinematics.path_collides``, a state every
    ``PATH_RESOLUTION`` of the largest joint's travel). Tried in order, the first free one is allowed: v; the slide
    s w for s in 1, 1/2, ..., 2^-halvings; s v alike; zeros. The slide w is v without its approach along the
    contacts the move would make: a w with a_c w >= 0 for each contact c at the first colliding state
    (``kinematics.separation_rates``), by cyclic projection of v onto those half-spaces (for one contact, the least
    change); joints v leaves at rest, and the ``fixed`` ones (the caller's: joints at a position limit), keep their
    command; scaled by the largest s <= 1 that keeps it within the velocity limits. On a robot none of whose geoms
    can touch (``Kinematics.can_collide``, planar8's) it passes every command."""

    PROJECTION_SWEEPS = 20
    """Passes of cyclic projection over the contacts' half-spaces."""

    def __init__(self, kin: Kinematics, period: float, acceleration_limits: np.ndarray, periods: int = 2,
                 halvings: int = 3, clearance: float = 0.0):
        clearance = max(clearance, kin.spec.collision_clearance)
        self.kin = Kinematics(kin.spec, copy.copy(kin.model), clearance) if clearance > 0 and kin.can_collide \
            else kin
        """The collision queries' kinematics: ``kin``, or a copy with the clearance (m)."""
        self.horizon = periods * period
        self.active = kin.can_collide
        self.scales = [0.5 ** i for i in range(halvings + 1)]
        self.braking = np.where(np.isfinite(acceleration_limits), 0.5 / acceleration_limits, 0.0)
        """1 / 2a per joint (0 without a limit): the braking distance is v |v| / 2a."""

    def move(self, velocity: np.ndarray) -> np.ndarray:
        """The joint travel checked for ``velocity``: v periods dt + v |v| / 2a."""
        return velocity * self.horizon + velocity * np.abs(velocity) * self.braking

    def slide(self, velocity: np.ndarray, collision: tuple[np.ndarray, set[tuple[int, int]]],
              fixed: np.ndarray | None = None) -> np.ndarray:
        """``velocity`` without its approach along the contacts of ``collision`` (a state and its new pairs), changing
        no joint it leaves at rest nor any of ``fixed`` (a mask)."""
        movable = (velocity != 0) if fixed is None else (velocity != 0) & ~fixed
        rates = separation_rates(self.kin, collision[0], collision[1])
        kept = rates[:, ~movable] @ velocity[~movable]  # the separation rate of the joints that keep their command
        rates = rates * movable
        some = np.einsum("ij,ij->i", rates, rates) > 0
        rates, kept = rates[some], kept[some]
        slide = velocity.copy()
        for _ in range(self.PROJECTION_SWEEPS):
            if (rates @ slide + kept >= 0).all():
                break
            for a, b in zip(rates, kept):
                slide -= min(a @ slide + b, 0.0) / (a @ a) * a
        return slide / max(float(np.max(np.abs(slide) / self.kin.spec.velocity_limits)), 1.0)

    def __call__(self, q: np.ndarray, velocity: np.ndarray, fixed: np.ndarray | None = None) \
            -> tuple[np.ndarray, bool]:
        """The command allowed at joint angles ``q``, and whether it was changed; the slide changes none of the
        ``fixed`` joints (a mask; None: none)."""
        if not self.active:
            return velocity, False
        collision = first_collision(self.kin, q, self.move(velocity))
        if collision is None:
            return velocity, False
        slide = self.slide(velocity, collision, fixed)
        for v in [s * slide for s in self.scales] + [s * velocity for s in self.scales[1:]]:
            if v.any() and not path_collides(self.kin, q, self.move(v)):
                return v, True
        return np.zeros_like(velocity), bool(velocity.any())
