"""Train a reach policy by DAgger from a classical teacher, evaluate it, export it to ONNX.

    python -m mtpolicy_training.train dagger --robot planar8 --goal-distribution local \
        --seed 1 --out-dir runs/planar8/dagger-local

Each iteration rolls out ``num_envs`` episodes of ``episode_seconds``, labels
them with the teacher, aggregates and refits (``algos/dagger.py``), then
evaluates the student on validation goal sets and exports it to
``best_policy.onnx`` when it is the best so far. A checkpoint after every
iteration (dataset, student, optimizer, RNG states) lets a killed run resume;
before the first, the time-optimal teacher's line demonstrations are saved in
chunks as they complete (``LineChunks``).
At the end: ``eval.json`` (``final_eval_episodes`` validation goal sets of
the final-evaluation seed), ``policy.onnx`` (last) and ``best_eval.json``;
a final result that is worse than the one already there is kept aside
(``publish_final``).

The budget is whole iterations of ``num_envs`` x ``episode_seconds`` env steps
(10,240 by default): ``--budget-steps`` (the other trainers' word, what a harness
cell gives) sets it, rounded down to whole iterations, or ``--iterations``
(12 when neither is given); a budget below one iteration is refused.

For the harness: ``dagger``, the shipped ``local`` recipe (DLS teacher, local
goals, no planner), on the shipped robots.
"""

from __future__ import annotations

import functools
import io
import json
import math
import multiprocessing as mp
import shutil
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from mtpolicy_training.algos.dagger import DaggerConfig, Student, Teacher
from mtpolicy_training.core.row_workers import RowWorkers, process_pool
from mtpolicy_training.core.files import write_atomically
from mtpolicy_training.core.run_record import RunConfig, RunRecorder, config_dict
from mtpolicy_training.core.trainer import BestRun, Trainer, run_trainer
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import Protocol, evaluate_reach, onnx_controller
from mtpolicy_training.envs.seeds import HELD_OUT_SEED, VALIDATION_SEED
from mtpolicy_training.envs.time_optimal import TimeOptimalController, bound_table, saturate
from mtpolicy_training.ship.export import export_policy
from mtpolicy_training.train.family import REACH_TASK_SETS, Family, ReachOptions, TrainSettings


DEFAULT_ITERATIONS = 12
"""Iterations of a run given neither ``budget_steps`` nor ``iterations``."""


@dataclass
class DaggerLoopConfig:
    """Threads of the run (the other trainers' ``loop`` words; the harness sets ``loop.torch_threads``)."""

    torch_threads: int = 1
    """Threads of torch's CPU kernels (a resumed run may change it)."""
    teacher_workers: int = 1
    """Processes labelling with the teacher, the episodes split between them (a resumed run may change it)."""


