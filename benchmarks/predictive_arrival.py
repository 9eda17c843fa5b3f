"""How fast a refined policy could settle if it knew the robot's dynamics: per call, the arrival lag whose rollout on
the evaluator's own MuJoCo model enters the tolerance soonest without leaving it, on validation goal sets.

For a model exported by ``ship.refine`` with the ``deadbeat`` command, each call outside tolerance tries every
``--arrival-lags`` value a (u = d / (dt - a) while outside, ``TargetRefinement.arrival_lag``): a copy of each goal
set's simulation runs the graph's law with that a for ``--horizon`` periods, and the call takes the a whose copy
enters soonest and stays within tolerance after entering (ties and no entry: the first a). It is an upper bound
for a graph that predicts with a model of the servos: the prediction here is the simulation itself. Prints held,
enter and settle over the velocity bound, the share that leaves after entering, how often each a was taken and,
with ``--optimum-cache`` holding the dynamic optimum of the same sets, settle over the optimum.

    python -m benchmarks.predictive_arrival models/gr1_reach.onnx --arrival-lags 0 0.005 0.01 0.02 --episodes 200
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mujoco
import numpy as np
import torch

from benchmarks.refined_target_drift import load_refined, timing_figures
from mtpolicy.vocabulary import Parser
from mtpolicy_training.algos.refined_target import RefinedTargetActor
from mtpolicy_training.envs.dynamic_optimum import optimum_table, table_path
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import evaluate_reach
from mtpolicy_training.envs.seeds import VALIDATION_SEED, VALIDATION_SEEDS
from mtpolicy_training.envs.time_optimal import bound_table

NEVER = 10 ** 6
"""The entry period of a rollout that does not enter within its horizon."""
LEFT = NEVER + 1
"""The entry period of a rollout that leaves the tolerance after entering."""


class PredictiveArrival:
    """The refined graph's command with, per call and goal set, the arrival lag whose rollout of ``horizon``
    periods on a copy of the simulation enters soonest and stays (module docstring)."""

    def __init__(self, actor: RefinedTargetActor, config: ReachConfig, lags: list[float], horizon: int, n_sets: int):
        self.actor, self.lags, self.horizon, self.n = actor, lags, horizon, n_sets
        self.periods = [torch.full_like(actor.arrival_period, config.control_period - a) for a in lags]
        self.copies = ReachVectorEnv(len(lags) * n_sets, config, time_limit=False)
        self.state = mujoco.mjtState.mjSTATE_INTEGRATION
        self.env: ReachVectorEnv | None = None  # the evaluator's, from its first step on (``on_step``)
        self.picks = np.zeros(len(lags), dtype=int)

    def law(self, obs: np.ndarray, lag: int) -> np.ndarray:
        """The graph's command with the ``lag``-th arrival lag."""
        self.actor.arrival_period = self.periods[lag]
        with torch.no_grad():
            return self.actor(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    def on_step(self, t: int, env: ReachVectorEnv, action: np.ndarray, info: dict) -> None:
        self.env = env

    def _copy(self, obs: np.ndarray) -> np.ndarray:
        """Every goal set's simulation copied once per lag (at rest from the observation before the first step);
        the copies' observations."""
        c, copies = len(self.lags), self.copies
        if self.env is None:
            q = obs[:, self.actor.joint_pos].astype(np.float64)
            goals = obs[:, self.actor.goal_pos].reshape(self.n, -1, 3).astype(np.float64)
            return copies.reset(options={"q": np.tile(q, (c, 1)), "goals": np.tile(goals, (c, 1, 1))})[0]
        state = np.empty(mujoco.mj_stateSize(self.env.model, self.state))
        for i, data in enumerate(self.env.datas):
            mujoco.mj_getState(self.env.model, data, state, self.state)
            for k in range(c):
                mujoco.mj_setState(copies.model, copies.datas[k * self.n + i], state, self.state)
                mujoco.mj_forward(copies.model, copies.datas[k * self.n + i])
        copies.commands, copies.goals = np.tile(self.env.commands, (c, 1)), np.tile(self.env.goals, (c, 1, 1))
        return copies._observe()[0]

    def outside(self, obs: np.ndarray) -> np.ndarray:
        """(n_sets,) whether some end effector is outside tolerance."""
        errors = obs[:, self.actor.goal_error].reshape(self.n, -1, 3)
        return ~(np.linalg.norm(errors, axis=2) <= self.copies.config.reach_tolerance).all(axis=1)

    def outcomes(self, obs: np.ndarray) -> np.ndarray:
        """(lags, n_sets) each lag's rollout from ``obs``: the period it enters the tolerance in (0 = the first),
        ``NEVER`` where it does not enter within the horizon, ``LEFT`` where it leaves after entering."""
        c, tolerance = len(self.lags), self.copies.config.reach_tolerance
        copied = self._copy(obs)
        entry, entered = np.full(c * self.n, NEVER), np.zeros(c * self.n, dtype=bool)
        for h in range(self.horizon):
            action = np.concatenate([self.law(copied[k * self.n:(k + 1) * self.n], k) for k in range(c)])
            copied, _, _, _, info = self.copies.step(action)
            within = (info["errors"] <= tolerance).all(axis=1)
            entry = np.where(entered & ~within, LEFT, np.where(within & ~entered, h, entry))
            entered |= within
        return entry.reshape(c, self.n)

    def pick(self, obs: np.ndarray, outside: np.ndarray) -> np.ndarray:
        """(n_sets,) the index of the lag each set's call takes: the soonest entry that stays (the first where none
        does, and inside tolerance)."""
        soonest = np.minimum(self.outcomes(obs), NEVER)
        return np.where(outside & (soonest.min(axis=0) < NEVER), soonest.argmin(axis=0), 0)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        outside = self.outside(obs)
        commands = np.stack([self.law(obs, k) for k in range(len(self.lags))])
        if not outside.any():
            return commands[0]
        pick = self.pick(obs, outside)
        self.picks += np.bincount(pick[outside], minlength=len(self.lags))
        return commands[pick, np.arange(self.n)]


def main(argv: list[str] | None = None) -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                    prog="python -m benchmarks.predictive_arrival")
    parser.add_argument("model", type=Path, help="a model exported by ship.refine with the deadbeat command (.onnx)")
    parser.add_argument("--arrival-lags", type=float, nargs="+", default=[0.0, 0.005, 0.01, 0.02], metavar="S",
                        help="the arrival lags tried per call (s, each below the control period)")
    parser.add_argument("--horizon", type=int, default=10, help="periods each rollout runs")
    parser.add_word("seeds", type=int, default=VALIDATION_SEED, choices=VALIDATION_SEEDS,
                    help="validation seed (the test seeds only report)")
    parser.add_word("episode count", type=int, default=200, help="goal sets")
    parser.add_argument("--bound-cache", type=Path, help="directory of cached bound tables")
    parser.add_argument("--optimum-cache", type=Path,
                        help="directory of dynamic-optimum tables made by benchmarks.dynamic_optimum")
    args = parser.parse_args(argv)
    actor, env = load_refined(parser, args.model, "deadbeat", "the arrival lag is deadbeat's")
    dt = env.config.control_period
    if args.horizon < 1 or not all(0 <= a < dt for a in args.arrival_lags):
        parser.error(f"--horizon at least 1 and --arrival-lags in [0, {dt}) s")
    law = PredictiveArrival(actor, env.config, args.arrival_lags, args.horizon, args.episodes)
    bound = bound_table(env.config, args.episodes, args.seed, cache_dir=args.bound_cache).bound_seconds
    metrics = evaluate_reach(law, env.config, args.episodes, args.seed, bound=bound, per_set=True, on_step=law.on_step)
    shares = ", ".join(f"{a}: {n / max(law.picks.sum(), 1):.1%}" for a, n in zip(args.arrival_lags, law.picks))
    print(f"{args.model.name}, seed {args.seed}, {args.episodes} sets, horizon {args.horizon}: "
          f"{timing_figures(metrics)}; arrival lag taken outside tolerance: {shares}")
    if args.optimum_cache is not None:
        print(f"  settle / dynamic optimum: {versus_optimum(metrics['per_set'], env.config, args)}")


def versus_optimum(per_set: dict, config: ReachConfig, args: argparse.Namespace) -> str:
    """Settle over the cached dynamic optimum of the same goal sets, median and max over the held sets."""
    path = table_path(config, args.episodes, args.seed, args.optimum_cache)
    if not path.exists():  # the search costs minutes a set: only a table made before
        return f"no table {path}"
    table = optimum_table(config, args.episodes, args.seed, cache_dir=args.optimum_cache)
    settle = np.round(per_set["time_to_settle"] / config.control_period)
    ok = per_set["held"] & (table.periods > 0)
    ratio = settle[ok] / table.periods[ok]
    return (f"median {np.median(ratio):.2f}, max {ratio.max():.2f} over {ok.sum()} sets; per set "
            f"{settle.astype(int).tolist()} against {table.periods.tolist()}")


if __name__ == "__main__":
    main()
