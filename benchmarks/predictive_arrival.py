"""How fast a refined policy could settle if it knew the robot's dynamics: per call, how hard to arrive (the arrival
lag or the servo gain) as the rollout on the evaluator's own MuJoCo model that enters the tolerance soonest without
leaving it says, on validation goal sets.

For a model exported by ``ship.refine`` with the ``deadbeat`` command, each call outside tolerance tries every
``--arrival-lags`` value a (u = d / (dt - a) while outside, ``TargetRefinement.arrival_lag``); with the ``servo``
command, every ``--servo-gains`` value k (``TargetRefinement.servo_gain``; default the graph's own k0, then 1.4, 2
and 3 k0). A copy of each goal set's simulation runs the graph's law with each value for ``--horizon`` periods, and
the call takes the value whose copy enters soonest and stays within tolerance after entering (ties and no entry: the
first value, the graph's own by default). It is an upper bound for a graph that predicts with a model of the
servos: the prediction here is the simulation itself. Prints held, enter and settle over the velocity bound, the
share that leaves after entering, how often each value was taken and, with ``--optimum-cache`` holding the dynamic
optimum of the same sets, settle over the optimum.

    python -m benchmarks.predictive_arrival models/gr1_reach.onnx --arrival-lags 0 0.005 0.01 0.02 --episodes 200
    python -m benchmarks.predictive_arrival models/panda_reach.onnx --servo-gains 10 14 20 30 --episodes 200
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import torch

from benchmarks.refined_target_drift import load_refined, timing_figures
from mtpolicy.vocabulary import Parser
from mtpolicy_training.algos.refined_target import RefinedTargetActor, TargetChoice
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
    """The refined graph's command with, per call and goal set, the arrival lag (``deadbeat``) or servo gain
    (``servo``) among ``values`` whose rollout of ``horizon`` periods on a copy of the simulation enters soonest and
    stays (module docstring)."""

    def __init__(self, actor: RefinedTargetActor, config: ReachConfig, values: list[float], horizon: int, n_sets: int):
        self.actor, self.values, self.horizon, self.n = actor, values, horizon, n_sets
        self.settings = law_settings(actor, config, values)
        self.copies = ReachVectorEnv(len(values) * n_sets, config, time_limit=False)
        self.state = mujoco.mjtState.mjSTATE_INTEGRATION
        self.env: ReachVectorEnv | None = None  # the evaluator's, from its first step on (``on_step``)
        self.picks = np.zeros(len(values), dtype=int)

    def law(self, obs: np.ndarray, k: int) -> np.ndarray:
        """The graph's command with the ``k``-th value."""
        setattr(self.actor, *self.settings[k])
        with torch.no_grad():
            return self.actor(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    def on_step(self, t: int, env: ReachVectorEnv, action: np.ndarray, info: dict) -> None:
        self.env = env

    def _copy(self, obs: np.ndarray) -> np.ndarray:
        """Every goal set's simulation copied once per value (at rest from the observation before the first step);
        the copies' observations."""
        c, copies = len(self.values), self.copies
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
        """(values, n_sets) each value's rollout from ``obs``: the period it enters the tolerance in (0 = the first),
        ``NEVER`` where it does not enter within the horizon, ``LEFT`` where it leaves after entering."""
        c, tolerance = len(self.values), self.copies.config.reach_tolerance
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
        """(n_sets,) the index of the value each set's call takes: the soonest entry that stays (the first where none
        does, and inside tolerance)."""
        return soonest_staying(self.outcomes(obs), outside)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        outside = self.outside(obs)
        with torch.no_grad():
            commands = commands_per_value(self.actor, self.settings, torch.as_tensor(obs, dtype=torch.float32)).numpy()
        if not outside.any():
            return commands[0]
        pick = self.pick(obs, outside)
        self.picks += np.bincount(pick[outside], minlength=len(self.values))
        return commands[pick, np.arange(self.n)]


def commands_per_value(actor: RefinedTargetActor, settings: list[tuple[str, Any]], obs: torch.Tensor,
                       choice: TargetChoice | None = None) -> torch.Tensor:
    """(values, B, n_joints) the graph's command on ``obs`` under each of ``settings`` (``law_settings``), its target
    chosen once (``choice``, or ``actor.choose(obs)``): no setting changes the choice."""
    choice = actor.choose(obs) if choice is None else choice
    commands = []
    for setting in settings:
        setattr(actor, *setting)
        commands.append(actor.command(obs, choice))
    return torch.stack(commands)


def soonest_staying(outcomes: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """(n_sets,) the index of the value whose rollout (``outcomes``, (values, n_sets)) enters soonest and stays; the
    first where none does, and on the sets not ``outside``."""
    soonest = np.minimum(outcomes, NEVER)
    return np.where(outside & (soonest.min(axis=0) < NEVER), soonest.argmin(axis=0), 0)


def main(argv: list[str] | None = None) -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                    prog="python -m benchmarks.predictive_arrival")
    add_law_options(parser)
    add_validation_options(parser)
    args = parser.parse_args(argv)
    actor, env = load_refined(parser, args.model)
    name, values = law_values(parser, args, actor, env.config.control_period)
    law = PredictiveArrival(actor, env.config, values, args.horizon, args.episodes)
    bound = bound_table(env.config, args.episodes, args.seed, cache_dir=args.bound_cache).bound_seconds
    metrics = evaluate_reach(law, env.config, args.episodes, args.seed, bound=bound, per_set=True, on_step=law.on_step)
    shares = ", ".join(f"{a}: {n / max(law.picks.sum(), 1):.1%}" for a, n in zip(values, law.picks))
    print(f"{args.model.name}, seed {args.seed}, {args.episodes} sets, horizon {args.horizon}: "
          f"{timing_figures(metrics)}; {name} taken outside tolerance: {shares}")
    if args.optimum_cache is not None:
        print(f"  settle / dynamic optimum: {versus_optimum(metrics['per_set'], env.config, args)}")


def add_law_options(parser: Parser) -> None:
    """The model, the values of how hard to arrive tried per call and the rollouts' horizon."""
    parser.add_argument("model", type=Path,
                        help="a model exported by ship.refine with the deadbeat or the servo command (.onnx)")
    parser.add_argument("--arrival-lags", type=float, nargs="+", metavar="S",
                        help="deadbeat: the arrival lags tried per call (s, each below the control period; default 0 "
                             "0.005 0.01 0.02)")
    parser.add_argument("--servo-gains", type=float, nargs="+", metavar="K",
                        help="servo: the servo gains tried per call (1/s; default the graph's own, then 1.4, 2, 3 "
                             "times it)")
    parser.add_argument("--horizon", type=int, default=10, help="periods each rollout runs")


def add_validation_options(parser: Parser) -> None:
    """The validation goal sets the laws run on and the caches of their bound and dynamic optimum."""
    parser.add_word("seeds", type=int, default=VALIDATION_SEED, choices=VALIDATION_SEEDS,
                    help="validation seed (the test seeds only report)")
    parser.add_word("episode count", type=int, default=200, help="goal sets")
    parser.add_argument("--bound-cache", type=Path, help="directory of cached bound tables")
    parser.add_argument("--optimum-cache", type=Path,
                        help="directory of dynamic-optimum tables made by benchmarks.dynamic_optimum")


def law_values(parser: Parser, args: argparse.Namespace, actor: RefinedTargetActor,
               control_period: float) -> tuple[str, list[float]]:
    """What ``add_law_options`` chose for the graph's command: the knob's name and its values (the graph's own
    first by default); a command without one, the other command's option or a bad value is the parser's error."""
    command = actor.refinement.command
    if command not in ("deadbeat", "servo"):
        parser.error(f"{args.model}: its command is {command!r}; the arrival lag is deadbeat's, the gain servo's")
    if (args.servo_gains if command == "deadbeat" else args.arrival_lags) is not None:
        parser.error(f"{args.model}: a {command} graph takes "
                     f"--{'arrival-lags' if command == 'deadbeat' else 'servo-gains'}")
    if command == "deadbeat":
        name, values = "arrival lag", args.arrival_lags or [0.0, 0.005, 0.01, 0.02]
        valid = all(0 <= a < control_period for a in values)
    else:
        gain = actor.refinement.servo_gain
        name, values = "servo gain", args.servo_gains or [gain, 1.4 * gain, 2 * gain, 3 * gain]
        valid = all(k > 0 for k in values)
    if args.horizon < 1 or not valid:
        parser.error(f"--horizon at least 1, --arrival-lags in [0, {control_period}) s, --servo-gains positive")
    return name, values


def law_settings(actor: RefinedTargetActor, config: ReachConfig, values: list[float]) -> list[tuple[str, Any]]:
    """Per value, the attribute of the graph and what it is set to for that law: deadbeat's arrival period
    dt - a, or the refinement with servo gain k."""
    if actor.refinement.command == "deadbeat":
        return [("arrival_period", torch.full_like(actor.arrival_period, config.control_period - a)) for a in values]
    return [("refinement", replace(actor.refinement, servo_gain=k)) for k in values]


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
