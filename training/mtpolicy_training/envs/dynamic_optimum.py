"""The dynamic optimum of reach: the least time after which a command sequence keeps every end effector within
tolerance on the robot's own MuJoCo model, per goal set.

The velocity bound (``envs/time_optimal.py``) ignores the servos: a velocity
servo lags its command, so a move that arrives at the bound overshoots. The
dynamic optimum is found on the evaluator's own simulation (``ReachVectorEnv``:
its servos, gains and force limits, the acceleration ramp as the env applies
it), so its times compare with the evaluator's time to settle. For a goal set
(q0, goals) and ``N`` control periods, the decision variables are
piecewise-constant normalized commands ``U`` (N x n_joints) in [-1, 1]; after
them a tail of ``tail_periods`` H runs a stabilizing law (DLS to the goals, or
zero command). With ``e_i(t)`` the error of end effector i after step t, the
program is the least squares

    min_U  sum_{t = N .. N+H-1} sum_i max(0, e_i(t) - margin * tol)^2

(scipy ``least_squares``, bounds [-1, 1], Jacobian by forward differences: the
``1 + N n`` perturbed sequences run as one batched rollout). ``N`` is feasible
when the solution, re-run with ``hold_periods`` more tail periods, has every
end effector within ``tol`` after every step from step N on. Starts: the
straight line to each target, also braking early (the same line over ``N - b``
periods, then ``b`` zero commands), each start controller's first N commands
(DLS, mink and the closed-loop time-optimal controller: a controller that
settles by step N gives a feasible start), and the previous N's solution
resampled; the best ``refine_starts`` of them (by cost, one batched rollout)
are optimized. Targets: the time-optimal target (``TimeOptimalReference``) and,
per start controller, the configuration of its path within tolerance nearest to
q0 at the velocity limits (another solution branch: the bound's local solver
misses some). The search starts at the nearest target's number of
periods (the velocity bound's ``N*`` unless a controller's path found a nearer
solution), goes up until feasible, then down from the feasible one with its
solution as warm start. The optimum is the measured settle step of the best
feasible re-run (at most its N).

It is an achievable time: a controller that settles earlier on a goal set
beats it, which says the optimizer is weak there. The optimized sequences are
kept (``commands``): labels that brake in time. CLI::

    python -m mtpolicy_training.envs.dynamic_optimum --robot planar8 --episodes 10 --seed 20240518
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from mtpolicy.dls import DampedLeastSquares
from mtpolicy.time_optimal_program import SolverConfig, TimeOptimalReference
from mtpolicy_training.core.files import write_atomically
from mtpolicy_training.envs.reach import ReachConfig, ReachOptions, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import Controller, dls_controller, mink_controller
from mtpolicy_training.envs.seeds import VALIDATION_SEED
from mtpolicy_training.envs.time_optimal import TimeOptimalController, drawn_goal_sets, goal_sets_key, read_table


START_CONTROLLERS: dict[str, Callable[[ReachConfig, "DynamicOptimumConfig"], Controller]] = {
    "dls": lambda env_config, _: dls_controller(env_config),
    "mink": lambda env_config, _: mink_controller(env_config),
    "time_optimal": lambda env_config, config: TimeOptimalController(ReachVectorEnv(1, env_config),
                                                                     config.hold_gain, config.solver)}
"""The controllers ``DynamicOptimumConfig.controller_starts`` may name."""


@dataclass(frozen=True)
class DynamicOptimumConfig:
    """How the dynamic optimum is searched (part of a table's key)."""

    tail: Literal["dls", "zero"] = "dls"
    """Law after the N optimized periods: DLS to the goals (``mtpolicy.dls``) or zero command."""
    tail_periods: int = 20
    """H: periods of the tail whose tolerance violations are the objective."""
    hold_periods: int = 40
    """Periods the re-run holds beyond the tail: a feasible sequence stays within tolerance through them too."""
    margin: float = 0.95
    """The objective aims every end effector within this fraction of the tolerance (slack for the re-run)."""
    brake_starts: int = 3
    """Straight-line starts braking b = 0 .. brake_starts-1 periods early."""
    refine_starts: int = 2
    """Starts optimized per N (the lowest-cost ones)."""
    max_evaluations: int = 25
    """least_squares evaluations (max_nfev) per start."""
    extra_periods: int = 12
    """N is searched up to the nearest target's number of periods + this."""
    fd_step: float = 1e-3
    """Forward-difference step of the normalized commands."""
    controller_starts: tuple[str, ...] = ("dls", "mink", "time_optimal")
    """Classical controllers (``reach_evaluation``; ``time_optimal`` the closed-loop time-optimal controller) whose
    path gives starts: its first N commands, and a target: of the configurations it passes within tolerance in
    ``controller_periods``, the nearest at the velocity limits (other solution branches than the bound's, whose
    local solver misses some)."""
    hold_gain: float = 12.0
    """The closed-loop time-optimal start's gain within tolerance (the DAgger teacher's default)."""
    controller_periods: int = 80
    """Periods each start controller runs (the evaluator's 4 s episode)."""
    solver: SolverConfig = field(default_factory=SolverConfig)
    """The time-optimal reference's solver (N* and the straight line's target)."""

    def __post_init__(self):
        if isinstance(self.solver, dict):  # a key read back from JSON
            object.__setattr__(self, "solver", SolverConfig(**self.solver))
        checks = {"tail": self.tail in ("dls", "zero"), "tail_periods": self.tail_periods >= 1,
                  "hold_periods": self.hold_periods >= 0, "margin": 0 < self.margin <= 1,
                  "brake_starts": self.brake_starts >= 1, "refine_starts": self.refine_starts >= 1,
                  "max_evaluations": self.max_evaluations >= 1, "extra_periods": self.extra_periods >= 0,
                  "fd_step": 0 < self.fd_step < 1, "controller_periods": self.controller_periods >= 1,
                  "hold_gain": self.hold_gain > 0,
                  "controller_starts": set(self.controller_starts) <= set(START_CONTROLLERS)}
        if bad := [k for k, ok in checks.items() if not ok]:
            raise ValueError("invalid DynamicOptimumConfig value(s): "
                             + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad))


