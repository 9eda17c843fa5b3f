"""The task-set contract: the one interface through which multi-task methods get their tasks.

A ``TaskSet`` (``registry.make_task_set(name)`` returns one):

| member                                   | what                                                        |
|------------------------------------------|-------------------------------------------------------------|
| ``name``, ``task_names``, ``n_tasks``    | the set and its tasks, in task-index order                  |
| ``max_episode_steps``                    | episode length (a time-limit truncation, never terminal)    |
| ``simultaneous``                         | False: N MDPs; True: one env whose ``info[task_reward_key]``|
|                                          | holds the N per-task rewards (planar8)                      |
| ``make_env(task_index, num_envs, seed)`` | a VectorEnv of ``num_envs`` copies of one task              |
| ``make_multitask_env(envs_per_task, seed)`` | one VectorEnv over all tasks, task-major: sub-env j runs |
|                                          | task ``task_indices(envs_per_task)[j]``                     |
| ``evaluate(policy_fn, episodes, seed)``  | ``{'eval/mean_return', 'eval/return_<task>', ...}``         |
| ``metrics``                              | the names ``evaluate`` gives: per task and headline         |
| ``render_tasks(width, height)``          | one RGB frame per task (``python -m                         |
|                                          | mtpolicy_training.envs.render`` writes docs/tasksets/*.png) |

Contract shared by every set:

* All tasks of a set share the observation and action spaces (Box, actions
  in [-1, 1]), so one network serves them. Observations never contain the
  task id: a method that conditions on it appends a one-hot with
  ``append_task_one_hot`` (numpy or torch, vectorized) or
  ``TaskOneHotObservations`` (a vector env's), or picks a head.
* Vector envs autoreset in gymnasium's SAME_STEP mode: on the step an
  episode ends, ``obs`` is the next episode's first observation and the
  episode's last one is in ``info['final_obs']``; ``next_observations``
  returns the true next observations for a replay buffer. ``terminated``
  (a fall, a Meta-World success at evaluation) and ``truncated`` (time limit)
  are kept apart.
* ``seed`` seeds the env at construction: its first ``reset()`` without a
  seed starts a reproducible stream.
* ``policy_fn(obs, task_indices) -> actions`` takes a batch of observations
  and their task indices (``None`` for a simultaneous set) and returns
  actions in [-1, 1]; evaluation runs it as given (make it deterministic).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv, VectorWrapper

from mtpolicy_training.envs.seeds import HELD_OUT_SEED

PolicyFn = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]
"""(observations (N, obs_dim), task indices (N,) or None) -> actions (N, act_dim) in [-1, 1]."""


@dataclass(frozen=True)
class TaskSetMetrics:
    """The names of a task set's evaluation metrics (``evaluate`` gives them under ``eval/``)."""

    per_task_metric: str
    """``<per_task_metric>_<task>`` is a task's score; tasks are found by this prefix."""
    headline_metrics: tuple[str, ...]
    """Scalar metrics of the whole set, shown first in tables and curves."""


def append_task_one_hot(obs, task_indices, n_tasks: int):
    """``[obs, one_hot(task)]`` along the last axis; numpy arrays or torch tensors, any batch shape."""
    if isinstance(obs, np.ndarray):
        return np.concatenate([obs, np.eye(n_tasks, dtype=obs.dtype)[np.asarray(task_indices)]], axis=-1)
    import torch
    one_hot = torch.nn.functional.one_hot(task_indices.long(), n_tasks).to(obs.dtype)
    return torch.cat([obs, one_hot], dim=-1)


def next_observations(next_obs: np.ndarray, info: dict) -> np.ndarray:
    """The observations each step really led to: ``info['final_obs']`` where an episode just ended.

    Reads gymnasium's SAME_STEP format (``final_obs`` with mask ``_final_obs``)
    and ReachVectorEnv's (``final_obs`` for every env, all episodes end together).
    """
    if "final_obs" not in info:
        return next_obs
    mask = info.get("_final_obs", np.ones(len(next_obs), dtype=bool))
    out = np.array(next_obs, copy=True)
    out[mask] = np.stack(info["final_obs"][mask])
    return out


