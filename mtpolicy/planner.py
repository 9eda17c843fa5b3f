"""Goal-configuration planners: for a whole goal set, the joint configuration q* a policy is steered to.

A goal set far from the robot's configuration may need the arm to fold
through its joint limits to another branch of solutions, which no local
(Jacobian) controller finds. ``PlannerConfig.algorithm`` chooses the planner.

``ik``: multi-start inverse kinematics, a q* that puts every end effector on
its goal at once:

* candidates: the start q0, ``restarts`` configurations drawn uniformly
  within the joint limits and ``local_restarts`` drawn uniformly within
  ``local_range`` of q0, from a fixed seed (so the planner is a function of
  q0 and the goals);
* each candidate is refined by damped Newton steps within the limits,
  ``q <- clip(q + J^T (J J^T + lambda^2 I)^-1 e, limits)``, with J and e the
  stacked Jacobians and goal errors of all end effectors;
* if none of them converges, ``fallback_restarts`` more candidates drawn
  uniformly within the joint limits are refined too;
* of the candidates whose largest error is below ``tolerance``, q* is the one
  reached soonest from q0 by a joint-space move at the velocity limits,
  ``argmin max_j |q*_j - q0_j| / v_j`` (with ``avoid_collisions``, of those
  free of self-collision, ``kinematics.self_collisions``);
* if there is none, q* is the candidate with the smallest largest error that
  is free of self-collision, and so are the joint moves to it from q0 (the
  line, and every joint at its velocity limit: ``moves``), whatever
  ``avoid_collisions`` says: a goal set no configuration reaches (hands
  crossed, or farther apart than the arms) must not make the robot drive into
  itself, nor through itself on the way;
* if there is none of those either, the planner rejects the goal set: it
  answers q0 with an infinite largest error (``PlannerConfig.rejection`` says
  why), and the controller node keeps the plan it follows (see
  ``mtpolicy.nodes.planning``).

``time_optimal``: q* is the target of the time-optimal program
(``mtpolicy.time_optimal_program``: the nearest configuration in time that
puts every end effector a level ``L`` inside the tolerance, within the box the
robot reaches in the least number of control periods ``N*``). That target lies
``L`` inside the tolerance, not at the goals: with ``finish_at_goal``, q* is
the target until every end effector is within the tolerance (or the joints
have arrived at the target), then the finish, the target refined onto the
goals by the damped Newton steps of ``ik``, weighted by the velocity limits
(``GoalConfigurationPlanner.finish``, ``PlannerConfig.finishes``; with
``finish_restarts``, from offsets of the target too where that stops short): a
policy that follows q* enters as soon and ends at the goals (a q* that is the
exact solution from the start enters later: its line is longer).
Where the program has no feasible point (a goal set no configuration reaches
within ``tol``, or one its solver misses), q* is the ``ik`` planner's answer
(the closest configuration free of self-collision on an unreachable set, or a
rejection, as ``ik``). The program has no collision constraint, so on a
reachable set its target may be in self-collision: with ``avoid_collisions``,
q* is then the ``ik`` planner's too, and so where the joint moves to the target
collide.

A planner-conditioned policy observes ``q* - q`` (observation segment
``goal_config_error``); its contract carries ``PlannerConfig`` so that any
client runs the same planner (see ``mtpolicy.policy``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal, cast

import numpy as np

from mtpolicy.kinematics import Kinematics, damped_newton, self_collisions
from mtpolicy.time_optimal_program import SolverConfig, TimeOptimalReference


PATH_STEP = 0.1
"""rad (or m): the ``ik`` planner's fallback checks the moves to it from q0 (``moves``) at this spacing."""


