"""Compare reach methods at equal budget over seeds (DiGrad paper, Fig. 4A).

    python -m mtpolicy_training.benchmarks.compare_reach --total-steps 150000 --seeds 1 2 3

Runs every setting x seed as its own ``mtpolicy_training.train`` process (so
each run checkpoints and resumes on its own: run the same command again to
continue), ``workers`` at a time with one torch thread each, then writes to
``out_dir``: ``results.json``, ``table.md`` (final held-out evaluation, mean
+- std over seeds, plus the DLS baseline on the same goal sets) and
``curves.png`` (periodic evaluation: mean score overall and per task, and
success rate, vs env steps; mean over seeds, shaded +- std).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tyro

SETTINGS = {
    "digrad-single-heur": ["--algo.method", "digrad", "--algo.critic", "single", "--algo.heuristic"],
    "digrad-single": ["--algo.method", "digrad", "--algo.critic", "single", "--algo.no-heuristic"],
    "digrad-multi-heur": ["--algo.method", "digrad", "--algo.critic", "multi", "--algo.heuristic"],
    "digrad-multi": ["--algo.method", "digrad", "--algo.critic", "multi", "--algo.no-heuristic"],
    "ddpg": ["--algo.method", "ddpg"],
}


@dataclass
class CompareConfig:
    """A grid of reach settings x seeds."""

    settings: list[str] = field(default_factory=lambda: list(SETTINGS))
    """Settings to run (names of SETTINGS)."""
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    """Seeds per setting."""
    total_steps: int = 150_000
    """Env steps per run (equal budget)."""
    workers: int = 2
    """Runs at once (one torch thread each)."""
    out_dir: Path = Path("benchmarks/results/planar8_compare")
    """Where runs, table and curves go."""
    extra: list[str] = field(default_factory=list)
    """More ``mtpolicy_training.train`` arguments for every run."""


def run_one(cfg: CompareConfig, setting: str, seed: int) -> Path:
    out = cfg.out_dir / "runs" / setting / str(seed)
    if (out / "eval.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mtpolicy_training.train", *SETTINGS[setting], "--seed", str(seed),
           "--out-dir", str(out), "--loop.total-steps", str(cfg.total_steps), "--no-progress", *cfg.extra]
    with (out / "train.log").open("a") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
    return out


def read_curves(run: Path) -> dict[str, np.ndarray]:
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    keys = [k for k in rows[0] if k == "step" or k.startswith("eval/")]
    return {k: np.array([float(r[k]) if r.get(k) else np.nan for r in rows]) for k in keys}


def summarize(cfg: CompareConfig) -> dict:
    from mtpolicy_training.envs.reach import ReachConfig
    from mtpolicy_training.evaluate import dls_controller, evaluate_reach

    results = {s: [json.loads((cfg.out_dir / "runs" / s / str(seed) / "eval.json").read_text()) for seed in cfg.seeds]
               for s in cfg.settings}
    results["dls (baseline)"] = [evaluate_reach(dls_controller(ReachConfig()), ReachConfig())]
    (cfg.out_dir / "results.json").write_text(json.dumps(results, indent=2))
    ees = [k.removeprefix("score_") for k in results[cfg.settings[0]][0] if k.startswith("score_")]
    cols = ["success_rate", "mean_score"] + [f"score_{e}" for e in ees] + ["time_to_reach_median"]
    lines = ["| setting | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for s, runs in results.items():
        cells = []
        for c in cols:
            v = np.array([r[c] for r in runs], dtype=float)
            cells.append(f"{np.nanmean(v):.3f} ± {np.nanstd(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    cmd = "python -m mtpolicy_training.benchmarks.compare_reach " + " ".join(
        [f"--total-steps {cfg.total_steps}", "--seeds " + " ".join(map(str, cfg.seeds))] +
        (["--extra " + " ".join(cfg.extra)] if cfg.extra else []))
    (cfg.out_dir / "table.md").write_text(
        f"Final evaluation on 500 held-out goal sets after {cfg.total_steps} env steps, mean ± std over seeds "
        f"{cfg.seeds}.\n\n{table}\n\nReproduce: `{cmd}`\n")
    plot_curves(cfg, ees)
    return results


def plot_curves(cfg: CompareConfig, ees: list[str]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("eval/mean_score", "mean score")] + [(f"eval/score_{e}", f"score {e}") for e in ees] + \
             [("eval/success_rate", "success rate (0.02 m)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    for s in cfg.settings:
        curves = [read_curves(cfg.out_dir / "runs" / s / str(seed)) for seed in cfg.seeds]
        n = min(len(c["step"]) for c in curves)
        steps = curves[0]["step"][:n]
        for ax, (key, title) in zip(axes, panels):
            v = np.stack([c[key][:n] for c in curves])
            m, sd = v.mean(0), v.std(0)
            ax.plot(steps, m, label=s)
            ax.fill_between(steps, m - sd, m + sd, alpha=0.2)
            ax.set_title(title)
            ax.set_xlabel("env steps")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(cfg.out_dir / "curves.png", dpi=110)


def main() -> None:
    cfg = tyro.cli(CompareConfig)
    unknown = set(cfg.settings) - set(SETTINGS)
    if unknown:
        sys.exit(f"error: unknown setting(s) {sorted(unknown)}; choose from {list(SETTINGS)}")
    jobs = [(s, seed) for seed in cfg.seeds for s in cfg.settings]
    with ThreadPoolExecutor(cfg.workers) as pool:
        for out in pool.map(lambda job: run_one(cfg, *job), jobs):
            print("done", out, flush=True)
    summarize(cfg)
    print((cfg.out_dir / "table.md").read_text())


if __name__ == "__main__":
    main()
