"""Policies against the classical controllers on the test seeds: the reach table (README, docs/reach.md), and the
test-seed table of a harness grid.

For each (robot, goal distribution) of the rows it runs each row's exported
policies and the anchors through ``reach_evaluation.evaluate_reach`` on the same
goal sets: ``episodes`` per seed of ``envs/seeds.TEST_SEEDS`` (never used
for a choice). The anchors (``anchors``):

* ``dls``: the damped-least-squares baseline; ``mink``: mink's differential IK;
* ``teacher``: the classical teacher each DAgger row's policy learned from, with
  its training config's teacher, gain, saturation and servo profile, on the
  observations of its contract: for a planner-conditioned policy, the contract's planner plans q*
  once per goal set from the start configuration (as the env does at reset) and
  the joint servo ``a = sat(k (q* - q) / v_max)`` follows it (``algos/dagger.Teacher``);
* ``time-optimal``: the closed-loop time-optimal controller, the DAgger teacher ``time_optimal`` as training runs
  it (``envs/time_optimal.TimeOptimalController``, the default ``SolverConfig``);
* ``bound``: the time-optimal bound ``N* dt`` of each goal set (``envs/time_optimal.py``)
  as a row: its time to reach is the bound, it holds nothing. Without it the bound is not solved (it costs
  seconds per goal set on a 15-joint robot) and no row has time ratios;
* ``dynamic-optimum`` (not asked for by default: seconds per goal set): the dynamic optimum of each goal set
  (``envs/dynamic_optimum.py``, the least time after which a command sequence on the robot's own MuJoCo model
  keeps every end effector within tolerance) as a row: its time to reach is that settle time, its ratio is to
  the velocity bound; every row gets the columns time to settle / optimum; the notes say on how many goal sets
  each row settles before it (an achievable time: a controller that beats it shows where the optimizer is weak).
  Cached as JSON in ``optimum_cache``.

Held success is pooled over the seeds with a 95 % Wilson interval; time to reach
(median), its ratio to the bound of the same goal set and the time to settle's
(from when every end effector stays within tolerance; median and p90) are over
the held goal sets of every seed pooled; dithering is the mean sign changes
per joint in the final second (a mean over the evaluations of the row). The
bound tables are solved once per (robot, distribution, seed, goal sets, solver)
and cached as JSON in ``bound_cache``. Each row is written as soon as it is done;
a row already in ``<out>/results.json`` for the same goal sets, bound solver and
models (their files' SHA-256) is read back, not evaluated again, so a stopped table resumes (delete
results.json to evaluate every row again); a row of an earlier run on the same goal sets that this run does
not ask for is kept, and the table's notes name it.

    python -m mtpolicy_training.ship.reach_table \
        --rows planar8:local:planar8_reach planar8:workspace:planar8_reach_workspace \
               humanoid:local:humanoid_reach humanoid:workspace:humanoid_reach_workspace

A grid's rows (``--grids``): a row per method x robot, over the training seeds
of its finished cells, each cell's last exported policy (``policy.onnx``, not
the best-validated one; a cell on a robot's variants: ``policy_<variant>.onnx``,
a row per variant robot), on the goal distribution it trained on. Held success
is then pooled over training seeds x test seeds x goal sets (the Wilson interval
does not hold the spread between training seeds), and beside it each training
seed's held success (over the test seeds): mean [min, max].

    python -m mtpolicy_training.ship.reach_table --grids benchmarks/results/reach-dagger-vs-digrad \
        --out-dir benchmarks/results/reach-dagger-vs-digrad/test-seeds

Writes ``<out>/table.md`` and ``<out>/results.json``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from mtpolicy.integrity import sha256_file, strict_json
from mtpolicy.planner import PlannerConfig
from mtpolicy.time_optimal_program import SolverConfig
from mtpolicy.policy import OnnxPolicy, resolve_model_path
from mtpolicy_training.algos.dagger import DaggerConfig, Teacher
from mtpolicy_training.core.options import parse_config
from mtpolicy_training.envs.dynamic_optimum import DynamicOptimumConfig, optimum_table
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import (Controller, dls_controller, evaluate_reach, mink_controller,
                                                     onnx_controller)
from mtpolicy_training.envs.seeds import TEST_SEEDS
from mtpolicy_training.envs.time_optimal import TimeOptimalController, bound_solver, bound_table, drawn_goal_sets_sha256
from mtpolicy_training.ship.pooled_figures import (beaten, bound_result, concatenated, optimum_result,
                                                   settle_over_bound, settle_over_optimum, summary)

ANCHORS = ("dls", "mink", "teacher", "time-optimal", "bound", "dynamic-optimum")
"""The anchors a table may hold (module docstring), each its row's name where it is a controller."""
DEFAULT_ANCHORS = ANCHORS[:-1]
"""The anchors of a table that does not name them (the dynamic optimum costs seconds per goal set)."""
GOAL_SET_FIELDS = ("robot", "end_effectors", "control_period", "reach_tolerance", "goal_joint_range",
                   "goal_distribution")
