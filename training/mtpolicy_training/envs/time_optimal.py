"""The time-optimal reference of reach: the least time any controller needs, per goal set.

The program and its solver are the runtime's ``time_optimal`` planner
(``mtpolicy.time_optimal_program``: ``TimeOptimalReference``): under the stack's model of a
robot (its velocity and acceleration limits, which the reach env and the
controller node apply alike) the least time T* that puts every end effector
within tolerance of its goal, rounded up to whole control periods, is the bound
``N* dt``. Local
optimization gives an upper bound on T*; the published bound is the best found
over the solver's starts (``SolverConfig`` fixes how many). Its target is the
closed-loop time-optimal controller's (``TimeOptimalController``, the DAgger teacher ``time_optimal``).

This module gives the bound of the goal sets the evaluator draws, cached per
seed, and a CLI for any robot and goal distribution::

    python -m mtpolicy_training.envs.time_optimal --robot humanoid --episodes 100 --seed 20240518
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from mtpolicy.observation import observe
from mtpolicy.kinematics import path_collides
from mtpolicy.time_optimal_program import SolverConfig, TimeOptimalReference, TimeOptimum
from mtpolicy_training.core.files import write_atomically
from mtpolicy_training.core.row_workers import process_pool
from mtpolicy_training.envs.reach import ReachConfig, ReachOptions, ReachVectorEnv
from mtpolicy_training.envs.seeds import VALIDATION_SEED


@dataclass(frozen=True)
class BoundTable:
    """The bound (whole periods) of every goal set the evaluator draws from one seed."""

    key: dict
    """What the table is of: robot, end effectors, distribution, tolerance, control period, seed, count, solver."""
    periods: np.ndarray
    """(n,) N* per goal set (-1 where no feasible configuration was found)."""
    seconds: np.ndarray
    """(n,) continuous T* per goal set (s)."""

    @property
    def bound_seconds(self) -> np.ndarray:
        """N* dt per goal set (s)."""
        return self.periods * self.key["control_period"]


def bound_solver(solver: SolverConfig) -> dict:
    """The solver settings the bound depends on (``target_depth`` only places the teacher's target inside the
    bound's box): a bound table's key, and what a reach table's rows record of their bound. ``rest_to_rest`` is
    recorded only when on, so the tables solved before it existed keep their keys."""
    return {k: v for k, v in asdict(solver).items() if k != "target_depth" and (k != "rest_to_rest" or v)}


def goal_sets_sha256(starts: np.ndarray, goals: np.ndarray) -> str:
    """SHA-256 of goal sets and their start configurations, each value rounded to 1e-9 (-0 as 0)."""
    values = np.round(np.concatenate([np.ravel(starts), np.ravel(goals)]), 9) + 0.0
    return hashlib.sha256(values.tobytes()).hexdigest()


def drawn_goal_sets(env_config: ReachConfig, n_goal_sets: int, seed: int) -> ReachVectorEnv:
    """An env of ``env_config`` (unplanned) reset to the ``n_goal_sets`` goal sets ``evaluate_reach`` draws from
    ``seed``."""
    env = ReachVectorEnv(n_goal_sets, replace(env_config, planned=False), time_limit=False)
    env.reset(seed=seed)
    return env


def drawn_goal_sets_sha256(env_config: ReachConfig, n_goal_sets: int, seed: int) -> str:
    """``goal_sets_sha256`` of the ``n_goal_sets`` goal sets ``evaluate_reach`` draws from ``seed``."""
    env = drawn_goal_sets(env_config, n_goal_sets, seed)
    return goal_sets_sha256(env.joint_positions(), env.goals)


def goal_sets_key(config: ReachConfig, env: ReachVectorEnv, tolerance: float, seed: int, n_goal_sets: int) -> dict:
    """What a cached table of the evaluator's goal sets is of: the robot, its end effectors and limits, the goal
    distribution, the tolerance, the control period, the seed, the number of goal sets and the goal sets themselves
    (``env`` just reset to them: ``goal_sets_sha256``, so a change in how they are drawn is a new table)."""
    return {"robot": config.robot, "end_effectors": list(env.spec.end_effectors),
            "goal_distribution": config.goal_distribution, "goal_joint_range": config.goal_joint_range,
            "tolerance": tolerance, "control_period": config.control_period, "seed": seed,
            "n_goal_sets": n_goal_sets, "velocity_limits": env.spec.velocity_limits.tolist(),
            "acceleration_limits": [a if np.isfinite(a) else None for a in env.spec.acceleration_limits.tolist()],
            "goal_sets_sha256": goal_sets_sha256(env.joint_positions(), env.goals)}


def read_table(path: Path, key: dict) -> dict | None:
    """The table stored at ``path`` if it is one of ``key``, else None (none there, or one of other goal sets or
    settings)."""
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    return stored if stored["key"] == key else None


def _solve_chunk(args: tuple) -> list[tuple[float, int]]:
    env_config, tolerance, solver, q0, goals = args
    env = ReachVectorEnv(1, env_config)
    reference = TimeOptimalReference(env.kin, env_config.control_period, tolerance, solver)
    out = []
    for q, g in zip(q0, goals):
        opt = reference.solve(q, g)
        out.append((opt.seconds, opt.periods))
    return out


def bound_table(env_config: ReachConfig, n_goal_sets: int, seed: int, tolerance: float | None = None,
                solver: SolverConfig = SolverConfig(), cache_dir: str | Path | None = None,
                workers: int = 1) -> BoundTable:
    """The bound of the ``n_goal_sets`` goal sets ``evaluate_reach`` draws from ``seed`` for ``env_config``.

    With ``cache_dir``, the table is read from (or written to) a JSON file named by its key, so the test seeds'
    tables are solved once.
    """
    env = drawn_goal_sets(env_config, n_goal_sets, seed)
    config, q0, goals = env.config, env.joint_positions(), env.goals
    tolerance = config.tolerance if tolerance is None else tolerance
    key = goal_sets_key(config, env, tolerance, seed, n_goal_sets) | {"solver": bound_solver(solver)}
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{Path(config.robot).stem}-{config.goal_distribution}-{seed}-{n_goal_sets}.json"
        if (stored := read_table(path, key)) is not None:
            return BoundTable(key, np.array(stored["periods"]), np.array(stored["seconds"]))
    chunks = np.array_split(np.arange(n_goal_sets), max(1, workers * 4))
    jobs = [(config, tolerance, solver, q0[c], goals[c]) for c in chunks if len(c)]
    if workers > 1:
        with process_pool(workers) as pool:
            rows = [r for chunk in pool.map(_solve_chunk, jobs) for r in chunk]
    else:
        rows = [r for job in jobs for r in _solve_chunk(job)]
    seconds, periods = zip(*rows)
    table = BoundTable(key, np.array(periods), np.array(seconds))
    if path is not None:
        write_atomically(path, json.dumps({"key": key, "periods": list(map(int, periods)), "seconds": list(seconds)}))
    return table


def saturate(a: np.ndarray, saturation: str) -> np.ndarray:
    """Normalized commands (B, n) into [-1, 1]: scaled down uniformly per row, or clipped per joint."""
    if saturation == "clip":
        return np.clip(a, -1.0, 1.0)
    return a / np.maximum(1.0, np.abs(a).max(axis=1, keepdims=True))


class TimeOptimalController:
    """The closed-loop time-optimal controller (the DAgger teacher ``time_optimal``): observations (B, obs) ->
    normalized actions ``saturate((q_T - q) / (dt v), 'uniform')``, q_T re-solved from each row's q; within
    tolerance ``saturate(hold_gain (q_IK - q) / v, 'uniform')``. With ``free_line_starts`` > 0, where q_T's
    straight joint-space line from q adds a self-collision (``path_collides``), the goal set is solved again
    from that many local, global and refined starts and q_T is, of the local solutions fastest first, the first
    target, or else the first solution itself (every end effector at the tolerance), whose line is free (the
    colliding q_T where none is)."""

    def __init__(self, env: ReachVectorEnv, hold_gain: float, solver: SolverConfig = SolverConfig(),
                 free_line_starts: int = 0):
        self.layout, self.limits, self.dt = env.layout, env.spec.velocity_limits, env.config.control_period
        self.kin, self.hold_gain, self.tolerance = env.kin, hold_gain, env.config.tolerance
        self.reference = TimeOptimalReference(env.kin, self.dt, self.tolerance, solver)
        self.free_line_reference = TimeOptimalReference(env.kin, self.dt, self.tolerance, replace(
            solver, local_starts=free_line_starts, global_starts=free_line_starts, refine_starts=free_line_starts)) \
            if free_line_starts > 0 and env.kin.can_collide else None
        self._goals: np.ndarray | None = None
        self._targets: np.ndarray | None = None

    def solve(self, q: np.ndarray, goals: np.ndarray, warm: np.ndarray | None = None) -> TimeOptimum:
        """``reference.solve``, or the target whose line from q is free (class docstring)."""
        solution = self.reference.solve(q, goals, warm)
        return self.free_alternative(q, goals, solution) or solution

    def free_alternative(self, q: np.ndarray, goals: np.ndarray, solution: TimeOptimum) -> TimeOptimum | None:
        """Where ``solution``'s target line from q adds a self-collision and ``free_line_starts`` > 0, the fastest
        target of the wider solve whose line is free (class docstring); otherwise None."""
        free = self.free_line_reference
        if free is None or solution.periods <= 0 or not path_collides(self.kin, q, solution.target - q):
            return None
        for seconds, local in free.local_solutions(q, goals):
            candidate = free.optimum(q, goals, seconds, local)
            if not path_collides(self.kin, q, candidate.target - q):
                return candidate
            if not path_collides(self.kin, q, local - q):
                worst = float(np.linalg.norm(goals - self.kin.ee_positions(local), axis=1).max())
                return replace(candidate, target=local, worst_error=worst)
        return None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return saturate(self.unsaturated(obs), "uniform")

    def unsaturated(self, obs: np.ndarray) -> np.ndarray:
        """The command ``k (q_T - q) / v`` before saturation."""
        q, targets, reached = self.targets(obs)
        gain = np.where(reached, self.hold_gain, 1.0 / self.dt)
        return gain[:, None] * (targets - q) / self.limits

    def targets(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, q_T, reached) of each row: its configuration, the target re-solved from it (within tolerance the
        local IK solution q_IK) and whether every end effector is within tolerance."""
        q = obs[:, self.layout.slice("joint_pos")].astype(np.float64)
        goals = obs[:, self.layout.slice("goal_pos")].astype(np.float64).reshape(len(q), -1, 3)
        if self._goals is None or self._targets is None or self._goals.shape != goals.shape:
            self._goals, self._targets = np.full_like(goals, np.nan), q.copy()
        reached = np.empty(len(q), dtype=bool)
        for i, (qi, g) in enumerate(zip(q, goals)):
            warm = np.array_equal(g, self._goals[i])
            solution = self.solve(qi, g, self._targets[i] if warm else None)
            reached[i] = solution.periods == 0
            self._targets[i] = self.reference.ik(qi, g)[0] if reached[i] else solution.target
            self._goals[i] = g
        return q, self._targets.copy(), reached

    def line_demonstrations(self, q0: np.ndarray, goals: np.ndarray, samples: int, rng: np.random.Generator,
                            free_samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Observations on the teacher's straight lines and its commands there, one solve per goal set.

        For each start (B, n_joints) and goal set (B, n_ee, 3): the target q_T, and ``samples`` points
        q = q0 + s (q_T - q0), s ~ U(0, 1), each labelled as ``unsaturated`` labels it: (q_T - q) / (dt v) while an
        end effector is out of tolerance (q_T is the target of every point of its line), the hold command within;
        ``free_samples`` points (default ``samples``) on a line whose target is a ``free_alternative``.
        """
        solutions = [self.reference.solve(qi, g) for qi, g in zip(q0, goals)]
        free = [self.free_alternative(qi, g, solution) for qi, g, solution in zip(q0, goals, solutions)]
        targets = np.stack([(f or solution).target for f, solution in zip(free, solutions)])
        line = np.repeat(np.arange(len(q0)), [samples if f is None else free_samples or samples for f in free])
        q = q0[line] + rng.random((len(line), 1)) * (targets - q0)[line]
        goals = goals[line]
        obs, ee = observe(self.kin, q, goals)
        labels = (targets[line] - q) / (self.dt * self.limits)
        for i in np.flatnonzero((np.linalg.norm(goals - ee, axis=2) <= self.tolerance).all(axis=1)):
            labels[i] = self.hold_gain * (self.reference.ik(q[i], goals[i])[0] - q[i]) / self.limits
        return obs, labels


@dataclass
class BoundArgs:
    """The time-optimal bound of an evaluator's goal sets."""

    env: ReachOptions = field(default_factory=ReachOptions)
    """The reach task (robot, end effectors, goal distribution, tolerance)."""
    episodes: int = 100
    """Goal sets of the seed (an episode each)."""
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

    from mtpolicy_training.core.options import parse_config

    args = parse_config(BoundArgs, argv)
    start = time.process_time()
    table = bound_table(args.env, args.episodes, args.seed, solver=args.solver, cache_dir=args.cache_dir,
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