@dataclass(kw_only=True)
class DaggerTrainConfig(TrainSettings):
    """DAgger on a reach robot: imitate a classical teacher (DLS, the joint servo to the planner's goal
    configuration, or the time-optimal controller), validated each iteration, evaluated and exported to ONNX at
    the end."""

    budget_steps: int | None = None  # type: ignore[assignment]  # None until __post_init__ resolves RunSettings' int
    """Environment steps of the run, rounded down to whole iterations of ``num_envs`` x the steps of an episode
    (None: ``iterations``); resolved, the record holds the steps the run takes."""
    out_dir: Path = Path("runs/planar8/dagger")
    periodic_eval_episodes: int = 200
    """Validation goal sets of each iteration's evaluation."""
    final_eval_episodes: int = 500
    """Goal sets of the final evaluation (on HELD_OUT_SEED, a validation seed)."""
    algo: DaggerConfig = field(default_factory=DaggerConfig)
    """Teacher, student and regression settings."""
    env: ReachOptions = field(default_factory=ReachOptions)
    """Reach task: robot, goal distribution, planned observations."""
    iterations: int | None = None
    """DAgger iterations (rollouts + refit each), instead of ``budget_steps`` (neither: DEFAULT_ITERATIONS);
    resolved from ``budget_steps`` when that is given."""
    num_envs: int = 128
    """Episodes rolled out per iteration, in lockstep."""
    episode_seconds: float = 4.0
    """Length of a training episode (s); evaluations run the evaluator's 4 s episodes."""
    loop: DaggerLoopConfig = field(default_factory=DaggerLoopConfig)
    """Threads of the run."""

    COMMAND: ClassVar[str] = "train dagger"

    def __post_init__(self):
        bad = self.algo.validate() + [k for k, ok in {
            "num_envs": self.num_envs > 0, "episode_seconds": self.episode_seconds > 0,
            "loop.torch_threads": self.loop.torch_threads > 0,
            "loop.teacher_workers": self.loop.teacher_workers > 0}.items() if not ok]
        if not bad:
            self.iterations, self.budget_steps = self.resolve_budget()
            bad = self.validate_settings()
        if bad:
            raise ValueError("invalid config value(s): " + ", ".join(bad))

    @property
    def episode_steps(self) -> int:
        """Control steps of a training episode."""
        return round(self.episode_seconds / self.env.control_period)

    @property
    def iteration_steps(self) -> int:
        """Environment steps of one iteration."""
        return self.num_envs * self.episode_steps

    def resolve_budget(self) -> tuple[int, int]:
        """(iterations, env steps) of the run from ``budget_steps`` or ``iterations``; ValueError in one line
        for a budget below one iteration or the two given apart."""
        iterations, budget = self.iterations, self.budget_steps
        if budget is None:
            iterations = DEFAULT_ITERATIONS if iterations is None else iterations
            if iterations <= 0:
                raise ValueError(f"invalid config value(s): iterations ({iterations}, must be > 0)")
        elif budget < self.iteration_steps:
            raise ValueError(f"invalid config value(s): budget_steps ({budget} is below one DAgger iteration: "
                             f"num_envs {self.num_envs} x {self.episode_steps} steps = {self.iteration_steps})")
        elif iterations is not None and iterations != budget // self.iteration_steps:
            raise ValueError(f"invalid config value(s): iterations ({iterations}) and budget_steps ({budget}, "
                             f"{budget // self.iteration_steps} iterations of {self.iteration_steps}): give one")
        else:
            iterations = budget // self.iteration_steps
        return iterations, iterations * self.iteration_steps

    def behaviour_before_options(self) -> dict[str, object]:
        """``budget_steps`` is derived: a checkpoint made before it was recorded matches at this run's value."""
        return {"budget_steps": self.budget_steps}


