"""How often PiCor's correction acts, measured on a run's checkpoint and replay.

    python -m benchmarks.picor_constraint \
        benchmarks/results/dgrad-mt10/runs/mtsac/mt10/2 --batches 30

For each run directory of a task family whose networks are MTSAC's (mtsac,
dgrad-o, picor), the checkpoint's networks and temperatures are loaded into a
``PiCor`` with the given settings, and ``batches`` minibatches of the run's
replay (PiCor's: ``batch_per_task`` x tasks rows of every task) each go
through one PiCor update (Algorithm 1: an optimization step on a drawn task,
then the correction) from the checkpoint's state. With ``--sequential``
the updates follow one another from the checkpoint instead, as a PiCor
run would have continued (the task draws too; an mtsac or dgrad-o run
continues under PiCor's update, not its own). The figures change from one
update's state to the next more than between minibatches at one state
(docs/picor.md), so a probe of the checkpoint's state alone describes that
state; the sequence samples states near it. Printed per run:

- binds: the fraction of updates where Eq. 8's constraint was violated after
  the optimization step, so the correction took steps;
- the weighted advantage sum_z w_z E_z[A^{pi_t}] after the optimization step,
  and its parts: E[A] on the drawn task's states and on the other tasks'
  (mean over them);
- remaining: the median over binding updates of c~ after the correction
  divided by c~ before it. A PiCor run's checkpoint brings its correction
  optimizer's state; for other runs that optimizer starts fresh, so its first
  step has the learning rate's full size;
- KL: the median over binding updates of KL(pi_phi || pi'_t) after the
  correction (mean over the correction's states): how far it moved the policy;
  largest KL: the largest over binding updates;
- action change: the median over binding updates of the correction's change
  of the policy's action tanh(mu), its largest coordinate, mean over the
  states. Where a pre-squash sigma is tiny, a small move of mu is a large KL
  but a small change of the action;
- the change of the policy's width (sum of the pre-squash log sigma, mean
  over the correction's states) by the optimization step and by the
  correction (0 where it did not bind).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import tyro

from mtpolicy_training.algos.picor import PiCor, PiCorConfig
from benchmarks.run_checkpoint import load_run, mean_std, replay_updates

ADVANTAGES = ("weighted_advantage", "advantage_sampled_task", "advantage_other_tasks")
WIDTH_CHANGES = ("log_std_change_optimization", "log_std_change_correction")
OF_BINDING_UPDATES = ("remaining", "kl", "kl_max", "action_change")
"""Figures over the binding updates only: NaN where none bound."""


def probe(run_dir: Path, picor: PiCorConfig, batches: int, seed: int,
          sequential: bool = False) -> tuple[int, dict[str, float]]:
    """The checkpoint's env step and the figures of the module doc: ``binds``, ``remaining``, ``kl``, ``kl_max``,
    ``action_change`` and the mean and std of each of ``ADVANTAGES`` and ``WIDTH_CHANGES`` (as ``<name>`` and
    ``<name>_std``)."""
    run = load_run(run_dir)
    method = PiCor(run.family, picor, run.state_size, run.action_size, run.n_tasks, seed=seed)
    start = run.start_for(method)
    starts = [start | {"task_rng": np.random.default_rng([seed, i]).bit_generator.state}
              for i in range(1 if sequential else batches)]  # sequential: the later updates continue (None)
    rows = list(replay_updates(method, starts + [None] * (batches - len(starts)), run, seed,
                               run.batch_per_task * run.n_tasks))  # PiCor's batch, as the sac-family trainer samples it
    out = {"binds": float(np.mean([r["correction_active"] for r in rows]))}
    for name, (mean, std) in mean_std(rows, ADVANTAGES + WIDTH_CHANGES).items():
        out |= {name: mean, f"{name}_std": std}
    binding = [r for r in rows if r["correction_active"]]
    kls = [r["correction_kl"] for r in binding]
    figures = (median_or_nan([r["constraint_gap_after"] / r["constraint_gap"] for r in binding]), median_or_nan(kls),
               max(kls, default=float("nan")), median_or_nan([r["correction_action_change"] for r in binding]))
    return run.step, out | dict(zip(OF_BINDING_UPDATES, figures, strict=True))


def median_or_nan(values: list[float]) -> float:
    """NaN where no update bound: nothing to take the median of."""
    return float(np.median(values)) if values else float("nan")


@dataclass
class ConstraintProbeConfig:
    """Runs to probe and the PiCor settings to probe them with."""

    run_dirs: tyro.conf.Positional[list[Path]]
    """Run directories (each with config.json and checkpoint.pt)."""
    picor: PiCorConfig = field(default_factory=PiCorConfig)
    """PiCor's settings (c, lambda, tau, correction steps, ...)."""
    batches: int = 30
    """Replay minibatches per run, each one PiCor update (from the checkpoint's state, or after the last)."""
    seed: int = 0
    """Seed of the minibatch draws, the task draws and the action noise."""
    sequential: bool = False
    """Take the updates one after another from the checkpoint (the run continued) instead of each from it."""

    def __post_init__(self):
        bad = (["batches"] if self.batches <= 0 else []) + [f"picor.{k}" for k in self.picor.validate()]
        if bad:
            raise ValueError("invalid config value(s): " + ", ".join(bad))


def main(argv: list[str] | None = None) -> None:
    config = tyro.cli(ConstraintProbeConfig, args=argv)
    torch.set_num_threads(1)
    order = "one update after another from the checkpoint" if config.sequential else "each from the checkpoint"
    print(f"c = {config.picor.c}, lambda = {config.picor.lam}, {config.picor.correction_steps} correction steps, "
          f"{config.batches} minibatches per run, {order}\n")
    print("| run | step | binds | weighted advantage | drawn task's states | other tasks' states | remaining | KL "
          "| largest KL | action change | width change, optimization step | width change, correction |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run_dir in config.run_dirs:
        step, r = probe(run_dir, config.picor, config.batches, config.seed, config.sequential)
        advantages, widths = (" | ".join(f"{r[k]:.2g} ± {r[k + '_std']:.2g}" for k in keys)
                              for keys in (ADVANTAGES, WIDTH_CHANGES))
        print(f"| {run_dir} | {step} | {r['binds']:.2f} | {advantages} | {r['remaining']:.2f} | {r['kl']:.2g} "
              f"| {r['kl_max']:.2g} | {r['action_change']:.2g} | {widths} |", flush=True)


if __name__ == "__main__":
    main()