@dataclass(frozen=True)
class DynamicOptimum:
    """The dynamic optimum of one goal set."""

    periods: int
    """Settle step of the best feasible sequence: within tolerance after every step from this one (-1: none
    found up to the nearest target's periods + extra_periods)."""
    commands: np.ndarray
    """(N, n_joints) its normalized commands (N >= periods; the tail follows them)."""
    bound_periods: int
    """The velocity (and acceleration) bound N* of the same goal set."""
    cpu_seconds: float
    """CPU time of the search, bound included (s)."""


@dataclass
class ControllerPaths:
    """What the start controllers' paths from one goal set give the search."""

    commands: list[np.ndarray]
    """Per controller, its normalized commands (steps, n_joints), clipped to [-1, 1]."""
    targets: list[np.ndarray]
    """Configurations within tolerance to head for (the bound's target first, then one per controller)."""


class ShootingProblem:
    """Batched rollouts of command sequences from one goal set on the evaluator's env, and the search over N."""

    def __init__(self, env_config: ReachConfig, tolerance: float, config: DynamicOptimumConfig):
        self.env_config, self.tolerance, self.config = replace(env_config, planned=False), tolerance, config
        self._envs: dict[int, ReachVectorEnv] = {}
        one = self._env(1)
        self.spec, self.dt = one.spec, env_config.control_period
        self.tail = tail_law(one, config.tail)
        self.reference = TimeOptimalReference(one.kin, self.dt, tolerance, config.solver)
        self.controllers = [START_CONTROLLERS[name](self.env_config, config) for name in config.controller_starts]

    def _env(self, batch: int) -> ReachVectorEnv:
        """A vector env of ``batch`` worlds (kept: the single rollouts', the starts' and the last Jacobians')."""
        if batch not in self._envs:
            if len(self._envs) >= 4:  # the Jacobian batches of earlier N: free their worlds
                self._envs = {b: e for b, e in self._envs.items() if b <= self.config.brake_starts + 1}
            self._envs[batch] = ReachVectorEnv(batch, self.env_config, time_limit=False)
        return self._envs[batch]

    def rollout(self, q0: np.ndarray, goals: np.ndarray, commands: np.ndarray, tail: int) -> np.ndarray:
        """(B, N + tail, n_ee) errors after each step of B sequences (B, N, n_joints), each followed by ``tail``
        periods of the tail law, from (q0, goals) at rest, as ``evaluate_reach`` steps them."""
        batch = len(commands)
        env = self._env(batch)
        obs, info = env.reset(options={"q": np.tile(q0, (batch, 1)), "goals": np.tile(goals, (batch, 1, 1))})
        errors = []
        for t in range(commands.shape[1] + tail):
            action = commands[:, t] if t < commands.shape[1] else self.tail(obs)
            obs, _, _, _, info = env.step(action)
            errors.append(info["errors"])
        return np.stack(errors, axis=1)

    def settle_step(self, errors: np.ndarray) -> np.ndarray:
        """(B,) first step from which every end effector stays within tolerance to the end (-1: never), counted
        as ``evaluate_reach`` does (at least 1)."""
        within = np.asarray((errors <= self.tolerance).all(axis=2))  # (B, steps); asarray: numpy's stubs say scalar
        last_out = np.where(~within, np.arange(1, within.shape[1] + 1), 0).max(axis=1)
        return np.where(within[:, -1], last_out + 1, -1)

    def _residuals(self, errors: np.ndarray, periods: int) -> np.ndarray:
        """(B, H n_ee) violations of margin * tol over the tail window."""
        window = errors[:, max(periods - 1, 0):max(periods - 1, 0) + self.config.tail_periods]
        return np.maximum(0.0, window - self.config.margin * self.tolerance).reshape(len(errors), -1)

    def _optimize(self, q0: np.ndarray, goals: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Least squares from ``start`` (N, n_joints); the solution."""
        from scipy.optimize import least_squares  # here, not on import

        shape, h, tail = start.shape, self.config.fd_step, self.config.tail_periods

        def batch_residuals(x: np.ndarray) -> np.ndarray:
            return self._residuals(self.rollout(q0, goals, x.reshape(-1, *shape), tail), shape[0])

        def jacobian(x: np.ndarray) -> np.ndarray:
            steps = np.where(x + h <= 1.0, h, -h)  # stay within the bounds: the env clips beyond them
            rows = np.vstack([x, x + np.diag(steps)])
            r = batch_residuals(rows)
            return ((r[1:] - r[0]) / steps[:, None]).T

        x0 = np.clip(start, -1.0, 1.0).ravel()
        if batch_residuals(x0[None])[0].max() == 0.0:
            return start
        result = least_squares(lambda x: batch_residuals(x[None])[0], x0, jac=jacobian, bounds=(-1.0, 1.0),
                               method="trf", max_nfev=self.config.max_evaluations, x_scale=1.0)
        return result.x.reshape(shape)

    def _starts(self, q0: np.ndarray, paths: ControllerPaths, periods: int, warm: np.ndarray | None) -> np.ndarray:
        """(S, N, n_joints): the straight line to each target braking 0 .. brake_starts-1 periods early, each
        start controller's first N commands (zero after its last), and ``warm`` resampled to N periods."""
        v = self.spec.velocity_limits
        starts = []
        for target, brake in itertools.product(paths.targets, range(min(self.config.brake_starts, periods))):
            line = np.clip((target - q0) / ((periods - brake) * self.dt * v), -1.0, 1.0)
            starts.append(np.vstack([np.tile(line, (periods - brake, 1)), np.zeros((brake, len(q0)))]))
        for sequence in paths.commands:
            starts.append(np.vstack([sequence, np.zeros((periods, len(q0)))])[:periods])
        if warm is not None:
            starts.append(resample(warm, periods))
        return np.stack(starts)

    def _try(self, q0: np.ndarray, goals: np.ndarray, paths: ControllerPaths, periods: int,
             warm: np.ndarray | None) -> tuple[int, np.ndarray] | None:
        """(settle step, commands) of the first feasible sequence of ``periods`` periods optimized from the
        lowest-cost starts, or None."""
        tail = self.config.tail_periods
        starts = self._starts(q0, paths, periods, warm)
        cost = (self._residuals(self.rollout(q0, goals, starts, tail), periods) ** 2).sum(axis=1)
        for start in starts[np.argsort(cost)[: self.config.refine_starts]]:
            commands = self._optimize(q0, goals, start)
            settle = int(self.settle_step(self.rollout(q0, goals, commands[None], tail + self.config.hold_periods))[0])
            if 0 <= settle <= periods:
                return settle, commands
        return None

    def _controller_paths(self, q0: np.ndarray, goals: np.ndarray) -> ControllerPaths:
        """Each start controller's commands, and the configuration nearest to q0 at the velocity limits of those
        its path passes within tolerance (none if it passes none)."""
        env, paths = self._env(1), ControllerPaths([], [])
        for controller in self.controllers:
            obs, _ = env.reset(options={"q": q0[None], "goals": goals[None]})
            passed, commands = [], []
            for _ in range(self.config.controller_periods):
                action = controller(obs)
                if not np.isfinite(action).all():  # mink without a solution: a miss from here
                    break
                commands.append(np.clip(action[0], -1.0, 1.0))
                obs, _, _, _, info = env.step(action)
                if (info["errors"] <= self.tolerance).all():
                    passed.append(env.joint_positions()[0])
            if commands:
                paths.commands.append(np.array(commands))
            if passed:
                paths.targets.append(min(passed, key=lambda q: self.reference.seconds_to(q, q0)))
        return paths

    def solve(self, q0: np.ndarray, goals: np.ndarray) -> DynamicOptimum:
        """The dynamic optimum of (q0, goals) (module docstring)."""
        start = time.process_time()
        q0, goals = np.asarray(q0, dtype=np.float64), np.asarray(goals, dtype=np.float64).reshape(-1, 3)
        bound = self.reference.solve(q0, goals)
        paths = self._controller_paths(q0, goals)
        paths.targets[:0] = [bound.target] if bound.periods >= 0 else []
        best = None
        if paths.targets:  # N from the nearest target (the evaluator's settle step is at least 1)
            first = max(1, min(math.ceil(self.reference.seconds_to(t, q0) / self.dt - 1e-9) for t in paths.targets))
            for periods in range(first, first + self.config.extra_periods + 1):
                best = self._try(q0, goals, paths, periods, None)
                if best is not None:
                    break
            while best is not None and best[0] > first:  # down from the feasible one, warm-started
                lower = self._try(q0, goals, paths, best[0] - 1, best[1])
                if lower is None:
                    break
                best = lower
        settle, commands = best if best is not None else (-1, np.zeros((0, len(q0))))
        return DynamicOptimum(settle, commands, bound.periods, time.process_time() - start)


def tail_law(env: ReachVectorEnv, tail: str) -> Controller:
    """The tail's normalized commands for a batch of observations: DLS to the goals, or zero."""
    if tail == "zero":
        return lambda obs: np.zeros((len(obs), env.spec.n_joints))
    dls = DampedLeastSquares(env.kin, env.layout)
    return lambda obs: dls(obs) / env.spec.velocity_limits


def replay_controller(table: OptimumTable, env_config: ReachConfig) -> Controller:
    """The table's sequences as an ``evaluate_reach`` controller on the table's goal sets (same seed and count):
    set i gets ``commands[i][t]`` at its t-th call, then the tail law; a set without an optimum gets NaN (a
    controller failure)."""
    law = tail_law(ReachVectorEnv(1, replace(env_config, planned=False)), table.key["config"]["tail"])
    step = itertools.count()

    def act(obs: np.ndarray) -> np.ndarray:
        t, tail = next(step), law(obs)
        rows = [c[t] if t < len(c) else tail[i] for i, c in enumerate(table.commands)]
        return np.where((table.periods >= 0)[:, None], np.stack(rows), math.nan)

    return act


def resample(commands: np.ndarray, periods: int) -> np.ndarray:
    """``commands`` (M, n) stretched or squeezed to ``periods``: the same cumulative displacement profile
    C(s) = sum_{k < sM} u_k, read at s = 0, 1/periods, ..., 1 and differenced (clipped to [-1, 1])."""
    cumulative = np.vstack([np.zeros(commands.shape[1]), np.cumsum(commands, axis=0)])
    at = np.linspace(0.0, len(commands), periods + 1)
    profile = np.stack([np.interp(at, np.arange(len(cumulative)), c) for c in cumulative.T], axis=1)
    return np.clip(np.diff(profile, axis=0), -1.0, 1.0)


@dataclass(frozen=True)
class OptimumTable:
    """The dynamic optimum of every goal set the evaluator draws from one seed."""

    key: dict
    """What the table is of: robot, end effectors, distribution, tolerance, control period, seed, count, config."""
    periods: np.ndarray
    """(n,) the optimum's settle step per goal set (-1 where none was found)."""
    bound_periods: np.ndarray
    """(n,) the velocity bound N* per goal set."""
    cpu_seconds: np.ndarray
    """(n,) CPU time of each set's search (s)."""
    commands: list[np.ndarray]
    """Per goal set, the optimized normalized commands (N, n_joints): the teacher's labels."""

    @property
    def seconds(self) -> np.ndarray:
        """The optimum in s (NaN where none was found)."""
        return np.where(self.periods >= 0, self.periods * self.key["control_period"], math.nan)


def table_path(env_config: ReachConfig, n_goal_sets: int, seed: int, cache_dir: str | Path) -> Path:
    """The cached table of the optimum of ``n_goal_sets`` goal sets of ``seed`` in ``cache_dir``."""
    name = f"{Path(env_config.robot).stem}-{env_config.goal_distribution}-{seed}-{n_goal_sets}-dynamic.json"
    return Path(cache_dir) / name


def optimum_table(env_config: ReachConfig, n_goal_sets: int, seed: int, tolerance: float | None = None,
                  config: DynamicOptimumConfig = DynamicOptimumConfig(),
                  cache_dir: str | Path | None = None) -> OptimumTable:
    """The dynamic optimum of the ``n_goal_sets`` goal sets ``evaluate_reach`` draws from ``seed``; with
    ``cache_dir``, read from (or written to) a JSON file named by its key, as ``time_optimal.bound_table``."""
    env = drawn_goal_sets(env_config, n_goal_sets, seed)
    env_config, q0, goals = env.config, env.joint_positions(), env.goals
    tolerance = env_config.tolerance if tolerance is None else tolerance
    key = goal_sets_key(env_config, env, tolerance, seed, n_goal_sets) | {
        "config": json.loads(json.dumps(asdict(config)))}
    path = None
    if cache_dir is not None:
        path = table_path(env_config, n_goal_sets, seed, cache_dir)
        if (stored := read_table(path, key)) is not None:
            return OptimumTable(key, np.array(stored["periods"]), np.array(stored["bound_periods"]),
                                np.array(stored["cpu_seconds"]),
                                [np.array(c, dtype=np.float64).reshape(-1, env.spec.n_joints)
                                 for c in stored["commands"]])
    problem = ShootingProblem(env_config, tolerance, config)
    optima = [problem.solve(q, g) for q, g in zip(q0, goals)]
    table = OptimumTable(key, np.array([o.periods for o in optima]), np.array([o.bound_periods for o in optima]),
                         np.array([o.cpu_seconds for o in optima]), [o.commands for o in optima])
    if path is not None:
        write_atomically(path, json.dumps({"key": key, "periods": table.periods.tolist(),
                                           "bound_periods": table.bound_periods.tolist(),
                                           "cpu_seconds": table.cpu_seconds.tolist(),
                                           "commands": [c.tolist() for c in table.commands]}))
    return table


@dataclass
class OptimumArgs:
    """The dynamic optimum of an evaluator's goal sets."""

    env: ReachOptions = field(default_factory=ReachOptions)
    """The reach task (robot, end effectors, goal distribution, tolerance)."""
    episodes: int = 10
    """Goal sets of the seed (an episode each)."""
    seed: int = VALIDATION_SEED
    """The evaluator's seed (a validation seed by default)."""
    optimum: DynamicOptimumConfig = field(default_factory=DynamicOptimumConfig)
    """How the optimum is searched."""
    cache_dir: str | None = None
    """Folder of cached tables (read if present, else written)."""


def main(argv: list[str] | None = None) -> None:
    """Print the optimum against the velocity bound over the goal sets of a seed."""
    from mtpolicy_training.core.options import parse_config

    args = parse_config(OptimumArgs, argv)
    table = optimum_table(args.env, args.episodes, args.seed, config=args.optimum, cache_dir=args.cache_dir)
    found = table.periods >= 0
    timed = found & (table.bound_periods > 0)
    ratio = table.periods[timed] / table.bound_periods[timed]
    print(f"{args.env.robot} {args.env.goal_distribution}, seed {args.seed}: optimum found on {found.sum()}/"
          f"{len(found)} goal sets; periods {table.periods.tolist()}; bound N* {table.bound_periods.tolist()}; "
          f"at the bound on {(table.periods[timed] == table.bound_periods[timed]).sum()}/{timed.sum()}; "
          f"optimum / bound median {np.median(ratio) if len(ratio) else math.nan:.2f} max "
          f"{ratio.max() if len(ratio) else math.nan:.2f}; CPU per set median {np.median(table.cpu_seconds):.1f} s")


if __name__ == "__main__":
    main()