def run(config: DaggerTrainConfig) -> dict[str, float]:
    torch.set_num_threads(config.loop.torch_threads)
    torch.manual_seed(config.seed)
    out = config.out_dir
    steps = config.episode_steps
    env = ReachVectorEnv(config.num_envs, config.env, time_limit=False)
    teacher = RowWorkers(partial(teacher_commands, config.algo, config.env), config.loop.teacher_workers)
    mean, std = env.observation_statistics()
    student = Student(config.algo, env.layout, env.spec.n_joints, mean, std)
    iterations, budget_steps = config.resolve_budget()  # as __post_init__ resolved them
    recorder = RunRecorder(out, RunConfig.of(config), budget_steps, config.progress)
    rng, generator = np.random.default_rng(config.seed), torch.Generator().manual_seed(config.seed)
    data = {"obs": torch.zeros(0, env.layout.size), "target": torch.zeros(0, env.spec.n_joints)}
    best_record = {"success_rate": -1.0}
    iteration = 0
    if recorder.resumed:
        state = recorder.resumed
        student.load_state_dict(state["student"])
        data, best_record, iteration = state["data"], state["best"], state["iteration"]
        rng.bit_generator.state = state["rng"]
        generator.set_state(state["generator"])

    def export(metrics: dict, path: Path) -> None:
        export_policy(student.policy, env.spec, config.env, method=f"dagger-{config.algo.teacher}",
                      training_config=config_dict(config), metrics=metrics, path=path)

    best = BestRun(out, export, key=selection_key, record=best_record)

    bound = None  # with a time-optimal teacher or planner, validation also measures time to reach against the bound
    if config.algo.teacher == "time_optimal" or (config.env.planned and config.env.planner.algorithm == "time_optimal"):
        bound = bound_table(config.env, config.periodic_eval_episodes, VALIDATION_SEED,
                            cache_dir=out / "bound").bound_seconds

    def train() -> float:
        """The line demonstrations (a new run), then the iterations to the budget; the training wall seconds."""
        if config.algo.line_sets and not recorder.resumed:
            train_on_lines()
        while iteration < iterations:
            run_iteration()
        teacher.close()
        train_seconds = recorder.train_seconds
        recorder.close()
        return train_seconds

    def train_on_lines() -> None:
        nonlocal data
        chunks = [len(c) for c in np.array_split(np.arange(config.algo.line_sets), LINE_CHUNKS) if len(c)]
        seeds = [int(s) for s in rng.integers(2 ** 31, size=len(chunks))]
        saved = LineChunks(out / "line_demos", RunConfig.of(config))
        lines = {i: part for i, seed in enumerate(seeds) if (part := saved.load(i, seed)) is not None}
        if lines:
            recorder.continue_from(saved.seconds)
            print(f"{len(lines)} of {len(chunks)} line-demonstration chunks read back from {saved.folder}", flush=True)
        with process_pool(config.loop.teacher_workers, mp_context=mp.get_context("spawn")) as pool:
            running = {pool.submit(line_demonstrations, config.algo, config.env, chunks[i], seeds[i]): i
                       for i in range(len(chunks)) if i not in lines}
            for done in as_completed(running):
                i = running[done]
                lines[i] = done.result()
                saved.save(i, seeds[i], lines[i], recorder.train_seconds)
        ordered = [lines[i] for i in range(len(chunks))]
        data = {"obs": torch.as_tensor(np.concatenate([o for o, _ in ordered]), dtype=torch.float32),
                "target": torch.as_tensor(np.concatenate([t for _, t in ordered]), dtype=torch.float32)}
        loss = student.fit(data["obs"], data["target"], generator)
        print(f"{len(data['obs'])} states on the time-optimal lines of {config.algo.line_sets} goal sets; "
              f"fitted, loss {loss:.4g}", flush=True)

    def run_iteration() -> None:
        nonlocal data, iteration
        beta = config.algo.teacher_mix ** (iteration + (config.algo.line_sets > 0))  # lines: the teacher's turn
        obs, _ = env.reset(seed=int(rng.integers(2 ** 31)))
        driven_by_teacher = rng.random(config.num_envs) < beta
        visited, labels = [], []
        for _ in range(steps):
            command = teacher(obs)
            labelled = np.isfinite(command).all(axis=1)  # a teacher without a solution there (mink) labels nothing
            target = saturate(np.where(labelled[:, None], command, 0.0), config.algo.saturation)
            action = np.where((driven_by_teacher & labelled)[:, None], target, student.act(obs))
            action = action + config.algo.action_noise * rng.standard_normal(action.shape)
            visited.append(obs[labelled])
            labels.append((target if config.algo.loss == "action" else command)[labelled])
            obs, *_ = env.step(np.clip(action, -1.0, 1.0))
            recorder.advance(config.num_envs)
        data = {"obs": torch.cat([data["obs"], torch.as_tensor(np.concatenate(visited))]),
                "target": torch.cat([data["target"], torch.as_tensor(np.concatenate(labels), dtype=torch.float32)])}
        loss = student.fit(data["obs"], data["target"], generator)
        iteration += 1
        metrics = evaluate_reach(student.act, config.env, config.periodic_eval_episodes, VALIDATION_SEED,
                                 Protocol(), bound)
        best.offer(metrics, recorder.step, recorder.train_seconds, iteration=iteration)
        recorder.log(metrics, {"train/loss": loss, "train/dataset_size": len(data["obs"]), "train/beta": beta,
                               "train/iteration": iteration})
        recorder.save(student=student.state_dict(), data=data, best=best.record, iteration=iteration,
                      rng=rng.bit_generator.state, generator=generator.get_state())
        shutil.rmtree(out / "line_demos", ignore_errors=True)  # the checkpoint holds them now

    protocol = Protocol()  # the evaluator's episodes, whatever the length of the training episodes

    @functools.cache
    def final_bound() -> np.ndarray | None:
        """The bound on the held-out goal sets (computed once training is over)."""
        return None if bound is None else bound_table(config.env, config.final_eval_episodes, HELD_OUT_SEED,
                                                      cache_dir=out / "bound").bound_seconds

    def final_evaluation() -> dict:
        final_bound()
        print(f"final evaluation: {config.final_eval_episodes} goal sets of seed {HELD_OUT_SEED}, last and best "
              "policy...", flush=True)
        return evaluate_reach(student.act, config.env, config.final_eval_episodes, HELD_OUT_SEED, protocol,
                              final_bound())

    final = run_trainer(Trainer(out, train, final_evaluation, export, best, evaluate_best=lambda path: evaluate_reach(
        onnx_controller(path)[0], config.env, config.final_eval_episodes, HELD_OUT_SEED, protocol, final_bound())))
    print(f"policies: {out / 'policy.onnx'} (last), {out / 'best_policy.onnx'} (best on validation, "
          f"iteration {best.record['iteration']}); total training {final['train_wall_seconds_this_session'] / 60:.1f} "
          "min", flush=True)
    return {k: v for k, v in final.items() if not (isinstance(v, float) and math.isnan(v))}


