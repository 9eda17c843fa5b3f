"""Ship a trained reach run: copy its policy to a models folder with a model card and curve.

    python -m mtpolicy_training.ship.model_card runs/planar8/dagger-local --name planar8_reach --best \
        --command "python -m mtpolicy_training.train dagger ..."

The card's published figures are the evaluation protocol's (``envs/reach_evaluation.py``)
on the test seeds (``TEST_SEEDS``, ``episodes`` goal sets each), for the policy, the
DLS baseline and mink on the same goal sets, held success pooled with a 95 %
Wilson interval. The training figures (budget, total training wall time,
when the best policy was found) are read from the run's files, in the one
run-record schema (``core/trainer.py``) of every trainer family, records made
before it too (``read_best``). With ``--best`` it ships
``best_policy.onnx`` (chosen on validation seeds).
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import tyro

from mtpolicy.integrity import strict_json
from mtpolicy.policy import MODELS_DIR, OnnxPolicy
from mtpolicy_training.core.options import parse_config
from mtpolicy_training.core.run_record import read_run_config
from mtpolicy_training.core.trainer import read_best
from mtpolicy_training.envs.reach import ReachConfig
from mtpolicy_training.envs.reach_evaluation import dls_controller, evaluate_reach, mink_controller, onnx_controller
from mtpolicy_training.envs.seeds import TEST_SEEDS
from mtpolicy_training.envs.registry import ReachTaskSet, make_task_set
from mtpolicy_training.envs.variants import VariantReachTaskSet
from mtpolicy_training.ship.pooled_figures import summary


@dataclass
class CardConfig:
    """Which run to ship, under which name, where."""

    run: tyro.conf.Positional[Path]
    """Run directory of a reach training run (with config.json, metrics.csv and the ONNX policies)."""
    name: str
    """Model name: <out-dir>/<name>.onnx."""
    command: str
    """The command that reproduces the run."""
    note: str = ""
    """Free text under the training figures (e.g. what else loaded the machine during the run)."""
    best: bool = False
    """Ship the run's best-validated policy (best_policy.onnx) instead of its last one."""
    model: Path | None = None
    """Ship this ONNX file made from the run instead (``ship.refine``'s refined_policy.onnx)."""
    episodes: int = 500
    """Goal sets (one an episode) per test seed."""
    table: Path | None = None
    """A ``reach_table`` results.json holding this model's row: its figures are used instead of evaluating again."""
    out_dir: Path = MODELS_DIR
    """Where the model, its card and its curve are written."""


def run_env(config: dict, robot: str) -> ReachConfig:
    """The reach env a run trained on: its ``env`` section, its reach task set's (``train sac-family``), or on a
    robot's variants (``train ppo|a2c --robot``) the shipped variant ``robot``'s."""
    if "env" in config:
        return ReachConfig(**config["env"])
    if config.get("robot"):
        variants = VariantReachTaskSet.of(config["robot"], config["goal_distribution"], config.get("reward", "paper"))
        return variants.config(variants.task_names.index(robot))
    task_set = make_task_set(config["task_set"])
    if not isinstance(task_set, ReachTaskSet):
        raise ValueError(f"task set {config['task_set']!r} is not a robot's reach set: no reach env")
    return task_set.config


def training_seconds(run: Path) -> float | None:
    """Total training wall seconds of a run over all its sessions: the last ``perf/train_seconds`` logged."""
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    values = [float(r["perf/train_seconds"]) for r in rows if r.get("perf/train_seconds")]
    return values[-1] if values else None


