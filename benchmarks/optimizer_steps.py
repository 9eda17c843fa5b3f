"""Adam's steps when every update fits one task (PiCor's optimization phase) against every task (MTSAC).

    python -m benchmarks.optimizer_steps benchmarks/results/picor-mt10/runs/picor/mt10/1

For each run directory of a task family whose networks are MTSAC's (mtsac,
dgrad-o, picor), the checkpoint continues for ``updates`` updates one after
another under each of two rules, from the same state: MTSAC's update
(``batch_per_task`` rows of every task) and PiCor's optimization phase alone
(``--algo.picor.no-correction``: a drawn task's rows, as many as MTSAC's whole
batch). Both keep one Adam state over the shared networks. Adam moves a
parameter by lr m / (sqrt(v) + eps), with m and v running means of its
gradient and squared gradient (beta1 0.9, beta2 0.999). Printed per rule,
after the updates, for actor and critic:

- step: the median over the parameters of |m| / sqrt(v), the size of a step
  in units of the learning rate;
- gradient RMS: sqrt of the mean of v over the parameters;
- moved: the distance the parameters moved over the last ``window`` updates.

Why the rule changes the step: MTSAC's gradient is the mean of the tasks'
gradients g_z, so v follows (mean_z g_z)^2. One task per update keeps the same
mean in m (each task is drawn one time in n) but makes v follow mean_z g_z^2:
for independent g_z of like size, n times as large, so the step shrinks by
sqrt(n); it shrinks more where the tasks' gradients cancel in the mean.
The 4000 updates by default leave 0.999^4000 = 2% of the checkpoint's v.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import tyro
from torch.nn.utils import parameters_to_vector

from mtpolicy_training.algos.picor import PiCor, PiCorConfig
from mtpolicy_training.algos.sac_family import SACFamily
from benchmarks.run_checkpoint import RunCheckpoint, load_run, replay_updates

RULES = ("mtsac", "picor-no-cor")
"""The update rules compared: MTSAC's, and PiCor's optimization phase without the correction."""
NETWORKS = ("actor", "critic")


def adam_figures(optimizer: torch.optim.Adam, params: list[torch.Tensor]) -> tuple[float, float]:
    """(median over the parameters of |m| / sqrt(v), sqrt(mean v)) from Adam's running moments."""
    m = torch.cat([optimizer.state[p]["exp_avg"].flatten() for p in params])
    v = torch.cat([optimizer.state[p]["exp_avg_sq"].flatten() for p in params])
    return float((m.abs() / (v.sqrt() + 1e-8)).median()), float(v.mean().sqrt())


def continue_run(run: RunCheckpoint, rule: str, updates: int, window: int, seed: int) -> dict[str, float]:
    """``updates`` updates under ``rule`` from the checkpoint; per network its step, gradient RMS and the distance
    moved over the last ``window`` updates (``<network>_step``, ``<network>_gradient_rms``, ``<network>_moved``)."""
    if rule == "mtsac":
        method, batch_per_task = SACFamily(run.family, run.state_size, run.action_size, run.n_tasks, seed=seed), None
    elif rule == "picor-no-cor":
        method = PiCor(run.family, PiCorConfig(correction=False), run.state_size, run.action_size, run.n_tasks,
                       seed=seed)
        batch_per_task = run.batch_per_task * run.n_tasks  # PiCor's batch, as the sac-family trainer samples it
    else:
        raise ValueError(f"rule {rule!r}: one of {', '.join(RULES)}")
    params = {name: getattr(method, f"_{name}_params") for name in NETWORKS}
    before = {}
    states = [run.start_for(method)] + [None] * (updates - 1)
    for i, _ in enumerate(replay_updates(method, states, run, seed, batch_per_task)):
        if i == updates - window - 1:
            before = {name: parameters_to_vector(ps).detach() for name, ps in params.items()}
    out: dict[str, float] = {}
    for name, ps in params.items():
        step, rms = adam_figures(getattr(method, f"{name}_opt"), ps)
        moved = float((parameters_to_vector(ps).detach() - before[name]).norm())
        out |= {f"{name}_step": step, f"{name}_gradient_rms": rms, f"{name}_moved": moved}
    return out


@dataclass
class OptimizerStepsConfig:
    """Runs to continue and for how long."""

    run_dirs: tyro.conf.Positional[list[Path]]
    """Run directories (each with config.json and checkpoint.pt)."""
    updates: int = 4000
    """Updates under each rule, one after another from the checkpoint."""
    window: int = 500
    """The last updates over which the distance moved is measured."""
    seed: int = 0
    """Seed of the minibatch draws, the task draws and the action noise."""

    def __post_init__(self):
        bad = ["window"] if not 0 < self.window < self.updates else []
        if bad:
            raise ValueError("invalid config value(s): " + ", ".join(bad) + " (need 0 < window < updates)")


def main(argv: list[str] | None = None) -> None:
    config = tyro.cli(OptimizerStepsConfig, args=argv)
    torch.set_num_threads(1)
    print(f"{config.updates} updates from each checkpoint per rule; moved: over the last {config.window}\n")
    print("| run | step | rule | " + " | ".join(f"{n} step | {n} gradient RMS | {n} moved" for n in NETWORKS) + " |")
    print("|---|---|---|" + "---|---|---|" * len(NETWORKS))
    for run_dir in config.run_dirs:
        run = load_run(run_dir)
        for rule in RULES:
            r = continue_run(run, rule, config.updates, config.window, config.seed)
            cells = " | ".join(f"{r[f'{n}_step']:.3g} | {r[f'{n}_gradient_rms']:.3g} | {r[f'{n}_moved']:.3g}"
                               for n in NETWORKS)
            print(f"| {run_dir} | {run.step} | {rule} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
