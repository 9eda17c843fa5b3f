"""Whether the predictive arrival's choice (the arrival lag of a ``deadbeat`` graph, the servo gain of a ``servo``
graph) can be learned from the observation: a head fitted to the rollouts' outcomes on training goal sets, in closed
loop beside the graph's own law on validation goal sets.

Labels: on ``--label-sets`` goal sets of each training seed in ``--label-seeds``, the predictive law
(``benchmarks.predictive_arrival``) drives every set and each of its calls outside tolerance records the observation
and every value's rollout outcome (``PredictiveArrival.outcomes``). Each seed's labels are cached in
``--label-cache``, so a killed run resumes from the seeds it finished. The head (``ArrivalHead``: 2 x 256 ReLU) reads
the student's input, the refined target's distance in periods at the velocity limit and, where the graph observes
it, the previous command over the limit. It is fitted by expected cost, mean of sum_k p_k (c_k - min_j c_j),
p = softmax(head), c_k the entry period of value k, ``NEVER_COST`` where its rollout does not enter and
``LEFT_COST`` where it leaves after entering.
Prints the held-out regret (periods per call) of the head, of each value taken always and of the best value among
all but the last, then, on the same validation goal sets, the graph's own law (the first value) and the head's argmax:
held, enter and settle over the bound, the share that leaves after entering, the mean settle in periods and its ratio
(with ``--optimum-cache``, settle over the dynamic optimum of the same sets).

    python -m benchmarks.arrival_choice models/gr1_reach.onnx --label-seeds 1002 1003 1004 1005 1006 1007 \\
        --label-sets 600 --label-cache runs/arrival-labels --episodes 200 --seed 20240517 --bound-cache runs/bound
    python -m benchmarks.arrival_choice models/panda_reach.onnx --servo-gains 10 14 20 30 --label-sets 300 \\
        --label-cache runs/arrival-labels --episodes 200 --seed 20240517 --bound-cache runs/bound
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.predictive_arrival import (LEFT, NEVER, PredictiveArrival, add_law_options, add_validation_options,
                                          commands_per_value, law_settings, law_values, soonest_staying,
                                          versus_optimum)
from benchmarks.refined_target_drift import load_refined, timing_figures
from mtpolicy.integrity import sha256_file
from mtpolicy.vocabulary import Parser
from mtpolicy_training.algos.refined_target import RefinedTargetActor, TargetChoice
from mtpolicy_training.core.files import write_atomically
from mtpolicy_training.envs.reach import ReachConfig
from mtpolicy_training.envs.reach_evaluation import evaluate_reach
from mtpolicy_training.envs.seeds import TEST_SEEDS, VALIDATION_SEEDS
from mtpolicy_training.envs.time_optimal import bound_table

NEVER_COST = 12.0
"""Cost (periods) of a lag whose rollout does not enter within its horizon."""
LEFT_COST = 15.0
"""Cost (periods) of a lag whose rollout leaves the tolerance after entering."""


def features(actor: RefinedTargetActor, obs: torch.Tensor) -> tuple[torch.Tensor, TargetChoice]:
    """The head's input: the student's input, (q_T - q) / (dt v) and, where observed, u0 / v; and the graph's choice
    of target."""
    choice = actor.choose(obs)
    parts = [obs[:, actor.student_input], (choice.target - obs[:, actor.joint_pos]) / actor.period_step]
    if actor.previous_command is not None:
        parts.append(obs[:, actor.previous_command] / actor.velocity_limits)
    return torch.cat(parts, dim=1), choice


class ArrivalHead(nn.Module):
    """Logits over the values of the head's input, standardized by the labels' mean and deviation."""

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, inputs: torch.Tensor, n_values: int, hidden: int = 256):
        super().__init__()
        self.register_buffer("mean", inputs.mean(0))
        self.register_buffer("scale", inputs.std(0) + 1e-3)
        self.net = nn.Sequential(nn.Linear(inputs.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_values))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.scale)


def label_costs(outcomes: np.ndarray) -> np.ndarray:
    """Each call's cost per value (periods) from its rollouts' outcomes (calls, values)."""
    costs = np.where(outcomes == NEVER, NEVER_COST, np.where(outcomes == LEFT, LEFT_COST, outcomes))
    return costs.astype(np.float32)


class Labeling(PredictiveArrival):
    """The predictive law that records, per call outside tolerance, the observation and each lag's outcome."""

    def __init__(self, *args, **kwargs):  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.observations: list[np.ndarray] = []
        self.recorded: list[np.ndarray] = []

    def pick(self, obs: np.ndarray, outside: np.ndarray) -> np.ndarray:
        outcomes = self.outcomes(obs)
        self.observations.append(obs[outside])
        self.recorded.append(outcomes[:, outside].T)
        return soonest_staying(outcomes, outside)


