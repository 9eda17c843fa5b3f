"""Gradient conflicts between tasks in trained SAC-family runs: D-Grad's premise, measured on a run's own data.

    python -m mtpolicy_training.benchmarks.gradient_conflicts \
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
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from mtpolicy_training.algos.picor import PiCorFamilyConfig
from mtpolicy_training.algos.sac import SACConfig
from mtpolicy_training.algos.sac_family import (
    SURGERY_METRICS,
    SACFamily,
    SACFamilyConfig,
    TaskReplayBuffer,
)


PROBED_METHODS = ("mtsac", "dgrad-o", "picor")
"""Runs whose networks are MTSAC's (actor and twin critic on [state, one_hot(z)]), so any of their updates applies."""


@dataclass
class RunCheckpoint:
    """What a probe rebuilds from a task family run's ``config.json`` and ``checkpoint.pt``."""

    step: int
    """Env step of the checkpoint."""
    family: SACFamilyConfig
    """mtsac networks at the run's widths and its SAC settings."""
    state: dict
    """The method's state_dict (networks, temperatures, optimizers)."""
    buffer: TaskReplayBuffer
    """The run's replay."""
    batch_size: int
    """The run's minibatch size (all tasks)."""
    n_tasks: int
    state_size: int
    """Observation size without the one-hot."""
    action_size: int


def load_run(run_dir: Path) -> RunCheckpoint:
    """The run's checkpoint, networks and replay; a clear error for a run that is not an MTSAC-network one."""
    record = json.loads((run_dir / "config.json").read_text())
    algo, loop = record["algo"], record["loop"]
    if algo["method"] not in PROBED_METHODS:
        raise ValueError(f"{run_dir}: method {algo['method']!r}; only {', '.join(PROBED_METHODS)} runs have "
                         "MTSAC's networks")
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    replay = checkpoint["buffer"]
    if "sizes" not in replay:
        raise ValueError(f"{run_dir}: not a task family's run (its replay has no per-task buffers)")
    n_tasks = len(replay["sizes"])
    obs_size, action_size = (replay["data"][k][0].shape[1] for k in ("obs", "action"))
    sac = SACConfig(**{**algo["sac"], "hidden": tuple(algo["sac"]["hidden"])})
    widths = PiCorFamilyConfig(method=algo["method"], sac=sac, paper_hidden=algo["paper_hidden"]).hidden
    family = SACFamilyConfig(method="mtsac", sac=dataclasses.replace(sac, hidden=widths), paper_hidden=False)
    buffer = TaskReplayBuffer(loop["buffer_size"], obs_size, action_size, 1, n_tasks)
    buffer.load_state_dict(replay)
    return RunCheckpoint(checkpoint["step"], family, checkpoint["method"], buffer, loop["batch_size"], n_tasks,
                         obs_size - n_tasks, action_size)


def replay_updates(method: SACFamily, states: list[dict], run: RunCheckpoint, seed: int,
                   batch_per_task: int | None = None) -> list[dict[str, float]]:
    """The metrics of one ``method.update`` per state of ``states``, each loaded before its own replay minibatch
    of ``batch_per_task`` samples per task (default the run's)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    batch_size = run.batch_size if batch_per_task is None else batch_per_task * run.n_tasks
    rows = []
    for state, batch in zip(states, run.buffer.sample(batch_size, generator, len(states)), strict=True):
        method.load_state_dict(state)
        rows.append({k: float(v) for k, v in method.update(batch).items()})
    return rows


def mean_std(rows: list[dict[str, float]], keys: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Mean and std over ``rows`` of each of ``keys``."""
    values = {k: np.array([row[k] for row in rows]) for k in keys}
    return {k: (float(v.mean()), float(v.std())) for k, v in values.items()}


def probe(run_dir: Path, batches: int, seed: int, batch_per_task: int | None = None
          ) -> tuple[int, dict[str, tuple[float, float]]]:
    """The checkpoint's env step, and the mean and std of each of ``SURGERY_METRICS`` over ``batches`` replay
    minibatches (``batch_per_task`` samples per task, default the run's) at that checkpoint."""
    run = load_run(run_dir)
    method = SACFamily(dataclasses.replace(run.family, method="dgrad-o"), run.state_size, run.action_size,
                       run.n_tasks, seed=seed)
    rows = replay_updates(method, [run.state] * batches, run, seed, batch_per_task)  # PiCor's extra state unused
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