class TaskOneHotObservations(VectorWrapper):
    """A multi-task VectorEnv whose sub-env j runs task ``task_indices[j]``, with one_hot(task) appended to every
    float32 observation (``info['final_obs']`` too) and ``info['task']``."""

    def __init__(self, env: VectorEnv, task_indices: np.ndarray, n_tasks: int):
        super().__init__(env)
        self.task_indices, self.n_tasks = np.asarray(task_indices), n_tasks
        inner = env.single_observation_space
        if not isinstance(inner, spaces.Box):
            raise TypeError(f"one-hot task observations need a Box observation space, not a {type(inner).__name__}")
        low = np.concatenate([inner.low, np.zeros(n_tasks)]).astype(np.float32)
        high = np.concatenate([inner.high, np.ones(n_tasks)]).astype(np.float32)
        self.single_observation_space = spaces.Box(low, high, dtype=np.float32)
        self.observation_space = spaces.Box(np.tile(low, (env.num_envs, 1)), np.tile(high, (env.num_envs, 1)),
                                            dtype=np.float32)

    @property
    def envs(self):
        """The sub-envs (the loops save and restore their random states)."""
        return self.env.envs

    def _with_task(self, obs: np.ndarray) -> np.ndarray:
        return append_task_one_hot(np.asarray(obs, np.float32), self.task_indices, self.n_tasks)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self._with_task(obs), info | {"task": self.task_indices}

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        info = dict(info, task=self.task_indices)
        if "final_obs" in info:
            final = np.array(info["final_obs"], dtype=object)
            for j in np.flatnonzero(info.get("_final_obs", np.ones(self.num_envs, bool))):
                final[j] = append_task_one_hot(np.asarray(final[j], np.float32), self.task_indices[j], self.n_tasks)
            info["final_obs"] = final
        return self._with_task(obs), reward, terminated, truncated, info


@dataclass(frozen=True)
class TaskSet(abc.ABC):
    """A set of tasks sharing spaces (see the module docstring for the contract)."""

    name: str
    """Registry name, e.g. 'halfcheetah8'."""
    task_names: tuple[str, ...]
    """Task names in task-index order."""
    max_episode_steps: int
    """Steps per episode before the time-limit truncation."""

    metrics: ClassVar[TaskSetMetrics]
    """The names of ``evaluate``'s metrics."""
    simultaneous: ClassVar[bool] = False
    """True: one env holds all tasks, per-task rewards in ``info[task_reward_key]``."""
    task_reward_key: ClassVar[str | None] = None
    """``info`` key of the per-task reward vector of a simultaneous set."""
    reuses_evaluation_env: ClassVar[bool] = False
    """True: ``evaluate`` also takes ``envs``, a ``make_multitask_env(1, seed)`` that a training run builds once
    and passes to every evaluation (Meta-World, whose envs are slow to build)."""

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)

    def task_indices(self, envs_per_task: int = 1) -> np.ndarray:
        """Task index of each sub-env of ``make_multitask_env(envs_per_task)`` (task-major)."""
        return np.repeat(np.arange(self.n_tasks), envs_per_task)

    @abc.abstractmethod
    def make_env(self, task_index: int, num_envs: int = 1, seed: int | None = None) -> VectorEnv:
        """``num_envs`` copies of task ``task_index``."""

    @abc.abstractmethod
    def make_multitask_env(self, envs_per_task: int = 1, seed: int | None = None) -> VectorEnv:
        """All tasks in one vector env, ``envs_per_task`` sub-envs each, task-major."""

    @abc.abstractmethod
    def evaluate(self, policy_fn: PolicyFn, episodes: int, seed: int = HELD_OUT_SEED) -> dict[str, float]:
        """Mean and per-task metrics of ``policy_fn`` over ``episodes`` episodes per task."""

    @abc.abstractmethod
    def render_tasks(self, width: int = 320, height: int = 240) -> list[np.ndarray]:
        """One RGB frame per task (per env for a simultaneous set) after a seeded reset."""

    def _check_task(self, task_index: int) -> None:
        if not 0 <= task_index < self.n_tasks:
            raise ValueError(f"task_index={task_index} out of range for {self.name} ({self.n_tasks} tasks)")