"""The reach settings that make the goal sets and score them: every controller of a (robot, distribution) is
evaluated with the same ones."""


@dataclass
class TableConfig:
    """Which policies to hold against the classical controllers and the time-optimal bound, on which goal sets."""

    rows: tuple[str, ...] = ()
    """robot:distribution:model triples (model: a shipped name or an ONNX path)."""
    grids: tuple[Path, ...] = ()
    """Harness grid folders (<results_root>/<name>): a row per method x robot of their finished cells."""
    anchors: tuple[str, ...] = DEFAULT_ANCHORS
    """Classical controllers and references on the same goal sets (of ``ANCHORS``; ``--anchors`` alone: none)."""
    episodes: int = 500
    """Goal sets per seed (an episode each)."""
    seed: tuple[int, ...] = TEST_SEEDS
    """Seeds of the goal sets (the test seeds: report only)."""
    out_dir: Path = Path("benchmarks/results/reach-table")
    """Folder of table.md and results.json."""
    bound_cache: Path = Path("benchmarks/results/time-optimal")
    """Folder of the cached bound tables (read if their key matches, else solved and written)."""
    solver: SolverConfig = SolverConfig()
    """Solver of the bound (the time-optimal controller solves as its DAgger teacher does)."""
    optimum_cache: Path = Path("benchmarks/results/dynamic-optimum")
    """Folder of the cached dynamic-optimum tables (read if their key matches, else solved and written)."""
    optimum: DynamicOptimumConfig = DynamicOptimumConfig()
    """How the dynamic optimum is searched (its velocity bound with ``solver``)."""


@dataclass(frozen=True)
class Row:
    """A row of the table: one exported policy, or a grid method's policies of its training seeds."""

    robot: str
    distribution: str
    name: str
    models: tuple[str, ...]
    """Shipped names or ONNX paths."""
    training_seeds: tuple[int, ...] = ()
    """The grid cells' seeds, in the order of ``models`` (empty for a row of ``--rows``)."""


def parse_row(row: str) -> Row:
    """A ``robot:distribution:model`` row (SystemExit with a one-line error if it is not one)."""
    parts = row.split(":")
    if len(parts) != 3 or not all(parts):
        raise SystemExit(f"error: --rows {row!r} is not robot:distribution:model")
    return Row(parts[0], parts[1], parts[2], (parts[2],))


def cell_policies(cell: Path) -> list[Path]:
    """A finished grid cell's last exported policies: its ``policy.onnx``, else every ``policy_<variant>.onnx`` in
    it or in a run's subfolder (a robot's variants: ppo, a2c; a2c-scratch: a run per variant); SystemExit if
    a later final evaluation was set aside (``*.rejected.onnx``: the file there is not the run's last policy)."""
    if rejected := sorted(p.name for p in [*cell.glob("*.rejected.onnx"), *cell.glob("*/*.rejected.onnx")]):
        raise SystemExit(f"error: {cell}: {', '.join(rejected)}: a later final evaluation was set aside, so the "
                         "exported policy is not the run's last")
    if (cell / "policy.onnx").is_file():
        return [cell / "policy.onnx"]
    return sorted([*cell.glob("policy_*.onnx"), *cell.glob("*/policy_*.onnx")])


