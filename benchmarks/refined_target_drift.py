"""Whether a refined policy holds its target from one control period to the next, on validation goal sets.

For a model exported by ``ship.refine`` (its student and refinement read from the graph, ``refined_student``) on
the goal sets of a validation seed, call by call (``RefinedTargetActor.choose``):

- on how many calls outside tolerance no box lands, so that the command is the student's clipped one;
- the box of the first call (the least number of periods n_0 whose box lands) against the step the policy enters
  the tolerance in, e - n_0: the periods it loses against its own first plan;
- the calls before entering where the box's number of periods does not fall by one (n_{t+1} > n_t - 1), and how
  far the target moves there, max_j |q_T,j(t+1) - q_T,j(t)| / (v_j dt) (periods at the velocity limit): a target
  that stays put and is not reached in time is the command law falling behind its plan; one that moves is the
  drift between solutions;
- held, enter and settle over the velocity bound, and the share of sets that leave the tolerance after entering.

``--hold-first-target`` is a probe of a law that holds its target: each set keeps its first call's target (where that
call chose one) until every end effector is within tolerance, commanded by the graph's own law.

    python -m benchmarks.refined_target_drift models/gr1_reach.onnx --episodes 200 [--hold-first-target]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mtpolicy.vocabulary import Parser
from mtpolicy_training.algos.refined_target import RefinedTargetActor, TargetChoice
from mtpolicy_training.core.run_record import RunRefused
from mtpolicy_training.envs.reach import ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import evaluate_reach
from mtpolicy_training.envs.seeds import VALIDATION_SEED, VALIDATION_SEEDS
from mtpolicy_training.envs.time_optimal import bound_table
from mtpolicy_training.ship.refine import recorded_refinement, refined_student

NO_BOX = 0
"""The box number of a call on which no box lands (or whose end effectors are all within tolerance)."""


def main(argv: list[str] | None = None) -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                    prog="python -m benchmarks.refined_target_drift")
    parser.add_argument("model", type=Path, help="a model exported by ship.refine (.onnx)")
    parser.add_word("seeds", type=int, default=VALIDATION_SEED, choices=VALIDATION_SEEDS,
                    help="validation seed (the test seeds only report)")
    parser.add_word("episode count", type=int, default=200, help="goal sets")
    parser.add_argument("--hold-first-target", action="store_true",
                        help="keep each set's first target until every end effector is within tolerance")
    parser.add_argument("--bound-cache", type=Path, help="directory of cached bound tables")
    args = parser.parse_args(argv)
    actor, env = load_refined(parser, args.model)
    targets, boxes, outside = [], [], []
    first: list[TargetChoice] = []  # the first call's choice

    def act(obs: np.ndarray) -> np.ndarray:
        o = torch.as_tensor(obs, dtype=torch.float32)
        with torch.no_grad():
            choice = actor.choose(o)
            if not first:
                first.append(choice)
            if args.hold_first_target:
                choice = hold_first(choice, first[0])
            command = actor.command(o, choice)
        landed = choice.landed.numpy()
        targets.append(choice.target.numpy())
        boxes.append(np.where(landed.any(axis=0) & ~choice.within.numpy(), landed.argmax(axis=0) + 1, NO_BOX))
        outside.append(~choice.within.numpy())
        return command.numpy()

    dt = env.config.control_period
    bound = bound_table(env.config, args.episodes, args.seed, cache_dir=args.bound_cache).bound_seconds
    metrics = evaluate_reach(act, env.config, args.episodes, args.seed, bound=bound, per_set=True)
    law = "holding the first target" if args.hold_first_target else "as the graph plans"
    print(drift_report(np.stack(targets), np.stack(boxes), np.stack(outside), metrics["per_set"]["time_to_reach"] / dt,
                       env.spec.velocity_limits * dt, f"{args.model.name}, seed {args.seed}, {law}"))
    print(f"  {timing_figures(metrics)}")


def load_refined(parser: Parser, model: Path, command: str | None = None,
                 why: str = "") -> tuple[RefinedTargetActor, ReachVectorEnv]:
    """A model exported by ``ship.refine`` as its torch module and env (with ``command``, only a model whose
    refinement heads for its target so, refused saying ``why``); a bad model is the parser's one-line error."""
    try:
        refinement = recorded_refinement(model)
        if command is not None and refinement.command != command:
            raise RunRefused(f"{model}: its command is {refinement.command!r}; {why}")
        actor, env, _ = refined_student(model, refinement)
    except (OSError, KeyError, ValueError) as e:  # a missing file; RunRefused, CorruptFile, a bad value
        parser.error(str(e) if isinstance(e, RunRefused) else f"{model}: {e}")
    return actor, env