@dataclass(frozen=True)
class PlannerConfig:
    """Settings of the goal-configuration planner (part of a planner-conditioned policy's contract)."""

    restarts: int = 24
    """Random candidate configurations besides the start, uniform within the joint limits."""
    local_restarts: int = 0
    """``ik``: random candidates near the start besides those, q0 + d with d uniform in +-``local_range`` per joint
    (drawn once from ``seed``, after the ``restarts``): where the goals lie near q0, the solutions free of
    collision often lie there too (0 in contracts made before it)."""
    fallback_restarts: int = 0
    """``ik``: where none of the candidates (the start, ``restarts``, ``local_restarts``) converges, this many more
    drawn uniformly within the joint limits (once, from ``seed``, after the others) before the closest is taken: a
    few reachable goal sets converge from none of the others (0 in contracts made before it)."""
    local_range: float = 1.0
    """Half-width (rad, or m on a slide joint) of the ``local_restarts`` offsets."""
    iterations: int = 100
    """Damped Newton steps per candidate at most."""
    damping: float = 0.01
    """Damping lambda (m) of the Newton step."""
    tolerance: float = 1e-3
    """A candidate has converged when every end effector is within this distance (m) of its goal."""
    seed: int = 0
    """Seed of the random candidates."""
    margin: float = 0.02
    """Candidates and steps stay this many rad inside the joint limits."""
    avoid_collisions: bool = False
    """A configuration in self-collision (``kinematics.self_collisions``: two geoms of the robot, or one of it and
    the world, in penetration) is never q*: ``ik`` passes over converged candidates in collision, ``time_optimal``
    takes the ``ik`` planner's q* where its target or the move to it is in collision (False in contracts made
    before it: both taken unchecked; the ``ik`` planner's fallback, where nothing converged, is checked whatever
    this says)."""
    algorithm: Literal["ik", "time_optimal"] = "ik"
    """The planner (module docstring): multi-start IK (the settings above), or the time-optimal program (the
    settings below)."""
    reach_tolerance: float | None = None
    """``time_optimal``: the tolerance tol (m) of the program (None: the reach task's, filled in by it)."""
    control_period: float | None = None
    """``time_optimal``: the control period dt (s) of the program (None: the reach task's, filled in by it)."""
    solver: SolverConfig = field(default_factory=SolverConfig)
    """``time_optimal``: the starts and iterations of the program's solver."""
    finish_at_goal: bool = False
    """``time_optimal``: once every end effector is within ``reach_tolerance``, q* becomes its finish (``finish``:
    the program's target refined onto the goals until every end effector is within ``tolerance``), so that the
    policy ends at the goals (False in contracts made before it: q* stays the target, inside the tolerance)."""
    finish_restarts: int = 0
    """``finish_at_goal``: where the target's refinement misses ``tolerance``, or the joint-space line from the target
    to it leaves ``reach_tolerance``, the target + d refined too, for this many offsets d uniform in +-``local_range``
    per joint (drawn once from ``seed``, after the other candidates): the finish is the one of those soonest reached
    from the target that is within ``tolerance`` on a line within ``reach_tolerance`` (the branch the target lies on
    may reach the goals only within the tolerance; 0 in contracts made before it)."""

    def __post_init__(self):
        if isinstance(self.solver, dict):  # a contract or config read back from JSON
            object.__setattr__(self, "solver", SolverConfig(**self.solver))
        bad = [k for k, ok in {"restarts": self.restarts >= 0, "local_restarts": self.local_restarts >= 0,
                               "fallback_restarts": self.fallback_restarts >= 0,
                               "local_range": self.local_range > 0, "iterations": self.iterations > 0,
                               "finish_restarts": self.finish_restarts >= 0,
                               "damping": self.damping > 0, "tolerance": self.tolerance > 0,
                               "margin": self.margin >= 0,
                               "algorithm": self.algorithm in ("ik", "time_optimal"),
                               "reach_tolerance": self.reach_tolerance is None or self.reach_tolerance > 0,
                               "control_period": self.control_period is None or self.control_period > 0,
                               }.items() if not ok]
        if bad:
            raise ValueError("invalid PlannerConfig value(s): " + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad))

    def to_dict(self) -> dict:
        return asdict(self)

    def finishes(self, errors: np.ndarray, travel: np.ndarray) -> np.ndarray:
        """Whether q* is its finish from now on, for end-effector errors (..., n_ee) (m) and the travel left to q*
        (..., ) (s at the velocity limits, ``max_j |q*_j - q_j| / v_j``): ``finish_at_goal``, and every end effector
        within ``reach_tolerance`` or q* within half a control period (arrived: a target on the tolerance's edge
        that a servo's small steady error leaves just outside still gives way to the goals)."""
        return np.logical_and(self.finish_at_goal and self.algorithm == "time_optimal",
                              (errors <= (self.reach_tolerance or 0.0)).all(axis=-1)
                              | (travel <= (self.control_period or 0.0) / 2))

    @property
    def rejection(self) -> str:
        """Why the planner rejects a goal set (answers q0 with an infinite largest error)."""
        if self.algorithm == "time_optimal":
            return ("the time-optimal program found no configuration within the reach tolerance" + (
                ", or its target or the move to it is in self-collision" if self.avoid_collisions else "")
                + ", and every candidate of the ik planner, or a joint move to it from the start, is in self-collision")
        return "every candidate configuration, or a joint move to it from the start, is in self-collision"

    @property
    def exact_within(self) -> float:
        """Largest end-effector error (m) of a plan that reaches its goal set: ``tolerance`` of IK, the reach
        tolerance of the time-optimal program (which refuses to run without one)."""
        return cast(float, self.reach_tolerance) if self.algorithm == "time_optimal" else self.tolerance


