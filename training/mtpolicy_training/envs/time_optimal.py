"""The time-optimal reference of reach: the least time any controller needs, per goal set.

Under the stack's model of a robot (a velocity command per control period
``dt``, ``|u_j| <= v_j``, joint limits), the configurations reachable from
``q0`` after ``N`` periods are the box ``|q_j - q0_j| <= N dt v_j`` within the
limits. The least time that puts every end effector within ``tolerance`` of
its goal is therefore the static non-convex program

    T* = min_{q, t}  t   s.t.  |q_j - q0_j| <= t v_j,  ||g_i - p_i(q)|| <= tol,  q within the limits

and the bound is ``N* dt`` with ``N* = ceil(T* / dt)`` whole periods. It is
solved by SLSQP (analytic gradients: ``d||g_i - p_i||^2 / dq = -2 (g_i - p_i)^T J_i``)
from several starts: the damped-Newton IK solutions
(``GoalConfigurationPlanner.refine``) of ``q0`` and of configurations drawn
around it and over the limits, the ``refine_starts`` ones nearest in time.
Local optimization gives an upper bound on T*; the published bound is the best
found over the starts (``SolverConfig`` fixes how many).

The teacher of the time-optimal policy goes deeper than the bound needs when
the rounding leaves slack, and picks one configuration where many attain T*
(the joints off the bottleneck have slack, so a solver's q is arbitrary in
them and unlearnable). Its *target* is the nearest configuration, in time, that
puts every end effector within the level ``L`` inside the ``N*``-period box,

    w* = min_{q in B} max_i ||g_i - p_i(q)||,   L = max(w*, target_depth * tol),
    q_T = argmin_{q in B} ||(q - q0) / v||^2  s.t.  ||g_i - p_i(q)|| <= L,

with ``B`` the ``N*``-period box within the limits. The teacher
(``algos/dagger.py``, ``time_optimal``) follows the straight joint-space line to
q_T at the bottleneck joint's speed, which arrives in ``N*`` periods, and
re-solves from every state it labels: q_T stays the target from every point of
that line (the nearest point of a set to q0 is also the nearest to any point
between them). A goal set already within tolerance has ``N* = 0`` and the
target ``q0``.

CLI: the bound on the goal sets the evaluator draws, for any robot and goal
distribution::

    python -m mtpolicy_training.envs.time_optimal --env.robot humanoid --goal-sets 100 --seed 20240518
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from mtpolicy.kinematics import Kinematics
from mtpolicy.planner import GoalConfigurationPlanner, PlannerConfig
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import VALIDATION_SEED

TIME_SLACK = 1e-9
"""s: T* within this of a whole number of periods counts as that number (rounding noise)."""


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
        self.low, self.high = spec.joint_limits[:, 0].astype(np.float64), spec.joint_limits[:, 1].astype(np.float64)
        self.ik = GoalConfigurationPlanner(kin, PlannerConfig(restarts=0, tolerance=tolerance * 0.05, margin=0.0))
        rng = np.random.default_rng(config.seed)  # the same starts for every solve: a function of (q0, goals)
        self._local_offsets = rng.uniform(-config.local_range, config.local_range, (config.local_starts, n))
        self._global_starts = rng.uniform(self.low, self.high, (config.global_starts, n))
        self._last_key, self._last = b"", (np.zeros(0), np.zeros(0))
        # constraint rows of |q - q0| <= t v as  A [q, t] + b >= 0
        self._box_rows = np.block([[-np.eye(n), self.v[:, None]], [np.eye(n), self.v[:, None]]])

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
        b = np.concatenate([q0, -q0])
        jac_t = np.zeros((goals.shape[0], 1))
        constraints = [
            {"type": "ineq", "fun": lambda x: self._box_rows @ x + b, "jac": lambda x: self._box_rows},
            {"type": "ineq", "fun": lambda x: tol2 - errors(x)[0], "jac": lambda x: np.hstack([-errors(x)[1], jac_t])},
        ]
        x0 = np.append(start, np.max(np.abs(start - q0) / self.v))
        x = self._minimize_last(x0, list(zip(self.low, self.high)) + [(0.0, None)], constraints, 1e-10)
        q = np.clip(x[:n], self.low, self.high)
        if self._squared_errors(q, goals)[0].max() > tol2 * (1 + 1e-6):
            return None
        return float(np.max(np.abs(q - q0) / self.v)), q

    def _box(self, q0: np.ndarray, periods: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the configurations reachable in ``periods`` within the limits."""
        reach = periods * self.dt * self.v
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
    def _starts(self, q0: np.ndarray, goals: np.ndarray) -> list[np.ndarray]:
        """IK solutions from q0 and the drawn configurations, nearest in time first (q0's own first of all)."""
        c = self.config
        local = np.clip(q0 + self._local_offsets, self.low, self.high)
        solutions = [self.ik.refine(s, goals) for s in np.vstack([q0[None], local, self._global_starts])]
        own, others = solutions[0][0], solutions[1:]
        converged = [q for q, worst in others if worst <= self.tolerance]
        converged.sort(key=lambda q: np.max(np.abs(q - q0) / self.v))
        return [own] + converged[: max(0, c.refine_starts - 1)]

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
        for start in self._starts(q0, goals) if best is None else []:
            found = self._minimum_time(q0, goals, start)
            if found is not None and (best is None or found[0] < best[0]):
                best = found
        if best is None:
            return TimeOptimum(math.inf, -1, q0, q0, math.inf)
        seconds, q = best
        periods = max(1, math.ceil(seconds / self.dt - TIME_SLACK / self.dt))
        deepest = self._deepest(q0, goals, periods, q if warm is None else warm)
        level = max(float(np.sqrt(self._squared_errors(deepest, goals)[0].max())),
                    self.config.target_depth * self.tolerance)
        target = self._nearest(q0, goals, periods, level, deepest if warm is None else warm, deepest)
        return TimeOptimum(seconds, periods, q, target, float(np.sqrt(self._squared_errors(target, goals)[0].max())))