def grid_rows(grid: Path) -> list[Row]:
    """A row per (method, task set, robot) of a harness grid's finished cells (``cell.json``), with each cell's
    last exported policy of that robot (``cell_policies``; a cell on a robot's variants has one per variant, each
    of its own variant robot, as its contract says); cells that export none (the DLS baseline) are left out,
    saying so."""
    cells: dict[tuple[str, str, str], list[tuple[int, Path]]] = {}
    for done in sorted((grid / "runs").glob("*/*/*/cell.json")):
        cell = done.parent
        method, task_set, seed = cell.parents[1].name, cell.parent.name, int(cell.name)
        if not (policies := cell_policies(cell)):
            print(f"{grid.name}: {method} {task_set} seed {seed} exported no policy: left out", flush=True)
        for path in policies:
            cells.setdefault((method, task_set, path.name), []).append((seed, path))
    if not cells:
        raise SystemExit(f"error: {grid}: no finished cell with a policy.onnx or policy_<variant>.onnx "
                         "(runs/<method>/<task set>/<seed>/)")
    rows = []
    for (method, _, _), runs in cells.items():
        runs.sort()
        env = onnx_controller(runs[0][1])[1]
        rows.append(Row(env.robot, env.goal_distribution, method, tuple(str(p) for _, p in runs),
                        tuple(s for s, _ in runs)))
    return rows


def goal_set_config(env: ReachConfig) -> dict:
    """What of ``env`` makes and scores the goal sets (``GOAL_SET_FIELDS``)."""
    return {k: getattr(env, k) for k in GOAL_SET_FIELDS}


def row_controllers(row: Row) -> list[tuple[Controller, ReachConfig]]:
    """Each model of the row as a controller, with its task on the row's goal distribution."""
    controllers = []
    for model in row.models:
        policy, env = onnx_controller(resolve_model_path(model))
        if env.robot != row.robot:
            raise SystemExit(f"error: model {model} is for robot {env.robot!r}, not {row.robot!r}")
        controllers.append((policy, replace(env, goal_distribution=row.distribution)))
    return controllers


def teacher_controller(row: Row, env: ReachConfig) -> tuple[str, Controller, ReachConfig] | None:
    """The classical teacher the row's (first) DAgger policy learned from, labelled, on ``env`` (the row's goal
    sets): its training config's teacher settings (``DaggerConfig.from_record``) on the observations of its contract
    (planned by the contract's planner if it has one); None for a policy of another family."""
    contract = OnnxPolicy(resolve_model_path(row.models[0])).contract
    algo = contract.training_config.get("algo") or {}
    if "teacher" not in algo:
        return None
    config = DaggerConfig.from_record(algo)
    planner = contract.planner
    env = replace(env, planned=bool(planner), planner=PlannerConfig(**planner) if planner else env.planner)
    planned = "time-optimal target re-solved" if config.servo_target == "time_optimal" else \
        {"ik": "planner", "time_optimal": "time-optimal planner"}[planner.get("algorithm", "ik")] if planner else \
        "local IK"
    law = {"dls": f"DLS k {config.teacher_gain:g}/s", "mink": "mink",
           "time_optimal": "time-optimal" + (", free lines" if config.free_line_starts else ""),
           "servo": f"{planned} + servo k {config.teacher_gain:g}/s"
                    + (", synchronised" if config.servo_profile == "synchronised" else "")}[config.teacher]
    label = f"{law}, {config.saturation} (teacher of {row.name})"
    return label, Teacher(config, ReachVectorEnv(1, env)), env


def model_files_sha256(models: list[str] | tuple[str, ...]) -> list[str]:
    """The SHA-256 of each model's file (shipped names or ONNX paths)."""
    return [sha256_file(resolve_model_path(m)) for m in models]


def model_identity(row: Row) -> dict:
    """What identifies a row's models in a results.json: their names and the SHA-256 of their files (a model
    shipped again under its name is evaluated again)."""
    return {"models": list(row.models), "model_sha256": model_files_sha256(row.models)}


def of_current_models(result: dict) -> bool:
    """Whether a results.json row is of the model files there are now (an anchor's row is of none)."""
    if "models" not in result:
        return True
    try:
        return result.get("model_sha256") == model_files_sha256(result["models"])
    except FileNotFoundError:
        return False


