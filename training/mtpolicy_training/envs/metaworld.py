"""Meta-World MT10 / MT50 as task sets, through Meta-World 3's own gymnasium API.

``make_multitask_env`` is ``gym.make_vec('Meta-World/MT10' | 'Meta-World/MT50',
vector_strategy='sync', seed=seed)``: one sub-env per task, in the order of
``metaworld.env_dict.MT10_V3`` / ``MT50_V3`` (the task names). The benchmark
draws 50 goal variations per task from ``seed`` at construction, and every
reset picks one of them at random (``RandomTaskSelectWrapper``): random goals
per reset, the benchmark's intended use. Episodes are truncated after
``SawyerXYZEnv.max_path_length`` (500) steps; training envs never terminate
on success. Seeding happens only at construction (Meta-World 3.1 ignores
``reset(seed=...)``), so the same ``seed`` gives the same goals and resets.

Observations (39 numbers) carry no task id: ``append_task_one_hot`` gives
exactly what Meta-World's ``use_one_hot=True`` appends (tested).

``evaluate`` is Meta-World's ``metaworld.evaluation.evaluation`` (episodes end
at the first success; success rate per task over ``episodes`` episodes,
50 in the benchmark) on a new vector env built with ``seed``. MT10 and MT50
have no held-out goals: pass the training run's seed so evaluation draws from
the goal variations the policy was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, ClassVar, cast

import gymnasium as gym
import metaworld
import metaworld.env_dict
import metaworld.evaluation
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from metaworld.sawyer_xyz_env import SawyerXYZEnv

from mtpolicy_training.envs.seeds import HELD_OUT_SEED
from mtpolicy_training.envs.taskset import PolicyFn, TaskSet, TaskSetMetrics

BENCHMARKS = {"MT10": metaworld.env_dict.MT10_V3, "MT50": metaworld.env_dict.MT50_V3}
"""Benchmark -> its task classes, in sub-env order."""


class _Agent:
    """Meta-World's evaluation ``Agent`` protocol over a task-set policy (sub-env i runs task i)."""

    def __init__(self, policy_fn: PolicyFn, task_indices: np.ndarray):
        self.policy_fn, self.task_indices = policy_fn, task_indices

    def eval_action(self, observations: np.ndarray) -> np.ndarray:
        return self.policy_fn(observations, self.task_indices)

    def reset(self, env_mask: np.ndarray) -> None:
        """The policy is memoryless: nothing to reset."""


@dataclass(frozen=True)
class MetaWorldTaskSet(TaskSet):
    """MT10 or MT50 (see the module docstring)."""

    benchmark: str = "MT10"
    """'MT10' or 'MT50'."""

    metrics: ClassVar[TaskSetMetrics] = TaskSetMetrics("success", ("mean_success", "mean_return"))
    reuses_evaluation_env: ClassVar[bool] = True

    @classmethod
    def for_benchmark(cls, benchmark: str) -> MetaWorldTaskSet:
        if benchmark not in BENCHMARKS:
            raise ValueError(f"benchmark must be one of {', '.join(BENCHMARKS)}, got {benchmark!r}")
        return cls(benchmark.lower(), tuple(BENCHMARKS[benchmark]), SawyerXYZEnv.max_path_length,
                   benchmark=benchmark)

    def make_multitask_env(self, envs_per_task: int = 1, seed: int | None = None) -> VectorEnv:
        """The benchmark's own vector env: exactly one sub-env per task."""
        if envs_per_task != 1:
            raise ValueError(f"envs_per_task={envs_per_task}: Meta-World's {self.benchmark} has one env per task")
        return gym.make_vec(f"Meta-World/{self.benchmark}", vector_strategy="sync", seed=seed)

    def make_env(self, task_index: int, num_envs: int = 1, seed: int | None = None) -> VectorEnv:
        """``num_envs`` copies of one task (``metaworld.make_mt_envs``: its own 50 goals each, seed + i)."""
        self._check_task(task_index)
        name = self.task_names[task_index]
        # make_mt_envs of one task name makes an Env (its annotation is Env | VectorEnv, for benchmark names)
        return SyncVectorEnv([cast(Callable[[], gym.Env], partial(metaworld.make_mt_envs, name,
                                                                  seed=None if seed is None else seed + i))
                              for i in range(num_envs)], autoreset_mode=AutoresetMode.SAME_STEP)

    def evaluate(self, policy_fn: PolicyFn, episodes: int = 50, seed: int = HELD_OUT_SEED,
                 envs: VectorEnv | None = None) -> dict[str, float]:
        """Meta-World's evaluation: ``eval/mean_success``, ``eval/success_<task>``, returns likewise.

        ``envs``: a ``make_multitask_env`` env to evaluate on (a training loop
        can keep one: Meta-World's envs are slow to build); built from
        ``seed`` and closed afterwards when None.
        """
        vector = cast(SyncVectorEnv, self.make_multitask_env(1, seed) if envs is None else envs)  # make_vec "sync"
        mean_success, mean_return, success, returns = metaworld.evaluation.evaluation(
            _Agent(policy_fn, self.task_indices()), vector, num_episodes=episodes)
        if envs is None:
            vector.close()
        out = {"eval/mean_success": mean_success, "eval/mean_return": mean_return}
        for name in self.task_names:
            out[f"eval/success_{name}"] = float(success[name])
            out[f"eval/return_{name}"] = float(np.mean(returns[name]))
        return out

    def render_tasks(self, width: int = 320, height: int = 240) -> list[np.ndarray]:
        """One frame per task from the 'corner' camera after a reset."""
        envs = cast(SyncVectorEnv, gym.make_vec(f"Meta-World/{self.benchmark}", vector_strategy="sync", seed=0,
                                                render_mode="rgb_array", camera_name="corner", width=width,
                                                height=height))
        envs.reset()
        frames = list(envs.call("render"))
        envs.close()
        return frames