# -- the bound of an evaluator's goal sets ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BoundTable:
    """The bound (whole periods) of every goal set the evaluator draws from one seed."""

    key: dict
    """What the table is of: robot, end effectors, distribution, tolerance, control period, seed, count, solver."""
    periods: np.ndarray
    """(n,) N* per goal set (-1 where no feasible configuration was found)."""
    seconds: np.ndarray
    """(n,) continuous T* per goal set (s)."""
    targets: np.ndarray = field(repr=False)
    """(n, n_joints) the teacher's target configuration per goal set."""

    @property
    def bound_seconds(self) -> np.ndarray:
        """N* dt per goal set (s)."""
        return self.periods * self.key["control_period"]


def _solve_chunk(args: tuple) -> list[tuple[float, int, list[float], float]]:
    env_config, tolerance, solver, q0, goals = args
    env = ReachVectorEnv(1, env_config)
    reference = TimeOptimalReference(env.kin, env_config.control_period, tolerance, solver)
    out = []
    for q, g in zip(q0, goals):
        opt = reference.solve(q, g)
        out.append((opt.seconds, opt.periods, opt.target.tolist(), opt.worst_error))
    return out


def bound_table(env_config: ReachConfig, n_goal_sets: int, seed: int, tolerance: float | None = None,
                solver: SolverConfig = SolverConfig(), cache_dir: str | Path | None = None,
                workers: int = 1) -> BoundTable:
    """The bound of the ``n_goal_sets`` goal sets ``evaluate_reach`` draws from ``seed`` for ``env_config``.

    With ``cache_dir``, the table is read from (or written to) a JSON file named by its key, so the test seeds'
    tables are solved once.
    """
    config = replace(env_config, planned=False)
    env = ReachVectorEnv(n_goal_sets, config, time_limit=False)
    env.reset(seed=seed)
    q0, goals = env.joint_positions(), env.goals
    tolerance = config.reach_tolerance if tolerance is None else tolerance
    key = {"robot": config.robot, "end_effectors": list(env.spec.end_effectors),
           "goal_distribution": config.goal_distribution, "goal_joint_range": config.goal_joint_range,
           "tolerance": tolerance, "control_period": config.control_period, "seed": seed,
           "n_goal_sets": n_goal_sets, "solver": asdict(solver)}
    path = None
    if cache_dir is not None:
        name = f"{Path(config.robot).stem}-{config.goal_distribution}-{seed}-{n_goal_sets}.json"
        path = Path(cache_dir) / name
        if path.is_file():
            stored = json.loads(path.read_text())
            if stored["key"] == key:
                return BoundTable(key, np.array(stored["periods"]), np.array(stored["seconds"]),
                                  np.array(stored["targets"]))
    chunks = np.array_split(np.arange(n_goal_sets), max(1, workers * 4))
    jobs = [(config, tolerance, solver, q0[c], goals[c]) for c in chunks if len(c)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            rows = [r for chunk in pool.map(_solve_chunk, jobs) for r in chunk]
    else:
        rows = [r for job in jobs for r in _solve_chunk(job)]
    seconds, periods, targets, _ = zip(*rows)
    table = BoundTable(key, np.array(periods), np.array(seconds), np.array(targets))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "periods": list(map(int, periods)), "seconds": list(seconds),
                                   "targets": [list(t) for t in targets]}))
        os.replace(tmp, path)
    return table


@dataclass
class BoundArgs:
    """The time-optimal bound of an evaluator's goal sets."""

    env: ReachConfig = field(default_factory=ReachConfig)
    """The reach task (robot, end effectors, goal distribution, tolerance)."""
    goal_sets: int = 100
    """Goal sets of the seed."""
    seed: int = VALIDATION_SEED
    """The evaluator's seed (a validation seed by default)."""
    solver: SolverConfig = field(default_factory=SolverConfig)
    """Starts and iterations of the solver."""
    workers: int = 1
    """Processes solving in parallel."""
    cache_dir: str | None = None
    """Folder of cached tables (read if present, else written)."""


def main(argv: list[str] | None = None) -> None:
    """Print the bound's distribution over the goal sets of a seed."""
    import time

    import tyro

    args = tyro.cli(BoundArgs, args=argv)
    start = time.process_time()
    table = bound_table(args.env, args.goal_sets, args.seed, solver=args.solver, cache_dir=args.cache_dir,
                        workers=args.workers)
    cpu = time.process_time() - start
    ok = table.periods >= 0
    bound = table.bound_seconds[ok]
    print(f"{args.env.robot} {args.env.goal_distribution}, seed {args.seed}: {ok.sum()}/{len(ok)} goal sets solved; "
          f"bound (s) median {np.median(bound):.3f} p90 {np.percentile(bound, 90):.3f} max {bound.max():.3f}; "
          f"continuous T* median {np.median(table.seconds[ok]):.3f}; CPU {cpu / len(ok):.3f} s per goal set"
          + (" (this process)" if args.workers > 1 else ""))


if __name__ == "__main__":
    main()