class GoalConfigurationPlanner:
    """(start configuration, goal set) -> goal configuration q* and its largest end-effector error."""

    CACHE_SIZE = 4096
    """Goal sets whose plans are kept (a planner is a function of (q0, goals): evaluations repeat goal sets)."""

    def __init__(self, kin: Kinematics, config: PlannerConfig = PlannerConfig()):
        self.kin, self.config = kin, config
        self.time_optimal = None
        if config.algorithm == "time_optimal":
            if config.reach_tolerance is None or config.control_period is None:
                raise ValueError("PlannerConfig: the time_optimal planner needs reach_tolerance and control_period")
            self.time_optimal = TimeOptimalReference(kin, config.control_period, config.reach_tolerance,
                                                     config.solver)
        self._cache: dict[bytes, tuple[np.ndarray, float]] = {}
        lim, search = kin.spec.joint_limits, kin.spec.search_limits
        self.low = np.maximum(lim[:, 0] + config.margin, search[:, 0])
        self.high = np.minimum(lim[:, 1] - config.margin, search[:, 1])
        rng = np.random.default_rng(config.seed)
        self.candidates = rng.uniform(self.low, self.high, size=(config.restarts, kin.spec.n_joints))
        self.local_offsets = rng.uniform(-config.local_range, config.local_range,
                                         size=(config.local_restarts, kin.spec.n_joints))
        self.finish_offsets = rng.uniform(-config.local_range, config.local_range,
                                          size=(config.finish_restarts, kin.spec.n_joints))
        self.fallback_candidates = rng.uniform(self.low, self.high, size=(config.fallback_restarts, kin.spec.n_joints))
        self.velocity_limits = kin.spec.velocity_limits

    def refine(self, q: np.ndarray, goals: np.ndarray, timed: bool = False) -> tuple[np.ndarray, float]:
        """Damped Newton steps from q towards the goal set (n_ee, 3); the result and its largest error (m).

        ``q <- clip(q + W J^T (J W J^T + lambda^2 I)^-1 e)`` with ``W = I``, or with ``timed``
        ``W = diag(v / max(v))^2``: each step the least in time at the velocity limits v rather than in joint
        distance, so a slow joint (a torso lift) moves only where the others cannot reach."""
        c = self.config
        weight = (self.velocity_limits / self.velocity_limits.max()) ** 2 if timed else None
        return damped_newton(self.kin, q, goals, self.low, self.high, c.damping, c.iterations, c.tolerance, weight)

    def plan(self, q0: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, float]:
        """q* for goals (n_ee, 3) from start q0 (n_joints,), and its largest end-effector error (m)."""
        q0 = np.asarray(q0, dtype=np.float64)
        goals = np.asarray(goals, dtype=np.float64).reshape(-1, 3)
        key = q0.tobytes() + goals.tobytes()
        if key not in self._cache:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = self._time_optimal(q0, goals) if self.time_optimal else self._ik(q0, goals)
        q, worst = self._cache[key]
        return q.copy(), worst

    def _ik(self, q0: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, float]:
        """The ``ik`` planner's q* and its largest error; (q0, inf) if it rejects the goal set."""
        tolerance = self.config.tolerance
        found = [self.refine(start, goals) for start in np.vstack([q0[None], self.candidates, q0 + self.local_offsets])]
        if all(worst >= tolerance for _, worst in found):
            found += [self.refine(start, goals) for start in self.fallback_candidates]
        reaching = sorted((c for c in found if c[1] < tolerance),
                          key=lambda c: np.max(np.abs(c[0] - q0) / self.velocity_limits))
        for q, worst in reaching:
            if not self.config.avoid_collisions or not self_collisions(self.kin, q)[0]:
                return q, worst
        for q, worst in sorted((c for c in found if c[1] >= tolerance), key=lambda c: c[1]):
            if not self_collisions(self.kin, q)[0] and not self_collisions(self.kin, self.moves(q0, q)).any():
                return q, worst
        return q0.copy(), math.inf

    def moves(self, q0: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Points of the two joint moves from q0 to q a joint servo makes: the joint-space line (joints
        synchronised) and every joint at its velocity limit until it arrives (joints independent),
        ``q0 + s (q - q0)`` and ``q0 + sign(q - q0) min(|q - q0|, s T v)`` with ``T = max_j |q_j - q0_j| / v_j``,
        at ``s = k / N``, ``k = 1..N``, ``N = max(1, ceil(T max_j v_j / PATH_STEP))`` (no joint moves more than
        ``PATH_STEP`` between two points)."""
        d = q - q0
        seconds = float(np.max(np.abs(d) / self.velocity_limits))
        s = self._path_fractions(seconds)
        return np.vstack([q0 + s * d, q0 + np.sign(d) * np.minimum(np.abs(d), s * seconds * self.velocity_limits)])

    def _path_fractions(self, seconds: float) -> np.ndarray:
        """(N, 1) fractions ``k / N`` of a move of ``seconds`` at the velocity limits (``moves``)."""
        n = max(1, math.ceil(seconds * np.max(self.velocity_limits) / PATH_STEP))
        return np.arange(1, n + 1)[:, None] / n

    def _line_within(self, q0: np.ndarray, q: np.ndarray, goals: np.ndarray) -> bool:
        """Whether every end effector stays within the reach tolerance of its goal (n_ee, 3) on the joint-space line
        from q0 to q (the points of ``moves``)."""
        s = self._path_fractions(float(np.max(np.abs(q - q0) / self.velocity_limits)))
        errors = np.linalg.norm(self.kin.ee_positions_batch(q0 + s * (q - q0)) - goals, axis=-1)
        return bool((errors <= cast(float, self.config.reach_tolerance)).all())

    def _time_optimal(self, q0: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, float]:
        """The ``time_optimal`` planner's q* (the program's target) and its largest error. Where the program finds
        no target (an unreachable goal set, or one its solver misses), and with ``avoid_collisions`` where the target
        or a joint move to it (``moves``) is in self-collision, the ``ik`` planner's q* instead (the soonest reached
        of its converged candidates free of self-collision, else the closest free one), (q0, inf) if that rejects
        the goal set too."""
        assert self.time_optimal is not None, "the time_optimal algorithm builds its program"
        optimum = self.time_optimal.solve(q0, goals)
        if not math.isfinite(optimum.worst_error) or self.config.avoid_collisions and self_collisions(
                self.kin, np.vstack([optimum.target, self.moves(q0, optimum.target)])).any():
            return self._ik(q0, goals)
        return optimum.target, optimum.worst_error

    def finish(self, q0: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, float]:
        """What q* becomes once ``config.finishes``, and its largest error (with ``finish_at_goal``; a rejected plan
        stays rejected): the plan refined onto the goals by ``refine`` (``timed``: the finish nearest the plan in
        time); where that misses ``tolerance`` or its line leaves the reach tolerance, the soonest reached of the
        ``finish_restarts`` refinements that do neither; else the first where it lowers the plan's largest error;
        else the plan. With ``avoid_collisions``, only finishes free of self-collision."""
        q, worst = self.plan(q0, goals)
        if not (self.config.finish_at_goal and self.time_optimal is not None and math.isfinite(worst)):
            return q, worst
        goals = np.asarray(goals, dtype=np.float64).reshape(-1, 3)

        def free(c: np.ndarray) -> bool:
            return not (self.config.avoid_collisions and self_collisions(self.kin, c)[0])

        def lands(candidate: tuple[np.ndarray, float]) -> bool:
            return candidate[1] < self.config.tolerance and self._line_within(q, candidate[0], goals) and free(
                candidate[0])

        exact, exact_worst = self.refine(q, goals, timed=True)
        if len(self.finish_offsets) and not lands((exact, exact_worst)):
            landed = [c for c in (self.refine(q + d, goals, timed=True) for d in self.finish_offsets) if lands(c)]
            if landed:
                return min(landed, key=lambda c: float(np.max(np.abs(c[0] - q) / self.velocity_limits)))
        if exact_worst < worst and free(exact):
            return exact, exact_worst
        return q, worst

    def plan_batch(self, q0: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """(B, n_joints) goal configurations for starts (B, n_joints) and goal sets (B, n_ee, 3)."""
        return np.stack([self.plan(q, g)[0] for q, g in zip(q0, goals)])

    def finish_batch(self, q0: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """(B, n_joints) finishes (``finish``) for starts (B, n_joints) and goal sets (B, n_ee, 3)."""
        return np.stack([self.finish(q, g)[0] for q, g in zip(q0, goals)])