def evaluate_row(name: str, controllers: list[tuple[Controller, ReachConfig]], cfg: TableConfig,
                 bounds: dict[int, np.ndarray | None], training_seeds: tuple[int, ...] = ()) -> dict:
    """A row's results: its summary over every (controller, test seed) evaluation (``bounds``: the bound of each
    seed's goal sets, s, or None), their goal sets' held flags and times to reach in the order controllers x seeds, and,
    for several controllers (the training seeds of a grid method), each one's summary and their held success's
    mean, min and max."""
    start = time.perf_counter()
    runs = [[evaluate_reach(controller, env, cfg.episodes, seed, bound=bounds[seed], per_set=True)
             for seed in cfg.seed] for controller, env in controllers]
    evaluations = [r for per_seed in runs for r in per_seed]
    per_set = concatenated([r["per_set"] for r in evaluations])
    out = {"controller": name, "seeds": list(cfg.seed), "goal_sets_per_seed": cfg.episodes,
           "summary": summary(evaluations, cfg.episodes),
           "per_seed": [{k: v for k, v in r.items() if k != "per_set"} for r in evaluations],
           "per_set": {"held": per_set["held"].tolist(),
                       "time_to_reach": np.round(per_set["time_to_reach"], 6).tolist(),
                       "time_to_settle": np.round(per_set["time_to_settle"], 6).tolist()}}
    if training_seeds:
        out["training_seeds"] = list(training_seeds)
    if len(runs) > 1:
        per_model = [summary(per_seed, cfg.episodes) for per_seed in runs]
        held = [s["success_rate"] for s in per_model]
        out |= {"per_training_seed": per_model,
                "held_per_training_seed": {"mean": float(np.mean(held)), "min": min(held), "max": max(held)}}
    return out | {"seconds": time.perf_counter() - start}


def table_line(result: dict, spread_column: bool, optimum_columns: bool) -> str:
    """The markdown line of a row's results (n/a where the row has no such figure, as the bound's held success;
    - where it has none to show, as the time to reach of a row that held no goal set)."""
    s, spread = result["summary"], result.get("held_per_training_seed")
    seeds = result.get("training_seeds")
    name = f"{result['controller']} (seeds {', '.join(map(str, seeds))})" if seeds else result["controller"]

    def cell(key: str, digits: int) -> str:  # a NaN reads back from results.json as None
        if key not in s:
            return "n/a"
        return "-" if s[key] is None or math.isnan(s[key]) else f"{s[key]:.{digits}f}"

    held = (f"{s['success_rate']:.3f} [{s['success_low']:.3f}, {s['success_high']:.3f}]" if "success_rate" in s
            else "n/a")
    cells = [result["robot"], result["goal_distribution"], name, held]
    if spread_column:
        cells.append(f"{spread['mean']:.3f} [{spread['min']:.3f}, {spread['max']:.3f}]" if spread else "-")
    ratios = ("time_ratio", "settle_ratio") + (("settle_optimum",) if optimum_columns else ())
    cells += [cell("reached_rate", 3), cell("time_to_reach_median", 2),
              *(cell(f"{name}_{at}", 2) for name in ratios for at in ("median", "p90")),
              cell("dither_sign_changes", 3)]
    return "| " + " | ".join(cells) + " |"