def labels(actor: RefinedTargetActor, config: ReachConfig, values: list[float], horizon: int, n_sets: int,
           seed: int, path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """The observations and outcomes of ``n_sets`` goal sets of training seed ``seed`` (read from ``path`` when it
    exists, written there otherwise)."""
    if path is not None and path.exists():
        try:
            with np.load(path) as saved:
                return saved["obs"], saved["outcomes"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: not a label cache of this benchmark ({e}); delete it to label again") from e
    law = Labeling(actor, config, values, horizon, n_sets)
    evaluate_reach(law, config, n_sets, seed, on_step=law.on_step)
    obs, outcomes = np.concatenate(law.observations), np.concatenate(law.recorded)
    if path is not None:
        buffer = io.BytesIO()
        np.savez(buffer, obs=obs, outcomes=outcomes)
        write_atomically(path, buffer.getvalue())
    return obs, outcomes


def fit(inputs: torch.Tensor, costs: np.ndarray, steps: int, seed: int = 0) -> tuple[ArrivalHead, str]:
    """The head fitted on 85 % of the calls by expected cost (module docstring); the held-out regrets."""
    torch.manual_seed(seed)
    order = torch.randperm(len(inputs))
    train, held_out = order[: int(0.85 * len(inputs))], order[int(0.85 * len(inputs)):]
    regret = torch.as_tensor(costs - costs.min(axis=1, keepdims=True))
    head = ArrivalHead(inputs[train], costs.shape[1])
    optimizer = torch.optim.Adam(head.parameters(), 1e-3, weight_decay=1e-4)
    for _ in range(steps):
        batch = train[torch.randint(len(train), (512,))]
        loss = (torch.softmax(head(inputs[batch]), dim=1) * regret[batch]).sum(dim=1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        taken = head(inputs[held_out]).argmax(dim=1)
    held = regret[held_out]
    always = ", ".join(f"{held[:, k].mean():.3f}" for k in range(held.shape[1]))
    return head, (f"held-out regret (periods per call) over {len(held_out)} of {len(inputs)} calls: head "
                  f"{held[torch.arange(len(held)), taken].mean():.3f}; each value always {always}; the best of all but "
                  f"the last {held[:, :-1].min(dim=1).values.mean():.3f}")


def closed_loop(actor: RefinedTargetActor, head: ArrivalHead | None, values: list[float], config: ReachConfig,
                n_sets: int, seed: int, bound: np.ndarray) -> dict:
    """The graph's law on ``n_sets`` goal sets of ``seed``, each call taking the head's value (``None``: the
    first)."""
    settings = law_settings(actor, config, values if head is not None else values[:1])  # the own law: one command

    def law(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            o = torch.as_tensor(obs, dtype=torch.float32)
            x, choice = features(actor, o)
            taken = torch.zeros(len(x), dtype=torch.long) if head is None else head(x).argmax(dim=1)
            return commands_per_value(actor, settings, o, choice)[taken, torch.arange(len(x))].numpy()

    return evaluate_reach(law, config, n_sets, seed, bound=bound, per_set=True)


def mean_settle(metrics: dict, control_period: float) -> float:
    """Mean time to settle over the held sets, in control periods."""
    per_set = metrics["per_set"]
    return float(np.mean(per_set["time_to_settle"][per_set["held"]]) / control_period)


def main(argv: list[str] | None = None) -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                    prog="python -m benchmarks.arrival_choice")
    add_law_options(parser)
    parser.add_argument("--label-seeds", type=int, nargs="+", default=[1002, 1003, 1004, 1005, 1006, 1007],
                        metavar="SEED", help="training seeds of the labels' goal sets (no validation or test seed)")
    parser.add_argument("--label-sets", type=int, default=600, help="goal sets per label seed")
    parser.add_argument("--label-cache", type=Path, help="directory caching each label seed's rollouts")
    parser.add_argument("--fit-steps", type=int, default=4000, help="Adam steps of 512 calls")
    add_validation_options(parser)
    args = parser.parse_args(argv)
    actor, env = load_refined(parser, args.model)
    dt = env.config.control_period
    name, values = law_values(parser, args, actor, dt)
    if len(values) < 2:
        parser.error("two or more --arrival-lags or --servo-gains: the head chooses among them")
    if set(args.label_seeds) & set(VALIDATION_SEEDS + TEST_SEEDS) or args.label_sets < 1 or args.fit_steps < 1:
        parser.error("--label-seeds: training seeds only (no validation or test seed); --label-sets and "
                     "--fit-steps at least 1")
    torch.set_num_threads(1)
    tag = f"{args.model.stem}-{sha256_file(args.model)[:12]}-h{args.horizon}-{'_'.join(map(str, values))}"
    try:
        obs, outcomes = zip(*(labels(actor, env.config, values, args.horizon, args.label_sets, seed,
                                     None if args.label_cache is None
                                     else args.label_cache / f"{tag}-{seed}-{args.label_sets}.npz")
                              for seed in args.label_seeds))
    except ValueError as e:
        parser.error(str(e))
    with torch.no_grad():
        inputs, _ = features(actor, torch.as_tensor(np.concatenate(obs), dtype=torch.float32))
    head, regrets = fit(inputs, label_costs(np.concatenate(outcomes)), args.fit_steps)
    print(f"{args.model.name}, {name}s {values}, horizon {args.horizon}, labels of seeds {args.label_seeds} "
          f"x {args.label_sets} sets: {regrets}")
    bound = bound_table(env.config, args.episodes, args.seed, cache_dir=args.bound_cache).bound_seconds
    own = closed_loop(actor, None, values, env.config, args.episodes, args.seed, bound)
    learned = closed_loop(actor, head, values, env.config, args.episodes, args.seed, bound)
    for law, metrics in (("graph's own law", own), (f"head's {name}", learned)):
        print(f"  seed {args.seed}, {args.episodes} sets, {law}: {timing_figures(metrics)}; mean settle "
              f"{mean_settle(metrics, dt):.3f} periods")
        if args.optimum_cache is not None:
            print(f"    settle / dynamic optimum: {versus_optimum(metrics['per_set'], env.config, args)}")
    print(f"  mean settle, head / own: {mean_settle(learned, dt) / mean_settle(own, dt):.3f}")


if __name__ == "__main__":
    main()