def timing_figures(metrics: dict) -> str:
    """Held, enter and settle over the bound (median, p90) and the share that leaves after entering."""
    return (f"held {metrics['success_rate']:.3f}; enter / bound {metrics['time_ratio_median']:.2f}, "
            f"{metrics['time_ratio_p90']:.2f}; settle / bound {metrics['settle_ratio_median']:.2f}, "
            f"{metrics['settle_ratio_p90']:.2f} (median, p90); left after entering "
            f"{metrics['left_after_entering_rate']:.1%}")


def hold_first(choice: TargetChoice, first: TargetChoice) -> TargetChoice:
    """``choice`` with the first call's target on the rows where that call chose one outside tolerance and some end
    effector is still outside it."""
    keep = first.chosen & ~first.within & ~choice.within
    return choice._replace(target=torch.where(keep[:, None], first.target, choice.target), chosen=choice.chosen | keep)


def drift_report(targets: np.ndarray, boxes: np.ndarray, outside: np.ndarray, enter: np.ndarray,
                 period_travel: np.ndarray, title: str) -> str:
    """The module's figures from each call's ``targets`` (calls, sets, n_joints), ``boxes`` (calls, sets; NO_BOX
    where none lands or all are within), ``outside`` (calls, sets), each set's entering step ``enter`` (NaN: never)
    and each joint's travel in a period at its velocity limit."""
    reached = np.isfinite(enter)
    fallback = outside & (boxes == NO_BOX)
    lost, moves, slipped = [], [], 0
    for i in np.flatnonzero(reached):
        e = int(round(enter[i]))
        if boxes[0, i] != NO_BOX:
            lost.append(int(e - boxes[0, i]))
        slips = [t for t in range(e - 1) if NO_BOX not in (boxes[t, i], boxes[t + 1, i])
                 and boxes[t + 1, i] > boxes[t, i] - 1]
        moves += [np.max(np.abs(targets[t + 1, i] - targets[t, i]) / period_travel) for t in slips]
        slipped += bool(slips)
    lost_, moves_ = np.array(lost), np.array(moves)
    lines = [f"{title}: {len(enter)} goal sets, {reached.sum()} entered",
             f"  calls outside tolerance {outside.sum()}; no box lands on {fallback.sum()} "
             f"({fallback.sum() / max(outside.sum(), 1):.1%}), on the first call of {fallback[0].sum()} sets"]
    if len(lost_):
        shares = ", ".join(f"{v:+d}: {np.mean(lost_ == v):.1%}" for v in np.unique(lost_))
        lines.append(f"  first call's box, median {np.median(boxes[0][boxes[0] != NO_BOX]):.0f} periods; entering "
                     f"step minus it: {shares}")
    lines.append(f"  calls before entering whose box does not fall by one: {len(moves_)}, on {slipped}/"
                 f"{reached.sum()} sets")
    if len(moves_):
        lines.append(f"  the target moves there by {np.median(moves_):.2f} periods at the velocity limit (median), "
                     f"p90 {np.percentile(moves_, 90):.2f}; under 0.1 period on {np.mean(moves_ < 0.1):.1%}, over 0.5 "
                     f"on {np.mean(moves_ > 0.5):.1%}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