def agreement(policy: dict, teacher: dict) -> str:
    """How a policy's goal sets compare with its teacher's (same goal sets, same order): held by both, by one
    only, and of those both held, how many at the same time to reach."""
    p, t = (np.array(r["per_set"]["held"]) for r in (policy, teacher))
    tp, tt = (np.array(r["per_set"]["time_to_reach"], dtype=float) for r in (policy, teacher))
    both = p & t
    same = int(np.sum(np.isclose(tp[both], tt[both])))
    return (f"{policy['robot']} {policy['goal_distribution']}: {policy['controller']} against its teacher on the "
            f"same {len(p)} goal sets: held by both {both.sum()}, by the policy only {(p & ~t).sum()}, by the "
            f"teacher only {(~p & t).sum()}; of those both held, the same time to reach on {same}, median time "
            f"difference (policy - teacher) {np.median(tp[both] - tt[both]) if both.any() else math.nan:+.2f} s.")


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(TableConfig, argv)
    rows = [parse_row(r) for r in cfg.rows] + [row for grid in cfg.grids for row in grid_rows(grid)]
    if not rows:
        raise SystemExit("error: no rows: give --rows and/or --grids")
    if unknown := sorted(set(cfg.anchors) - set(ANCHORS)):
        raise SystemExit(f"error: --anchors {unknown}: not of {', '.join(ANCHORS)}")
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.robot, row.distribution), []).append(row)
    spread_column = any(len(row.models) > 1 for row in rows)
    optimum_columns = "dynamic-optimum" in cfg.anchors
    header = ["robot", "goals", "controller", "held success [95% CI]",
              *(["held per training seed: mean [min, max]"] if spread_column else []), "reached",
              "time to reach (s)", "enter / bound: median", "p90", "settle / bound: median", "p90",
              *(["settle / optimum: median", "p90"] if optimum_columns else []), "dithering (sign changes/joint/s)"]
    results: list[dict] = []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes = [f"{grid.name}: {json.loads((grid / 'grid.json').read_text())['budget_steps']} env steps per run; "
             "each finished cell's last policy.onnx (policy_<variant>.onnx on a robot's variants)."
             for grid in cfg.grids]
    path = cfg.out_dir / "results.json"
    previous = {(r["robot"], r["goal_distribution"], r["controller"]): r
                for r in (json.loads(path.read_text()) if path.is_file() else [])}

    def write() -> None:
        cfg.out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(strict_json(results, indent=2))
        (cfg.out_dir / "table.md").write_text("\n".join(lines) + "\n" + "".join(f"\n{note}\n" for note in notes))

    def add(result: dict) -> dict:
        """A row's results into the table, written at once (a table stopped midway keeps its finished rows)."""
        results.append(result)
        lines.append(table_line(result, spread_column, optimum_columns))
        print(lines[-1], flush=True)
        write()
        return result

    for (robot, distribution), group in groups.items():
        controllers = {row: row_controllers(row) for row in group}
        anchor_env = replace(controllers[group[0]][0][1], planned=False)
        if apart := [row.name for row, pairs in controllers.items() for _, env in pairs
                     if goal_set_config(env) != goal_set_config(anchor_env)]:
            raise SystemExit(f"error: {robot} {distribution}: {sorted(set(apart))} trained on other goal sets or "
                             f"tolerance than {group[0].name} ({', '.join(GOAL_SET_FIELDS)}): not one table")
        with_bound = "bound" in cfg.anchors  # else no ratios: a bound may cost seconds per goal set (GR1)
        solver_key = bound_solver(cfg.solver) if with_bound else None
        bound_tables = {seed: bound_table(anchor_env, cfg.episodes, seed, solver=cfg.solver,
                                          cache_dir=cfg.bound_cache) for seed in cfg.seed} if with_bound else {}
        bound_seconds = {seed: table.bound_seconds for seed, table in bound_tables.items()}
        drawn = [bound_tables[s].key["goal_sets_sha256"] if with_bound  # a bound table's key holds them
                 else drawn_goal_sets_sha256(anchor_env, cfg.episodes, s) for s in cfg.seed]
        same_goal_sets = {"seeds": list(cfg.seed), "goal_sets_per_seed": cfg.episodes, "bound_solver": solver_key,
                          "goal_sets_sha256": drawn}
        bounds = {seed: bound_seconds.get(seed) for seed in cfg.seed}
        # (name, controllers, training seeds, what besides the goal sets and the bound must match for a row of a
        # previous results.json in ``out`` to be read back instead of evaluated again)
        evaluated = [(row.name, pairs, row.training_seeds, model_identity(row)) for row, pairs in controllers.items()]
        taught = {}  # a teacher row's label -> the name of the row it taught
        for anchor in cfg.anchors:
            if anchor == "teacher":
                for row, pairs in controllers.items():
                    if (found := teacher_controller(row, pairs[0][1])) is None:
                        print(f"{robot} {distribution}: {row.name} is not a DAgger policy: no teacher row", flush=True)
                        continue
                    label, teacher, env = found
                    evaluated.append((label, [(teacher, env)], (), model_identity(row)))
                    taught[label] = row.name
            elif anchor == "time-optimal":
                hold_gain = DaggerConfig().teacher_gain  # the DAgger teacher ``time_optimal`` at its defaults
                closed_loop = TimeOptimalController(ReachVectorEnv(1, anchor_env), hold_gain)
                evaluated.append(("time-optimal controller (closed loop)", [(closed_loop, anchor_env)], (),
                                  {"solver": asdict(closed_loop.reference.config), "hold_gain": hold_gain}))
            elif anchor in ("dls", "mink"):
                controller = {"dls": dls_controller, "mink": mink_controller}[anchor](anchor_env)
                evaluated.append((anchor, [(controller, anchor_env)], (), {}))
        if with_bound:
            add({"robot": robot, "goal_distribution": distribution, **bound_result(bound_seconds, cfg.episodes),
                 "solver": solver_key})
        optima = {}
        if "dynamic-optimum" in cfg.anchors:
            search = replace(cfg.optimum, solver=cfg.solver)
            optima = {seed: optimum_table(anchor_env, cfg.episodes, seed, config=search,
                                          cache_dir=cfg.optimum_cache) for seed in cfg.seed}
            add({"robot": robot, "goal_distribution": distribution, **optimum_result(optima, cfg.episodes),
                 "optimum": asdict(search)})
        group_results = {}
        for name, pairs, training_seeds, identity in evaluated:
            identity |= same_goal_sets
            done = previous.get((robot, distribution, name), {})
            if {k: done.get(k) for k in identity} == identity:
                print(f"{robot} {distribution} {name}: read back from {path}", flush=True)
                if with_bound:  # pooled as a fresh row's (a row written before this column held per-seed means)
                    done["summary"] |= settle_over_bound(done, bound_seconds)
            else:
                done = {"robot": robot, "goal_distribution": distribution,
                        **evaluate_row(name, pairs, cfg, bounds, training_seeds), **identity}
            if optima:
                done["summary"] |= settle_over_optimum(done, optima)
            group_results[name] = add(done)
        kept = [r for (r_robot, r_distribution, name), r in previous.items()
                if (r_robot, r_distribution) == (robot, distribution) and name not in group_results
                and all(r.get(k) == v for k, v in same_goal_sets.items()) and of_current_models(r)]
        for row in kept:  # rows of an earlier run on the same goal sets (the bound's row records none), not asked for
            add(row)
        if kept:
            notes.append(f"{robot} {distribution}: kept from an earlier run of this table on the same goal sets, not "
                         f"evaluated again: {', '.join(r['controller'] for r in kept)}.")
        if with_bound:
            solved = np.concatenate(list(bounds.values())) >= 0
            notes.append(f"{robot} {distribution}: the bound of {solved.sum()}/{len(solved)} goal sets found (the "
                         f"others have no ratio), solver {solver_key}, tables in {cfg.bound_cache}.")
        else:
            notes.append(f"{robot} {distribution}: no bound (the anchor `bound` not asked for), so no time ratios.")
        if optima:
            beats = {name: b for name, r in group_results.items() if (b := beaten(r, optima)) is not None}
            sets = len(cfg.seed) * cfg.episodes
            by_any = np.any([b for b in beats.values() if len(b) == sets], axis=0)  # one controller per row
            notes.append(f"{robot} {distribution}: the dynamic optimum (tables in {cfg.optimum_cache}) is beaten (a "
                         "controller settles sooner) on " + "; ".join(f"{b.sum()}/{len(b)} goal sets by {name}"
                                                                      for name, b in beats.items())
                         + f"; by some single-controller row on {np.sum(by_any)}/{sets}.")
        notes += [agreement(group_results[name], group_results[label]) for label, name in taught.items()
                  if len(group_results[name]["per_seed"]) == len(cfg.seed)]
    if spread_column:
        notes.append(f"Held success: pooled over training seeds x {len(cfg.seed)} test seeds x {cfg.episodes} goal "
                     "sets, 95% Wilson interval (it does not hold the spread between training seeds); per training "
                     "seed: each seed's held success over the test seeds, mean [min, max]. Reached and dithering: "
                     "means over the row's evaluations; time to reach and its ratio to the bound: over the held sets "
                     "of all its evaluations.")
    write()


if __name__ == "__main__":
    main()
