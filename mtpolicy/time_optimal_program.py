"""The time-optimal program of reaching a goal set: its bound and its target (``TimeOptimalReference``).

Min time first rather than IK first. Under the stack's model of a robot (a velocity command per control period
``dt``, ``|u_j| <= v_j``, each command within ``a_j dt`` of the previous
one, starting at rest; joint limits), the configurations reachable from ``q0``
after ``N`` periods are the box ``|q_j - q0_j| <= D_j(N dt)`` within the limits,

    D_j(N dt) = dt sum_{i=1..N} min(v_j, i a_j dt)      (N dt v_j without an acceleration limit),

which ``D_j(t)`` continues between whole periods: ``a_j t (t + dt) / 2`` while
the command ramps up (``t <= K_j dt``, ``K_j = floor(v_j / (a_j dt))``), then
``v_j t - c_j`` with ``c_j = K_j dt v_j - a_j dt^2 K_j (K_j + 1) / 2``. The
least time that puts every end effector within ``tol`` (the reach tolerance)
of its goal is the static non-convex program

    T* = min_{q, t}  t   s.t.  |q_j - q0_j| <= D_j(t),  ||g_i - p_i(q)|| <= tol,  q within the limits

with ``N* = ceil(T* / dt)`` whole periods (``D_j`` increases, so the box of
``N`` periods holds a solution exactly when ``N dt >= T*``). It is solved by SLSQP (analytic
gradients ``d||g_i - p_i||^2 / dq = -2 (g_i - p_i)^T J_i``) from several
starts: the damped-Newton IK solutions of ``q0`` and of configurations drawn
around it and over the limits, the ``refine_starts`` ones nearest in time
(``SolverConfig``). Where many configurations attain T*, q* is the nearest one
in time that puts every end effector within the level ``L`` inside the
``N*``-period box ``B``,

    w* = min_{q in B} max_i ||g_i - p_i(q)||,   L = max(w*, target_depth * tol),
    q* = argmin_{q in B} ||(q - q0) / v||^2  s.t.  ||g_i - p_i(q)|| <= L,

so the joint-space line to q* at the bottleneck joint's speed arrives in
``N*`` periods. A goal set already within tolerance has ``N* = 0`` and q* = q0.
The bound ``N* dt`` is also the time-optimal reference of the evaluator
(``mtpolicy_training.envs.time_optimal``), and the target q* that of the
goal-configuration planner ``time_optimal`` (``mtpolicy.planner``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mtpolicy.joint_travel import JointTravel
from mtpolicy.kinematics import Kinematics, damped_newton


TIME_SLACK = 1e-9
"""s: T* within this of a whole number of periods counts as that number (rounding noise)."""
IK_STEPS, IK_DAMPING = 100, 0.01
"""The damped Newton steps (at most) and their damping (m) of the IK starts."""


@dataclass(frozen=True)
class SolverConfig:
    """How the time-optimal program is solved (part of a bound table's key)."""

    local_starts: int = 24
    """IK starts q0 + d, d drawn uniformly within ``local_range`` rad per joint (the same d for every q0)."""
    local_range: float = 1.0
    """Half-width (rad) of the box around q0 the local starts come from."""
    global_starts: int = 24
    """IK starts drawn uniformly within the joint limits."""
    refine_starts: int = 6
    """SLSQP runs: from the IK solutions nearest in time to q0 (q0's own first)."""
    max_iterations: int = 200
    """SLSQP iterations per start at most."""
    seed: int = 0
    """Seed of the drawn starts, drawn once: the solution is a function of (q0, goals)."""
    target_depth: float = 0.5
    """The teacher's target puts every end effector within this fraction of the tolerance where the bound's box
    allows it (else as deep as the box allows)."""
    rest_to_rest: bool = False
    """Each joint's travel is its least time from rest to rest (``JointTravel`` with ``stop``, continuous time)
    rather than from rest through the target with commands ramped per period: a bound that also stops the joints."""


@dataclass(frozen=True)
class TimeOptimum:
    """The solution of the time-optimal program for one goal set."""

    seconds: float
    """Continuous optimum T* (s) found."""
    periods: int
    """N* = ceil(T* / dt): the bound in whole control periods."""
    q: np.ndarray
    """A configuration attaining T* (every end effector within tolerance)."""
    target: np.ndarray
    """The teacher's target: the nearest configuration within the N*-period box that puts the end effectors
    within the level L (module docstring)."""
    worst_error: float
    """Largest end-effector error (m) at ``target``."""


class TimeOptimalReference:
    """(start configuration, goal set) -> the time-optimal bound and configurations, for one robot."""

    def __init__(self, kin: Kinematics, control_period: float, tolerance: float, config: SolverConfig = SolverConfig()):
        self.kin, self.dt, self.tolerance, self.config = kin, control_period, tolerance, config
        spec, n = kin.spec, kin.spec.n_joints
        self.v = spec.velocity_limits.astype(np.float64)
        self.travel = JointTravel(self.v, spec.acceleration_limits, control_period, config.rest_to_rest)
        self.low, self.high = spec.joint_limits[:, 0].astype(np.float64), spec.joint_limits[:, 1].astype(np.float64)
        self._ik_low, self._ik_high = spec.search_limits.T
        rng = np.random.default_rng(config.seed)  # the same starts for every solve: a function of (q0, goals)
        self._local_offsets = rng.uniform(-config.local_range, config.local_range, (config.local_starts, n))
        self._global_starts = rng.uniform(self.low, self.high, (config.global_starts, n))
        self._last_key, self._last = b"", (np.zeros(0), np.zeros(0))
        self._signs = np.concatenate([-np.eye(n), np.eye(n)])
        """Rows of the box constraint D(t) - (q - q0) >= 0 and D(t) + (q - q0) >= 0 in q."""

    # -- the program ---------------------------------------------------------------------------------------------
    def _squared_errors(self, q: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """||g_i - p_i(q)||^2 per end effector and their gradients (n_ee, n_joints); the last call's are kept,
        since SLSQP asks for a constraint and its Jacobian at the same point."""
        key = q.tobytes() + goals.tobytes()
        if key != self._last_key:
            ee, jac = self.kin.ee_positions_and_jacobians(q)
            err = goals - ee
            self._last_key, self._last = key, ((err ** 2).sum(axis=1), -2.0 * np.einsum("ik,ikj->ij", err, jac))
        return self._last

    def _minimize_last(self, x0: np.ndarray, bounds: list, constraints: list, ftol: float) -> np.ndarray:
        """SLSQP on ``min x[-1]`` (an epigraph variable: the time, or the largest squared error)."""
        from scipy.optimize import minimize  # here, not on import: 0.3 s of the start of every controller

        grad = np.zeros(len(x0))
        grad[-1] = 1.0
        return minimize(lambda x: x[-1], x0, jac=lambda x: grad, bounds=bounds, constraints=constraints,
                        method="SLSQP", options={"maxiter": self.config.max_iterations, "ftol": ftol}).x

    def _errors_of(self, goals: np.ndarray, n: int):  # noqa: ANN202 - a closure for SLSQP
        """``_squared_errors`` of the first n entries of an SLSQP variable x = [q, epigraph]."""
        return lambda x: self._squared_errors(np.ascontiguousarray(x[:n]), goals)

    def _minimum_time(self, q0: np.ndarray, goals: np.ndarray, start: np.ndarray) -> tuple[float, np.ndarray] | None:
        """Local solution (T, q) of the program from ``start``, or None if SLSQP ends infeasible."""
        n, tol2 = len(q0), self.tolerance ** 2
        errors = self._errors_of(goals, n)
        jac_t = np.zeros((goals.shape[0], 1))
        travel = self.travel
        constraints = [
            {"type": "ineq", "fun": lambda x: np.tile(travel.distance(x[-1]), 2) + self._signs @ (x[:n] - q0),
             "jac": lambda x: np.hstack([self._signs, np.tile(travel.slope(x[-1]), 2)[:, None]])},
            {"type": "ineq", "fun": lambda x: tol2 - errors(x)[0], "jac": lambda x: np.hstack([-errors(x)[1], jac_t])},
        ]
        x0 = np.append(start, self.seconds_to(start, q0))
        x = self._minimize_last(x0, list(zip(self.low, self.high)) + [(0.0, None)], constraints, 1e-10)
        q = np.clip(x[:n], self.low, self.high)
        if self._squared_errors(q, goals)[0].max() > tol2 * (1 + 1e-6):
            return None
        return self.seconds_to(q, q0), q

    def seconds_to(self, q: np.ndarray, q0: np.ndarray) -> float:
        """Least time (s) to move from q0 to q: the slowest joint's ``JointTravel.time``."""
        return float(np.max(self.travel.time(q - q0)))

    def _box(self, q0: np.ndarray, periods: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the configurations reachable in ``periods`` within the limits."""
        reach = self.travel.distance(periods * self.dt)
        return np.maximum(self.low, q0 - reach), np.minimum(self.high, q0 + reach)

    def _deepest(self, q0: np.ndarray, goals: np.ndarray, periods: int, start: np.ndarray) -> np.ndarray:
        """argmin over the ``periods`` box of the largest squared end-effector error, from ``start`` (in the box)."""
        n = len(q0)
        low, high = self._box(q0, periods)
        start = np.clip(start, low, high)
        errors = self._errors_of(goals, n)
        jac_s = np.ones((goals.shape[0], 1))
        constraints = [{"type": "ineq", "fun": lambda x: x[-1] - errors(x)[0],
                        "jac": lambda x: np.hstack([-errors(x)[1], jac_s])}]
        start_worst = self._squared_errors(start, goals)[0].max()
        x = self._minimize_last(np.append(start, start_worst), list(zip(low, high)) + [(0.0, None)], constraints,
                                1e-10)
        q = np.clip(x[:n], low, high)
        return q if self._squared_errors(q, goals)[0].max() <= start_worst else start

    def _nearest(self, q0: np.ndarray, goals: np.ndarray, periods: int, level: float, start: np.ndarray,
                 fallback: np.ndarray) -> np.ndarray:
        """argmin over the ``periods`` box of ||(q - q0) / v||^2 with every end effector within ``level`` (m), from
        ``start``; ``fallback`` (feasible) if SLSQP ends infeasible."""
        from scipy.optimize import minimize

        low, high = self._box(q0, periods)
        w = 1.0 / self.v ** 2
        constraints = [{"type": "ineq", "fun": lambda q: level ** 2 - self._squared_errors(q, goals)[0],
                        "jac": lambda q: -self._squared_errors(q, goals)[1]}]
        result = minimize(lambda q: float(np.sum(w * (q - q0) ** 2)), np.clip(start, low, high),
                          jac=lambda q: 2.0 * w * (q - q0), bounds=list(zip(low, high)), constraints=constraints,
                          method="SLSQP", options={"maxiter": self.config.max_iterations, "ftol": 1e-9})
        q = np.clip(result.x, low, high)
        return q if self._squared_errors(q, goals)[0].max() <= level ** 2 * (1 + 1e-4) else fallback

    # -- starts and the whole solve ------------------------------------------------------------------------------
    def ik(self, q: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, float]:
        """The damped Newton IK of the starts from q (within the limits, and +-pi) onto the goal set, to 5 % of the
        tolerance; the result and its largest error (m)."""
        return damped_newton(self.kin, q, goals, self._ik_low, self._ik_high, IK_DAMPING, IK_STEPS,
                             self.tolerance * 0.05)

    def _starts(self, q0: np.ndarray, goals: np.ndarray) -> list[np.ndarray]:
        """IK solutions from q0 and the drawn configurations, nearest in time first (q0's own first of all)."""
        c = self.config
        local = np.clip(q0 + self._local_offsets, self.low, self.high)
        solutions = [self.ik(s, goals) for s in np.vstack([q0[None], local, self._global_starts])]
        own, others = solutions[0][0], solutions[1:]
        converged = [q for q, worst in others if worst <= self.tolerance]
        converged.sort(key=lambda q: self.seconds_to(q, q0))
        return [own] + converged[: max(0, c.refine_starts - 1)]

    def local_solutions(self, q0: np.ndarray, goals: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """The program's local solutions (T, q) from every start of the multi-start solve, fastest first."""
        found = [self._minimum_time(q0, goals, start) for start in self._starts(q0, goals)]
        return sorted((f for f in found if f is not None), key=lambda f: f[0])

    def solve(self, q0: np.ndarray, goals: np.ndarray, warm: np.ndarray | None = None) -> TimeOptimum:
        """The time-optimal bound of reaching ``goals`` (n_ee, 3) from ``q0`` (n_joints,); with ``warm`` (a nearby
        solution: the previous target of a trajectory), SLSQP starts from it alone, and from every start of the
        multi-start solve if that fails."""
        q0 = np.asarray(q0, dtype=np.float64)
        goals = np.asarray(goals, dtype=np.float64).reshape(-1, 3)
        start_error = float(np.sqrt(self._squared_errors(q0, goals)[0].max()))
        if start_error <= self.tolerance:
            return TimeOptimum(0.0, 0, q0, q0, start_error)
        best = None if warm is None else self._minimum_time(q0, goals, warm)
        if best is None:
            best = next(iter(self.local_solutions(q0, goals)), None)
        if best is None:
            return TimeOptimum(math.inf, -1, q0, q0, math.inf)
        return self.optimum(q0, goals, *best, warm)

    def optimum(self, q0: np.ndarray, goals: np.ndarray, seconds: float, q: np.ndarray,
                warm: np.ndarray | None = None) -> TimeOptimum:
        """The bound N* and the target q* of the local solution (T*, q) (the module docstring's level L)."""
        periods = max(1, math.ceil(seconds / self.dt - TIME_SLACK / self.dt))
        deepest = self._deepest(q0, goals, periods, q if warm is None else warm)
        level = max(float(np.sqrt(self._squared_errors(deepest, goals)[0].max())),
                    self.config.target_depth * self.tolerance)
        target = self._nearest(q0, goals, periods, level, deepest if warm is None else warm, deepest)
        return TimeOptimum(seconds, periods, q, target, float(np.sqrt(self._squared_errors(target, goals)[0].max())))
