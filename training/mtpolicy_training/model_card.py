"""Ship a trained run: copy its policy to models/ with a model card and curve.

    python -m mtpolicy_training.model_card runs/planar8/ship --name planar8_digrad \
        --command "python -m mtpolicy_training.train ..."

The card's figures are read from the run's files (eval.json, metrics.csv,
config.json) and the DLS baseline is evaluated on the same held-out goal sets.
With ``--best`` it ships ``best_policy.onnx`` with ``best_eval.json``; of a run
still training (no ``best_eval.json`` yet) it evaluates that policy on the
held-out goal sets itself.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import tyro

from mtpolicy.policy import MODELS_DIR, OnnxPolicy
from mtpolicy_training.envs.reach import ReachConfig
from mtpolicy_training.envs.tasksets import make_task_set
from mtpolicy_training.evaluate import dls_controller, evaluate_reach, onnx_controller
from mtpolicy_training.train import when_found


@dataclass
class CardConfig:
    """Which run to ship, under which name."""

    run: tyro.conf.Positional[Path]
    """Run directory of ``train`` or of ``train_sac_family`` on a reach set (with policy.onnx, eval.json,
    metrics.csv, config.json)."""
    name: str
    """Model name: models/<name>.onnx."""
    command: str
    """The command that reproduces the run."""
    note: str = ""
    """Free text under the training budget (e.g. what else loaded the machine during the run)."""
    best: bool = False
    """Ship the run's best-validated policy (best_policy.onnx, best_eval.json) instead of its last one."""


def selected(best_eval: dict) -> str:
    """What the card says of a shipped best-validated policy (``best_eval.json``: when it was found, if recorded)."""
    found = best_eval.get("found_after_session_seconds")
    when = f", found {found / 60:.1f} min into its training session" if found is not None else ""
    return ("This is the run's best-validated policy: the one with the highest success on the periodic "
            f"evaluations (validation goal sets){when}, evaluated above on the held-out sets. ")


def run_env(config: dict) -> ReachConfig:
    """The reach env a run trained on: its ``env`` section (``train``) or its reach task set's
    (``train_sac_family``, which trains on the robot's default ReachConfig)."""
    if "env" in config:
        return ReachConfig(**config["env"])
    return make_task_set(config["task_set"]).config


def held_out_evaluation(run: Path, prefix: str, env: ReachConfig) -> dict:
    """The run's ``<prefix>eval.json``; for the best policy of a run still training (no ``best_eval.json``
    yet), its evaluation on the held-out goal sets now, with when it was found (``best.json``)."""
    path = run / f"{prefix}eval.json"
    if path.exists() or not prefix:
        return json.loads(path.read_text())
    found = when_found(json.loads((run / "best.json").read_text()))
    return {**evaluate_reach(onnx_controller(run / "best_policy.onnx")[0], env), **found}


def training_time(ev: dict) -> str:
    """The card's training-time sentence for an evaluation record (a run still training has none)."""
    if "train_wall_seconds_this_session" not in ev:
        return "still training when this card was made."
    return (f"{ev['train_wall_seconds_this_session'] / 60:.1f} min wall clock on this 2-core machine "
            "(the last session of the run).")


def plot_curve(metrics_csv: Path, png: Path, tolerance: float) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in csv.DictReader(metrics_csv.open()) if r["eval/success_rate"]]  # rows with an evaluation
    steps = [float(r["step"]) for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    a1.plot(steps, [float(r["eval/success_rate"]) for r in rows])
    a1.set(title=f"success rate (all EEs within {tolerance} m)", xlabel="env steps", ylim=(0, 1.02))
    scores = [k for k in rows[0] if k.startswith("eval/score_")]
    for k in scores:
        a2.plot(steps, [float(r[k]) for r in rows], label=k.removeprefix("eval/score_"))
    a2.plot(steps, [float(r["eval/mean_score"]) for r in rows], "k--", label="mean")
    a2.set(title="score = -log(error) at episode end", xlabel="env steps")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> None:
    cfg = tyro.cli(CardConfig)
    config = json.loads((cfg.run / "config.json").read_text())
    prefix = "best_" if cfg.best else ""
    env = run_env(config)
    ev = held_out_evaluation(cfg.run, prefix, env)
    dls = evaluate_reach(dls_controller(env), env)
    onnx_path = MODELS_DIR / f"{cfg.name}.onnx"
    shutil.copyfile(cfg.run / f"{prefix}policy.onnx", onnx_path)
    contract = OnnxPolicy(onnx_path).contract
    plot_curve(cfg.run / "metrics.csv", MODELS_DIR / f"{cfg.name}_curve.png", env.reach_tolerance)
    settling = [k for k in ("left_after_reach_rate", "action_sign_change_rate", "settled_action_abs_mean") if k in ev]
    rows = ["success_rate", "mean_score", "time_to_reach_median", *settling] + \
           [k for k in ev if k.startswith(("error_median", "error_p90", "score_"))]
    table = "\n".join(f"| {k} | {ev[k]:.4f} | {dls[k]:.4f} |" for k in rows)
    text = f"""# {cfg.name}

Method **{contract.method}** on robot **{contract.robot}** (joints {', '.join(contract.joints)};
end effectors {', '.join(contract.end_effectors)}), control period {contract.control_period} s,
output: joint velocities in rad/s, limits {list(contract.velocity_limits)}.

## Evaluation
500 held-out goal sets (seed of `mtpolicy_training.evaluate.HELD_OUT_SEED`), random start
configurations, goal configurations within {env.goal_joint_range} rad per joint of the start,
{env.max_episode_steps} steps of {env.control_period} s; success = every end effector within
{env.reach_tolerance} m at the end of the episode; time to reach = first time all are within {env.reach_tolerance} m
(median over successes, s). Baseline: damped least squares (`mtpolicy.dls`) on the same goal sets
under the same velocity limits.

| metric | policy | DLS baseline |
|---|---|---|
{table}

Training: {config['loop']['total_steps']} env steps, seed {config['seed']},
{training_time(ev)} {selected(ev) if cfg.best else ""}{cfg.note}

![learning curve]({cfg.name}_curve.png)

## Reproduce

```
{cfg.command}
python -m mtpolicy_training.model_card {cfg.run} --name {cfg.name}{" --best" if cfg.best else ""} --command "..."
```

## Training config

```json
{json.dumps(config, indent=2)}
```
"""
    (MODELS_DIR / f"{cfg.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