def line_demonstrations(algo: DaggerConfig, env_config: ReachConfig, sets: int, seed: int) -> tuple[np.ndarray,
                                                                                                      np.ndarray]:
    """``TimeOptimalController.line_demonstrations`` on ``sets`` starts and goal sets of the training distribution
    drawn from ``seed`` (``LINE_BATCH`` worlds at a time): (observations, unsaturated commands)."""
    env = ReachVectorEnv(min(sets, LINE_BATCH), env_config, time_limit=False)
    teacher = TimeOptimalController(ReachVectorEnv(1, env_config), algo.teacher_gain, algo.solver,
                                    algo.free_line_starts)
    rng = np.random.default_rng(seed)
    parts = []
    for first in range(0, sets, LINE_BATCH):
        env.reset(seed=int(rng.integers(2 ** 31)))
        n = min(LINE_BATCH, sets - first)
        parts.append(teacher.line_demonstrations(env.joint_positions()[:n], env.goals[:n], algo.line_samples, rng,
                                                 algo.free_line_samples))
    return np.concatenate([o for o, _ in parts]), np.concatenate([t for _, t in parts])


LINE_BATCH = 256
"""Worlds of the env that draws line demonstrations' starts and goal sets (each MuJoCo world costs memory)."""
LINE_CHUNKS = 32
"""Parts of the line demonstrations, each saved as it completes (what a kill before the first checkpoint loses)."""


class LineChunks:
    """Line-demonstration chunks saved before the run's first checkpoint (``lines-<i>.npz``: observations, labels,
    the chunk's seed, the run's config record and its training seconds when saved), so that a run killed during
    its line demonstrations computes only the chunks it lacks when started again."""

    def __init__(self, folder: Path, run_config: RunConfig):
        self.folder, self.run_config = folder, run_config
        self.seconds = 0.0
        """The most training seconds recorded by a chunk read back (the time the run had spent by then)."""

    def load(self, i: int, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Chunk ``i`` if it was saved by this run's config with ``seed``, else None."""
        path = self.folder / f"lines-{i}.npz"
        try:
            with np.load(path) as f:
                if int(f["seed"]) != seed or self.run_config.differences(json.loads(str(f["run_config"]))):
                    return None
                self.seconds = max(self.seconds, float(f["train_seconds"]))
                return f["obs"], f["labels"]
        except (OSError, ValueError, KeyError):  # absent, or cut short by the kill: computed again
            return None

    def save(self, i: int, seed: int, part: tuple[np.ndarray, np.ndarray], train_seconds: float) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, obs=part[0], labels=part[1], seed=seed, train_seconds=train_seconds,
                 run_config=json.dumps(self.run_config.record))
        write_atomically(self.folder / f"lines-{i}.npz", buffer.getvalue())


def teacher_commands(algo: DaggerConfig, env: ReachConfig) -> Callable[[np.ndarray], np.ndarray]:
    """The teacher's command before saturation, observations -> (B, n_joints) (a ``RowWorkers`` factory)."""
    return Teacher(algo, ReachVectorEnv(1, env)).unsaturated


def selection_key(metrics: dict) -> tuple[float, float, float]:
    """Validation figures ordered best last: held success, then (where measured) the lower time ratios to the
    bound, p90 first."""
    return (metrics["success_rate"], -metrics.get("time_ratio_p90", 0.0), -metrics.get("time_ratio_median", 0.0))


SETTINGS = {"dagger": ["--algo.teacher", "dls", "--goal-distribution", "local", "--env.no-planned"]}
"""The shipped ``local`` recipe (the defaults: DLS teacher, local goals, no planner), as a harness method."""

FAMILY = Family("dagger", DaggerTrainConfig, run, settings=SETTINGS, task_sets=REACH_TASK_SETS,
                fixed=frozenset({"env.robot", "algo.teacher", "env.goal_distribution", "env.planned", "iterations"}))
"""DAgger from a classical teacher on a reach robot; a harness cell's budget is its ``budget_steps``."""