def test_figures(policy_path: Path, env: ReachConfig, goal_sets: int,
                 table: Path | None = None, model: str = "") -> dict[str, dict[str, float]]:
    """Policy, DLS and mink on the test seeds' goal sets: ``pooled_figures.summary`` of each, read from a reach
    table's results (``table``, rows of ``model`` and the anchors on its robot and goal distribution) if given."""
    if table is not None:
        rows = [r for r in json.loads(table.read_text()) if r["robot"] == env.robot
                and r["goal_distribution"] == env.goal_distribution and r["seeds"] == list(TEST_SEEDS)]
        found = {("policy" if r["controller"] == model else r["controller"]): r["summary"] for r in rows
                 if r["controller"] in (model, "dls", "mink")}
        if set(found) != {"policy", "dls", "mink"}:
            raise SystemExit(f"error: {table} has no test-seed rows of {model}, dls and mink on {env.robot} "
                             f"{env.goal_distribution}")
        return {k: found[k] for k in ("policy", "dls", "mink")}
    controllers = {"policy": onnx_controller(policy_path)[0], "dls": dls_controller(env),
                   "mink": mink_controller(env)}
    return {name: summary([evaluate_reach(c, env, goal_sets, seed) for seed in TEST_SEEDS], goal_sets)
            for name, c in controllers.items()}


def plot_curve(metrics_csv: Path, png: Path, title: str, tolerance: float, robot: str) -> None:
    """Validation held success (of ``robot``, in a run over a robot's variants) and time to reach against training
    wall time, labeled."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in csv.DictReader(metrics_csv.open()) if r.get("eval/success_rate")]
    held = f"eval/success_rate_{robot}" if rows and f"eval/success_rate_{robot}" in rows[0] else "eval/success_rate"
    minutes = [float(r["perf/train_seconds"]) / 60 for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    a1.plot(minutes, [float(r[held]) for r in rows], marker="o", label="held success")
    if rows and "eval/reached_rate" in rows[0]:  # a run over variants validates held success alone
        a1.plot(minutes, [float(r["eval/reached_rate"]) for r in rows], marker=".", ls="--", label="reached once")
    a1.set(title=f"validation goal sets (tolerance {tolerance} m)", xlabel="training wall time (min)",
           ylabel="share of goal sets", ylim=(0, 1.02))
    a1.legend(fontsize=8)
    if rows and "eval/time_to_reach_median" in rows[0]:
        a2.plot(minutes, [float(r["eval/time_to_reach_median"]) for r in rows], marker="o", label="median, held sets")
        a2.legend(fontsize=8)
    a2.set(title="time to reach", xlabel="training wall time (min)", ylabel="s")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def found_text(best: dict) -> str:
    """The card's sentence on when the shipped best policy was found (a best-run record, ``core/trainer.py``)."""
    if "found_after_train_seconds" not in best:
        return ""
    at = [f"{best['step']:,} env steps" if "step" in best else "",
          f"iteration {best['iteration']}" if "iteration" in best else ""]
    return (" The shipped policy is the run's best on the validation goal sets, found after "
            f"{best['found_after_train_seconds'] / 60:.1f} min of training" + "".join(f", {a}" for a in at if a) + ".")


def budget_text(config: dict) -> str:
    """The run's budget, from its config record: env steps (DAgger: and iterations)."""
    steps = f"{config['budget_steps']:,} env steps" if config.get("budget_steps") else "budget unknown"
    n = config.get("iterations")
    return steps + (f" ({n} iteration{'s' if n != 1 else ''})" if n else "")


def error_figures(ee: str, s: dict[str, float]) -> str:
    """End effector ``ee``'s final error in figures ``s``: median / p90 (mm)."""
    return f"{1000 * s[f'error_median_{ee}']:.1f} / {1000 * s[f'error_p90_{ee}']:.1f}"


