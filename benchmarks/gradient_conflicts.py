"""Gradient conflicts between tasks in trained SAC-family runs: D-Grad's premise, measured on a run's own data.

    python -m benchmarks.gradient_conflicts \
        benchmarks/results/dgrad-mt10/runs/{mtsac,dgrad-o}/mt10/1 --batches 20

For each run directory of a task family (mt10, mt50, halfcheetah8) whose
networks take the one-hot (mtsac, dgrad-o, picor: the same networks), the run's
``checkpoint.pt`` (networks, temperatures, replay) is loaded into a D-Grad(O)
instance; ``batches`` minibatches of the run's size are drawn from its replay
and each goes through one update from the checkpoint's state (loaded again
before every batch). Printed per run, as the mean and std over the batches,
for actor and critic: the fraction of task pairs whose per-task gradients
conflict (g_i . g_j < 0), and the length ratio |sum_i g_i^proj| / |sum_i g_i|
and cosine of Algorithm 1's step to SAC's (for an mtsac run: what the
projection would change).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

from mtpolicy_training.algos.sac_family import SURGERY_METRICS, SACFamily
from benchmarks.run_checkpoint import load_run, mean_std, replay_updates


def probe(run_dir: Path, batches: int, seed: int, batch_per_task: int | None = None
          ) -> tuple[int, dict[str, tuple[float, float]]]:
    """The checkpoint's env step, and the mean and std of each of ``SURGERY_METRICS`` over ``batches`` replay
    minibatches (``batch_per_task`` samples per task, default the run's) at that checkpoint."""
    run = load_run(run_dir)
    method = SACFamily(dataclasses.replace(run.family, method="dgrad-o"), run.state_size, run.action_size,
                       run.n_tasks, seed=seed)
    rows = list(replay_updates(method, [run.state] * batches, run, seed, batch_per_task))  # PiCor's own state unused
    return run.step, mean_std(rows, SURGERY_METRICS)


@dataclass
class ProbeConfig:
    """Runs to probe and how."""

    run_dirs: tyro.conf.Positional[list[Path]]
    """Run directories (each with config.json and checkpoint.pt)."""
    batches: int = 20
    """Replay minibatches per run."""
    seed: int = 0
    """Seed of the minibatch draws and the projection order."""
    batch_per_task: int | None = None
    """Samples per task of each minibatch (default: the run's); larger batches tell conflicts between the tasks'
    expected gradients from sampling noise."""

    def __post_init__(self):
        bad = ["batches"] if self.batches <= 0 else []
        bad += ["batch_per_task"] if self.batch_per_task is not None and self.batch_per_task <= 0 else []
        if bad:
            raise ValueError("invalid config value(s): " + ", ".join(bad))


def main(argv: list[str] | None = None) -> None:
    config = tyro.cli(ProbeConfig, args=argv)
    torch.set_num_threads(1)
    print("| run | step | " + " | ".join(SURGERY_METRICS) + " |")
    print("|---|---|" + "---|" * len(SURGERY_METRICS))
    for run_dir in config.run_dirs:
        step, result = probe(run_dir, config.batches, config.seed, config.batch_per_task)
        cells = " | ".join(f"{mean:.3f} ± {std:.3f}" for mean, std in result.values())
        print(f"| {run_dir} | {step} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
