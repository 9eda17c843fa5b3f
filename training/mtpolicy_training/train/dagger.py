"""Train a reach policy by DAgger from a classical teacher, evaluate it, export it to ONNX.

    python -m mtpolicy_training.train dagger --env.robot planar8 --env.goal-distribution local \
        --out-dir runs/planar8/dagger-local

Each iteration rolls out ``num_envs`` episodes of ``episode_seconds``, labels
them with the teacher, aggregates and refits (``algos/dagger.py``), then
evaluates the student on validation goal sets and exports it to
``best_policy.onnx`` when it is the best so far. A checkpoint after every
iteration (dataset, student, optimizer, RNG states) lets a killed run resume.
At the end: ``eval.json`` (``final_goal_sets`` validation goal sets of the
final-evaluation seed), ``policy.onnx`` (last) and ``best_eval.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mtpolicy.integrity import strict_json
from mtpolicy_training.algos.dagger import DaggerConfig, Student, Teacher
from mtpolicy_training.core.files import write_atomically
from mtpolicy_training.core.run_record import RunConfig, RunRecorder, config_dict, publish_final, write_eval
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import (HELD_OUT_SEED, VALIDATION_SEED, Protocol, evaluate_reach,
                                                     onnx_controller)
from mtpolicy_training.ship.export import export_policy


@dataclass
class DaggerTrainConfig:
    """A DAgger reach run."""

    algo: DaggerConfig = field(default_factory=DaggerConfig)
    """Teacher, student and regression settings."""
    env: ReachConfig = field(default_factory=ReachConfig)
    """Reach task: robot, goal distribution, planned observations."""
    iterations: int = 12
    """DAgger iterations (rollouts + refit each)."""
    num_envs: int = 128
    """Episodes rolled out per iteration, in lockstep."""
    episode_seconds: float = 4.0
    """Length of a training episode (s)."""
    eval_goal_sets: int = 200
    """Validation goal sets of each iteration's evaluation."""
    final_goal_sets: int = 500
    """Goal sets of the final evaluation."""
    torch_threads: int = 1
    """Threads of torch's CPU kernels."""
    seed: int = 1
    """Seed of the network, the noise and the training goal sets."""
    out_dir: Path = Path("runs/planar8/dagger")
    """Where metrics, checkpoints, the evaluation and the ONNX policies go."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self):
        bad = self.algo.validate() + [k for k, ok in {
            "iterations": self.iterations > 0, "num_envs": self.num_envs > 0,
            "episode_seconds": self.episode_seconds > 0, "eval_goal_sets": self.eval_goal_sets > 0,
            "final_goal_sets": self.final_goal_sets > 0, "torch_threads": self.torch_threads > 0,
            "seed": self.seed >= 0}.items() if not ok]
        if bad:
            raise ValueError("invalid config value(s): " + ", ".join(bad))


def run(config: DaggerTrainConfig) -> dict[str, float]:
    torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    out = config.out_dir
    steps = round(config.episode_seconds / config.env.control_period)
    env = ReachVectorEnv(config.num_envs, config.env, time_limit=False)
    teacher = Teacher(config.algo, env)
    mean, std = env.observation_statistics()
    student = Student(config.algo, env.layout, env.spec.n_joints, mean, std)
    recorder = RunRecorder(out, RunConfig.of(config), config.iterations * config.num_envs * steps, config.progress)
    rng, generator = np.random.default_rng(config.seed), torch.Generator().manual_seed(config.seed)
    data = {"obs": torch.zeros(0, env.layout.size), "target": torch.zeros(0, env.spec.n_joints)}
    best = {"success_rate": -1.0}
    iteration = 0
    if recorder.resumed:
        state = recorder.resumed
        student.load_state_dict(state["student"])
        data, best, iteration = state["data"], state["best"], state["iteration"]
        rng.bit_generator.state = state["rng"]
        generator.set_state(state["generator"])

    def export(metrics: dict, path: Path) -> None:
        export_policy(student.policy, env.spec, config.env, method=f"dagger-{config.algo.teacher}",
                      training_config=config_dict(config), metrics=metrics, path=path)

    while iteration < config.iterations:
        beta = config.algo.teacher_mix ** iteration
        obs, _ = env.reset(seed=int(rng.integers(2 ** 31)))
        driven_by_teacher = rng.random(config.num_envs) < beta
        visited, labels = [], []
        for _ in range(steps):
            target = teacher(obs)
            action = np.where(driven_by_teacher[:, None], target, student.act(obs))
            action = action + config.algo.action_noise * rng.standard_normal(action.shape)
            visited.append(obs)
            labels.append(target)
            obs, *_ = env.step(np.clip(action, -1.0, 1.0))
            recorder.advance(config.num_envs)
        data = {"obs": torch.cat([data["obs"], torch.as_tensor(np.concatenate(visited))]),
                "target": torch.cat([data["target"], torch.as_tensor(np.concatenate(labels), dtype=torch.float32)])}
        loss = student.fit(data["obs"], data["target"], generator)
        iteration += 1
        metrics = evaluate_reach(student.act, config.env, config.eval_goal_sets, VALIDATION_SEED,
                                 Protocol(episode_seconds=config.episode_seconds))
        if metrics["success_rate"] > best["success_rate"]:
            best = {**metrics, "iteration": iteration, "found_after_train_seconds": recorder.train_seconds}
            export(metrics, out / "best_policy.onnx")
            write_atomically(out / "best.json", strict_json(best, indent=2))
        recorder.log(metrics, {"train/loss": loss, "train/dataset_size": len(data["obs"]), "train/beta": beta,
                               "train/iteration": iteration})
        recorder.save(student=student.state_dict(), data=data, best=best, iteration=iteration,
                      rng=rng.bit_generator.state, generator=generator.get_state())
    train_seconds = recorder.train_seconds
    recorder.close()
    protocol = Protocol(episode_seconds=config.episode_seconds)
    final = publish_final(out, evaluate_reach(student.act, config.env, config.final_goal_sets, HELD_OUT_SEED,
                                              protocol), train_seconds, export)
    best_eval = evaluate_reach(onnx_controller(out / "best_policy.onnx")[0], config.env, config.final_goal_sets,
                               HELD_OUT_SEED, protocol)
    write_eval(out / "best_eval.json", {**best_eval, "iteration": best["iteration"],
                                        "found_after_train_seconds": best["found_after_train_seconds"]},
               train_seconds)
    print(f"policies: {out / 'policy.onnx'} (last), {out / 'best_policy.onnx'} (best on validation, "
          f"iteration {best['iteration']}); total training {train_seconds / 60:.1f} min", flush=True)
    return {k: v for k, v in final.items() if not (isinstance(v, float) and math.isnan(v))}