def figure_rows(figures: dict[str, dict[str, float]], end_effectors: tuple[str, ...]) -> str:
    """The card's table: one row per metric, one column per controller."""
    names = list(figures)
    rows = [("held success [95% CI]", lambda s: f"{s['success_rate']:.3f} [{s['success_low']:.3f}, "
                                                f"{s['success_high']:.3f}]"),
            ("reached once", lambda s: f"{s['reached_rate']:.3f}"),
            ("time to reach, median (s)", lambda s: f"{s['time_to_reach_median']:.2f}"),
            ("dithering (sign changes per joint, final s)", lambda s: f"{s['dither_sign_changes']:.3f}")]
    rows += [(f"final error {ee}, median / p90 (mm)", partial(error_figures, ee)) for ee in end_effectors]
    head = "| metric | " + " | ".join(names) + " |\n|---|" + "---|" * len(names)
    return head + "\n" + "\n".join(f"| {label} | " + " | ".join(fmt(figures[n]) for n in names) + " |"
                                   for label, fmt in rows)


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(CardConfig, argv, prog="python -m mtpolicy_training.ship.model_card")
    config = read_run_config(cfg.run)
    source = cfg.model or cfg.run / f"{'best_' if cfg.best else ''}policy.onnx"
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = cfg.out_dir / f"{cfg.name}.onnx"
    if source.resolve() != onnx_path.resolve():
        shutil.copyfile(source, onnx_path)
    contract = OnnxPolicy(onnx_path).contract
    env = run_env(config, contract.robot)
    refine = contract.training_config.get("refine")  # a refined export's settings (``ship.refine``)
    figures = test_figures(onnx_path, env, cfg.episodes, cfg.table, cfg.name)
    (cfg.out_dir / f"{cfg.name}_test.json").write_text(strict_json(figures, indent=2))
    plot_curve(cfg.run / "metrics.csv", cfg.out_dir / f"{cfg.name}_curve.png",
               f"{cfg.name}: {contract.method} on {contract.robot}, {env.goal_distribution} goals",
               env.tolerance, contract.robot)
    seconds = training_seconds(cfg.run)
    found = found_text(read_best(cfg.run / "best.json") if cfg.best else {})
    commanded = contract.observation_layout.previous_command
    if contract.planner:
        planner = (f"The observation {'holds' if commanded else 'ends with'} `goal_config_error` = q* - q, q* from "
                   f"`mtpolicy.planner` with `{json.dumps(contract.planner)}` (in the contract; the controller node "
                   "runs it when a goal set arrives).")
    else:
        planner = "No planner." if commanded else "No planner: the observation is the plain layout."
    if commanded:
        planner += (" The observation ends with `previous_command`: the joint velocities the controller sent the "
                    "period before, after the acceleration ramp.")
    flags = f"{' --best' if cfg.best else ''}{f' --model {cfg.model}' if cfg.model else ''}"
    text = f"""# {cfg.name}

Method **{contract.method}** on robot **{contract.robot}** (MJCF `{contract.robot_mjcf}`; joints
{', '.join(contract.joints)}; end-effector sites {', '.join(contract.end_effectors)} in the frame of body
`{contract.base_frame}`), trained on **{contract.goal_distribution}** goal sets. Control period
{contract.control_period} s; output: joint velocities in rad/s, limits {list(contract.velocity_limits)}.
{planner}

## Test figures
{cfg.episodes} goal sets on each of the test seeds {list(TEST_SEEDS)}
(`mtpolicy_training.envs.seeds.TEST_SEEDS`, never used for a choice), {contract.goal_distribution} goal
distribution, 4 s episodes; held success = every end
effector within {env.reach_tolerance} m at every control step of the final 1 s, pooled over the seeds with a 95 %
Wilson interval; time to reach = first time all are within tolerance (median over held goal sets); dithering = sign
changes per joint of the commanded velocity in the final second (commands above 1 % of the limit). DLS
(`mtpolicy.dls`) and mink (differential IK as a QP with joint position and velocity limits) run on the same goal
sets at the same control period and velocity limits. Figures: `{cfg.name}_test.json`.

{figure_rows(figures, contract.end_effectors)}

## Training
{budget_text(config)}; total training wall time
{f'{seconds / 60:.1f} min' if seconds is not None else 'unknown'} on this 2-core machine (all sessions).{found}
{cfg.note}

![validation curve]({cfg.name}_curve.png)

## Reproduce

```
{cfg.command}
python -m mtpolicy_training.ship.model_card {cfg.run} --name {cfg.name}{flags} --command "..."
```

## Training config

```json
{json.dumps(config | ({"refine": refine} if refine else {}), indent=2)}
```
"""
    (cfg.out_dir / f"{cfg.name}.md").write_text(text)
    print(f"wrote {onnx_path}, {cfg.out_dir / (cfg.name + '.md')} and the curve beside them")


if __name__ == "__main__":
    main()
