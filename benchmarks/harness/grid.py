"""What a grid is: methods x task sets x seeds at one budget, its cells' folders, and the named grids (presets)."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness.registry import METHODS, TASK_SETS
from mtpolicy_training.train import digrad, ppo


def replace_block(text: str, name: str, block: str) -> str:
    """Replace what stands between ``<!-- harness:NAME -->`` and ``<!-- /harness:NAME -->`` with ``block``."""
    start, end = f"<!-- harness:{name} -->", f"<!-- /harness:{name} -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"readme: no '{start}' ... '{end}' block to replace")
    return pattern.sub(lambda _: f"{start}\n{block.strip()}\n{end}", text, count=1)


@dataclass(frozen=True)
class Cell:
    """One (method, task set, seed) of a grid, trained in its own folder."""

    method: str
    task_set: str
    seed: int

    def dir(self, grid_dir: Path) -> Path:
        return grid_dir / "runs" / self.method / self.task_set / str(self.seed)

    def needs(self) -> list[Cell]:
        """The cells this one reads (its method's ``after``), which must finish first."""
        return [Cell(m, self.task_set, self.seed) for m in METHODS[self.method].after]


def sibling_cell_dir(out_dir: Path, method: str) -> Path:
    """The folder of ``method``'s cell with the same task set and seed as the cell in ``out_dir`` (a ``Cell.dir``)."""
    return Cell(method, out_dir.parent.name, int(out_dir.name)).dir(out_dir.parents[3])


@dataclass
class GridSpec:
    """A benchmark grid: methods x task sets x seeds, each run with the same budget."""

    methods: list[str]
    """Harness methods (declared by the trainer families, ``registry.METHODS``)."""
    task_set: list[str] = field(default_factory=lambda: ["planar8"])
    """Registered task sets every method runs on (one or more, as ``--task-set`` names one of a trainer's)."""
    seed: list[int] = field(default_factory=lambda: [1, 2, 3])
    """Seeds of every (method, task set): one or more."""
    budget_steps: int = 150_000
    """Env steps of every run (equal budget)."""
    overrides: list[str] = field(default_factory=list)
    """Trainer options as key=value, named as on the trainers' command line (e.g. loop.learning-starts=2000
    "algo.hidden=64 64"; _ or - between words), given to every method."""
    name: str = "grid"
    """Grid name: its cells and results go to <results_root>/<name>/."""
    results_root: Path = Path("benchmarks/results")
    """Folder of all grids."""
    workers: int = 2
    """Cells at once in the local process pool (with --ray, Ray schedules threads_per_cell CPUs per cell instead)."""
    threads_per_cell: int = 1
    """torch intra-op threads of each cell (its ``loop.torch_threads``; keep workers x threads <= cores). On 2
    cores, ``--workers 1 --threads-per-cell 2`` runs the cells one at a time, each in about 0.6 of the time."""
    ray: str | None = None
    """Address of an existing Ray cluster (e.g. 127.0.0.1:6379, or auto): each cell becomes a Ray task there."""
    readme: Path | None = None
    """Markdown file whose <!-- harness:NAME --> ... <!-- /harness:NAME --> block gets the table."""
    bootstrap_reps: int = 10_000
    """Bootstrap resamples per confidence interval of the table (curves use a fifth of it)."""
    compare_with: list[str] = field(default_factory=list)
    """Other grids under results_root whose methods join this grid's table and curves: their finished cells of
    the same task sets and seeds are read, never run (the other grid must have run the same budget)."""

    @property
    def grid_dir(self) -> Path:
        return self.results_root / self.name

    @property
    def override_dict(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.overrides)

    def cells(self) -> list[Cell]:
        return [Cell(m, t, s) for s in self.seed for t in self.task_set for m in self.methods]

    def validate(self) -> None:
        """Raise ValueError naming every bad field (before any cell runs)."""
        bad = []
        unknown = [m for m in self.methods if m not in METHODS]
        if not self.methods or unknown:
            bad.append(f"methods: unknown {unknown} (registered: {sorted(METHODS)})" if unknown else "methods: none")
        unknown = [t for t in self.task_set if t not in TASK_SETS]
        if not self.task_set or unknown:
            bad.append(f"task_set: unknown {unknown} (registered: {sorted(TASK_SETS)})" if unknown
                       else "task_set: none")
        bad += [f"task_set: method {m!r} does not run on {t!r}" for m in self.methods if m in METHODS
                for t in self.task_set if t in TASK_SETS and t not in METHODS[m].task_sets]
        bad += [f"methods: {m!r} starts from the runs of {a!r}, which is not in the grid" for m in self.methods
                if m in METHODS for a in METHODS[m].after if a not in self.methods]
        if not self.seed or len(set(self.seed)) < len(self.seed):
            bad.append(f"seed: {self.seed} (need distinct seeds)")
        bad += [f"{k}: {getattr(self, k)} (must be > 0)" for k in ("budget_steps", "workers", "threads_per_cell",
                                                                   "bootstrap_reps") if getattr(self, k) <= 0]
        if any(item.split("=", 1)[0] == "loop.torch_threads" for item in self.overrides):
            bad.append("overrides: loop.torch_threads is set by --threads-per-cell")
        if not re.fullmatch(r"[\w.+-]+", self.name):
            bad.append(f"name: {self.name!r} (letters, digits, . _ + - only)")
        bad += [f"overrides: {item!r} is not key=value" for item in self.overrides if "=" not in item]
        for other in self.compare_with:
            path = self.results_root / other / "grid.json"
            if other == self.name or not path.is_file():
                bad.append(f"compare_with: no other grid {other!r} in {self.results_root}")
            elif (budget := json.loads(path.read_text())["budget_steps"]) != self.budget_steps:
                bad.append(f"compare_with: {other!r} ran {budget} env steps per run, this grid {self.budget_steps}")
        if self.readme is not None:
            try:
                replace_block(self.readme.read_text(), self.name, "")
            except (OSError, ValueError) as e:
                bad.append(f"readme: {e}")
        if bad:
            raise ValueError("invalid grid: " + "; ".join(bad))
        for m in self.methods:
            for t in self.task_set:
                METHODS[m].check(t, self.override_dict, self.budget_steps)

    def describe(self) -> dict:
        """What defines the grid's results (not where or how it runs)."""
        return {"name": self.name, "methods": self.methods, "task_set": self.task_set, "seed": self.seed,
                "budget_steps": self.budget_steps, "overrides": self.overrides, "compare_with": self.compare_with}

    def whole(self) -> GridSpec:
        """This grid widened to every method and seed with a finished cell in its folder (on its task sets) and,
        in a preset's folder, to the preset's: a run of some of its cells (``--methods``, ``--seed``) reports on
        all of them."""
        preset = PRESETS[self.name][1] if self.name in PRESETS else None
        if preset is None or not set(self.task_set) <= set(preset.task_set):
            preset = None  # not of a preset: its methods and seeds only
        done = [(p.parents[2].name, int(p.parent.name)) for t in self.task_set
                for p in (self.grid_dir / "runs").glob(f"*/{t}/*/cell.json") if p.parents[2].name in METHODS]
        methods = [*(preset.methods if preset else []), *self.methods, *sorted(m for m, _ in done)]
        seeds = {*(preset.seed if preset else []), *self.seed, *(s for _, s in done)}
        return dataclasses.replace(self, methods=list(dict.fromkeys(methods)), seed=sorted(seeds))

    def command(self) -> str:
        """A command that reproduces this grid's results from scratch: every field given, on the grid's own preset
        or the first one that holds its methods."""
        holding = [name for name, (_, spec) in PRESETS.items() if set(self.methods) <= set(spec.methods)]
        preset = self.name if self.name in PRESETS else (holding or list(PRESETS))[0]
        args = [preset, "--name", self.name, "--methods", *self.methods, "--task-set", *self.task_set,
                "--seed", *map(str, self.seed), "--budget-steps", str(self.budget_steps),
                "--overrides", *self.overrides, *(["--compare-with", *self.compare_with] if self.compare_with else [])]
        return "python -m benchmarks.harness " + shlex.join(args)


SMOKE_OVERRIDES = ["loop.learning_starts=320", "loop.eval_every=240", "loop.checkpoint_every=240",
                   "periodic_eval_episodes=4", "final_eval_episodes=8", "loop.batch_size=32"]
"""The smoke grid's cells: a few updates and evaluations on a handful of goal sets."""

PICOR_TABLES_METHODS = ["picor", "picor-no-ada", "picor-no-cor", "mtsac", "mh-sac", "dgrad-o"]
"""PiCor's Tables 1-2 with the baselines the project has (dgrad-o: gradient projection, for G-Surgery);
picor-no-ada-no-cor is left out: it is the same algorithm as picor-no-cor (docs/picor.md)."""

PICOR_MT10_OVERRIDES = ["algo.paper-hidden=False", "algo.sac.hidden=160 160 160 160 160 160"]
"""PiCor on MT10 with the networks of dgrad-mt10's MTSAC, MH-SAC and D-Grad(O) (6 x 160; the paper: 2 x 512 for
every method), so those cells, run at the same budget and seeds, are its baselines without running again."""

PICOR_HALFCHEETAH8_OVERRIDES = ["algo.paper-hidden=False", "algo.sac.hidden=256 256"]
"""Every method on halfcheetah8 with SAC's standard 2 x 256 networks (the paper: 2 x 512, four times the matrix
products per update)."""

PICOR_HALFCHEETAH8_ENV_STEP_OVERRIDES = [*PICOR_HALFCHEETAH8_OVERRIDES, "loop.updates-per-round=8", "batch-per-task=16"]
"""Algorithm 1's gradient step per env step on halfcheetah8's 8 tasks (the authors' code steps so too): eight steps
per vector step, each on 128 rows (PiCor: the drawn task's; the baselines: 16 of each task), for every method."""

PICOR_MT10_ENV_STEP_OVERRIDES = [*PICOR_MT10_OVERRIDES, "loop.updates-per-round=10", "batch-per-task=13",
                                 "loop.eval_every=50000"]
"""Algorithm 1's gradient step per env step on MT10's 10 tasks: ten steps per vector step, each on 130 rows (PiCor:
the drawn task's; MTSAC: 13 of each task), with picor-mt10's 6 x 160 networks; a curve point every 50k env steps."""

A2C_TABLES_OVERRIDES = ["loop.eval_every=100000", "periodic_eval_episodes=2"]
"""Curves of the A2C tables: an evaluation of 2 episodes per task every 100k steps of a run (the final one keeps
the paper's 20), so evaluating costs about a tenth of a multi-task run's steps."""

RETEST_EVAL_OVERRIDES = ["loop.eval-every=10000", "periodic-eval-episodes=20", "final-eval-episodes=50"]
"""The reach re-tests' curves and final evaluations: 20 validation goal sets every 10k env steps, 50 held-out ones
at the end (the test-seed figures come from ship/reach_table --grids)."""

HOLDING_DIGRAD_OVERRIDES = ["algo.actor=dls-gain", "algo.gain-init=8", "env.reward=hold", "algo.actor-lr=3e-6",
                            "algo.twin-critics=True", "algo.policy-delay=2", "algo.critic-warmup=10000",
                            "loop.learning-starts=1000", "loop.noise-start=0.05", "loop.noise-end=0.02",
                            *RETEST_EVAL_OVERRIDES]
"""The shipped planar8_digrad recipe (the holding actor, hold reward, small actor steps after a critic warm-up) for
DiGrad and DDPG alike, its warm-up cut from 20,000 to 10,000 critic updates for a 30k budget (8 updates per 16 env
steps: the actor steps from about 21k env steps on)."""

HOLDING_SAC_OVERRIDES = ["algo.paper-hidden=False", "algo.sac.hidden=128 128", "algo.actor=dls-gain",
                         "algo.gain-init=8", "reward=hold", "algo.sac.log-std-init=-2.5", "algo.sac.critic-warmup=5000",
                         "algo.sac.actor-lr=3e-6", "loop.updates-per-round=4", "loop.learning-starts=1000",
                         *RETEST_EVAL_OVERRIDES]
"""The shipped planar8_dgrad / planar8_picor recipe for every SAC-family method and PiCor ablation alike (4 updates
per 16 env steps: the actor steps after 5,000 critic updates, from about 21k env steps on)."""

HOLDING_PPO_OVERRIDES = ["algo.actor=dls-gain", "algo.gain-init=8", "reward=paper", *RETEST_EVAL_OVERRIDES]
"""The shipped planar8_long_ppo recipe (the holding actor on the paper's reward) for every PPO setting alike."""

HOLDING_A2C_OVERRIDES = ["reward=hold", "algo.actor=dls-gain", "algo.gain-init=8", "algo.lr=7e-5",
                         *RETEST_EVAL_OVERRIDES]
"""The shipped planar8_short_a2c recipe (the holding actor and reward, a tenth of the paper's step size) for every
A2C setting alike."""

PRESETS: dict[str, tuple[str, GridSpec]] = {
    "planar8-fig4a": ("DiGrad's Fig. 4A on planar8: the five DiGrad/DDPG settings and the DLS baseline x 3 seeds",
                      GridSpec(methods=[*digrad.SETTINGS, "dls"], name="planar8-fig4a")),
    "planar8-smoke": ("A 2 x 2 grid (DDPG, DiGrad single+heuristic x 2 seeds) at 480 steps: the tests' check",
                      GridSpec(methods=["ddpg", "digrad-single-heur"], seed=[1, 2], budget_steps=480,
                               overrides=SMOKE_OVERRIDES, name="planar8-smoke")),
    "reach-dagger-vs-digrad": ("DAgger from DLS (dagger: the shipped local recipe) against the DiGrad paper's best "
                               "setting, single critic with the heuristic (its Sec. 5: on the 8-link arm the single "
                               "critic beats the multi-critic settings and the heuristic steadies the task scores; on "
                               "the humanoid 'the best setting is again the single critic with heuristic'), at the "
                               "trainer's defaults, local goals, planar8 and humanoid x 3 seeds at 51,200 env steps "
                               "(5 DAgger iterations); test-seed figures: ship/reach_table --grids (docs/reach.md)",
                               GridSpec(methods=["dagger", "digrad-single-heur"], task_set=["planar8", "humanoid"],
                                        budget_steps=51_200, name="reach-dagger-vs-digrad")),
    "ppo-spec-table1": ("Table I of the PPO joint-training paper: its 13 settings on hoppers3 and walker-fwd-bwd x 3 "
                        "seeds at 1.6M env steps (jt up to 800k)",
                        GridSpec(methods=list(ppo.SETTINGS), task_set=["hoppers3", "walker-fwd-bwd"],
                                 budget_steps=1_600_000, name="ppo-spec-table1")),
    "ppo-spec-fig6": ("Fig. 6 of the PPO joint-training paper: joint only, separate, jt=400k sp=25% on the torso-mass "
                      "hopper pairs x 3 seeds at 1.6M env steps",
                      GridSpec(methods=["ppo-sp0", "ppo-jt0-sp100", "ppo-jt400k-sp25"],
                               task_set=["hopper-mass-3", "hopper-mass-8", "hopper-mass-14"],
                               budget_steps=1_600_000, name="ppo-spec-fig6")),
    "dgrad-mt10": ("Fig. 4 (left) of the D-Grad paper: MTSAC, multi-head SAC, D-Grad(A) and D-Grad(O) on MT10 x 3 "
                   "seeds at 1M env steps (the paper: 3M and more), success by metaworld's evaluator",
                   GridSpec(methods=["mtsac", "mh-sac", "dgrad-a", "dgrad-o"], task_set=["mt10"],
                            budget_steps=1_000_000, name="dgrad-mt10")),
    "picor-mt10": ("PiCor's Tables 1-2 on mt10: PiCor and its Ada/Cor ablations x 3 seeds at 1M env steps with "
                   "dgrad-mt10's 6 x 160 networks, whose MTSAC, MH-SAC and D-Grad cells join the table (the paper: "
                   "5M env steps)",
                   GridSpec(methods=PICOR_TABLES_METHODS[:3], task_set=["mt10"], budget_steps=1_000_000,
                            overrides=PICOR_MT10_OVERRIDES, compare_with=["dgrad-mt10"], name="picor-mt10")),
    "picor-mt10-env-step": ("PiCor's Tables 1-2 on mt10 with Algorithm 1's gradient step per env step (10 per "
                            "vector step) for PiCor, its Ada/Cor ablations and MTSAC, 6 x 160 networks x 3 seeds at "
                            "200k env steps (1/25 of the paper's 5M)",
                            GridSpec(methods=PICOR_TABLES_METHODS[:4], task_set=["mt10"], budget_steps=200_000,
                                     overrides=PICOR_MT10_ENV_STEP_OVERRIDES, name="picor-mt10-env-step")),
    "picor-halfcheetah8": ("PiCor's Tables 1-2 on halfcheetah8: PiCor, its Ada/Cor ablations, MTSAC, MH-SAC and "
                           "D-Grad(O) with 2 x 256 networks x 3 seeds at 1/10 of the paper's 2.4M env steps",
                           GridSpec(methods=PICOR_TABLES_METHODS, task_set=["halfcheetah8"], budget_steps=240_000,
                                    overrides=PICOR_HALFCHEETAH8_OVERRIDES, name="picor-halfcheetah8")),
    "picor-halfcheetah8-env-step": ("PiCor's Tables 1-2 on halfcheetah8 with Algorithm 1's gradient step per env "
                                    "step (8 per vector step) for every method, 2 x 256 networks x 3 seeds at 240k "
                                    "env steps",
                                    GridSpec(methods=PICOR_TABLES_METHODS, task_set=["halfcheetah8"],
                                             budget_steps=240_000, overrides=PICOR_HALFCHEETAH8_ENV_STEP_OVERRIDES,
                                             name="picor-halfcheetah8-env-step")),
    "bf16-halfcheetah8": ("MTSAC with bfloat16 matrix products (--loop.matmul-precision) against the float32 MTSAC "
                          "and the other methods of picor-halfcheetah8, same networks, 3 seeds at 240k env steps",
                          GridSpec(methods=["mtsac-bf16"], task_set=["halfcheetah8"], budget_steps=240_000,
                                   overrides=PICOR_HALFCHEETAH8_OVERRIDES, compare_with=["picor-halfcheetah8"],
                                   name="bf16-halfcheetah8")),
    "a2c-table2": ("Table 2 of the A2C multi-task paper: single-task from scratch, distillation (teachers: the "
                   "scratch runs) and vanilla multi-task (1 or 6 envs per task) on halfcheetah6 x 3 seeds at 200k "
                   "env steps per task (the paper: 1M per head, teachers 3M)",
                   GridSpec(methods=["a2c-scratch", "a2c-distill", "a2c-multitask", "a2c-multitask-envs-per-task"],
                            task_set=["halfcheetah6"],
                            budget_steps=1_200_000, overrides=A2C_TABLES_OVERRIDES, name="a2c-table2")),
    "a2c-table1": ("Table 1 of the A2C multi-task paper: E1 = SmallFoot and E2 = SmallLeg from scratch, then each "
                   "fine-tuned on the other x 3 seeds at 200k env steps per task and per fine-tuning (the paper: 5M)",
                   GridSpec(methods=["a2c-scratch", "a2c-finetune-e1e2", "a2c-finetune-e2e1"],
                            task_set=["halfcheetah-e1e2"], budget_steps=400_000, overrides=A2C_TABLES_OVERRIDES,
                            name="a2c-table1")),
    "reach-retest-digrad": ("DiGrad's claims on the deployment task: single / multi critic, heuristic on / off and "
                            "DDPG, every one on the holding actor and reward of the shipped planar8_digrad (a method "
                            "and its baselines on one structure), planar8 local goals x 3 seeds at 30k env steps; "
                            "test-seed figures: ship/reach_table --grids",
                            GridSpec(methods=["digrad-single-heur", "digrad-single", "digrad-multi-heur", "ddpg"],
                                     budget_steps=30_000, overrides=HOLDING_DIGRAD_OVERRIDES,
                                     name="reach-retest-digrad")),
    "reach-retest-sac": ("D-Grad's and PiCor's claims on the deployment task: MTSAC, multi-head SAC, D-Grad(A), "
                         "D-Grad(O), PiCor and its Ada / Cor ablations, every one on the holding actor and reward of "
                         "the shipped planar8_dgrad and planar8_picor, planar8 local goals x 3 seeds at 40k env steps; "
                         "test-seed figures: ship/reach_table --grids",
                         GridSpec(methods=["mtsac", "mh-sac", "dgrad-a", "dgrad-o", *PICOR_TABLES_METHODS[:3]],
                                  budget_steps=40_000, overrides=HOLDING_SAC_OVERRIDES, name="reach-retest-sac")),
    "reach-retest-ppo": ("The PPO joint-training paper's claims on the deployment task: specialization after joint "
                         "training over half the budget (sp 25 %) against joint training only, separate policies and "
                         "a random split, every one on the holding actor of the shipped planar8_long_ppo, planar8's "
                         "three variants, local goals x 3 seeds at 60k env steps; test-seed figures per variant: "
                         "ship/reach_table --grids",
                         GridSpec(methods=["ppo-jthalf-sp25", "ppo-sp0", "ppo-jt0-sp100", "ppo-random-jthalf-sp25"],
                                  task_set=["planar8-variants"], budget_steps=60_000, overrides=HOLDING_PPO_OVERRIDES,
                                  name="reach-retest-ppo")),
    "reach-retest-a2c": ("The A2C multi-task paper's claims on the deployment task: single-variant runs from scratch "
                         "(20k env steps each), distillation from them, vanilla multi-task, and fine-tuning from "
                         "planar8_long to planar8_short and back, every one on the holding actor and reward of the "
                         "shipped planar8_short_a2c, planar8's three variants, local goals x 3 seeds at 60k env "
                         "steps; test-seed figures per variant: ship/reach_table --grids",
                         GridSpec(methods=["a2c-scratch", "a2c-distill", "a2c-multitask", "a2c-finetune-e1e2",
                                           "a2c-finetune-e2e1"],
                                  task_set=["planar8-variants"], budget_steps=60_000, overrides=HOLDING_A2C_OVERRIDES,
                                  name="reach-retest-a2c")),
}
