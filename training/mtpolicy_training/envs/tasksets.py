"""Task sets: the one interface through which multi-task methods get their tasks.

``make_task_set(name)`` returns a ``TaskSet``:

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
| ``render_tasks(width, height)``          | one RGB frame per task (``python -m                         |
|                                          | mtpolicy_training.envs.tasksets`` writes docs/tasksets/*.png)|

Contract shared by every set:

* All tasks of a set share the observation and action spaces (Box, actions
  in [-1, 1]), so one network serves them. Observations never contain the
  task id: a method that conditions on it appends a one-hot with
  ``append_task_one_hot`` (numpy or torch, vectorized), or picks a head.
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

| name                         | tasks                                             | source                 |
|------------------------------|---------------------------------------------------|------------------------|
| mt10, mt50                   | Meta-World MT10 / MT50 (random goal each reset)    | envs/metaworld.py      |
| halfcheetah6, halfcheetah8   | HalfCheetah morphologies (A2C paper / PiCor)       | envs/halfcheetah.py    |
| halfcheetah-e1e2             | SmallFoot, SmallLeg (A2C paper's fine-tuning pair) | envs/halfcheetah.py    |
| hoppers3                     | capsule, box, ellipsoid hoppers                   | envs/locomotion.py     |
| walker-fwd-bwd               | one biped, forward and backward COM velocity      | envs/locomotion.py     |
| hopper-mass-3, -8, -14       | hoppers with torso 15 kg and 3, 8 or 14 kg        | envs/locomotion.py     |
| planar8, humanoid            | one task per end effector (3 / 2), simultaneous   | envs/reach.py          |
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from mtpolicy.robots import load_robot
from mtpolicy_training.envs import halfcheetah, locomotion
from mtpolicy_training.envs.reach import ReachConfig, ReachEnv, ReachVectorEnv
from mtpolicy_training.evaluate import HELD_OUT_SEED, evaluate_reach

SIDE_CAMERA = {"trackbodyid": 1, "distance": 2.8, "elevation": -5.0, "azimuth": 90.0, "lookat": np.array([0, 0, 0.6])}
"""Camera of ``render_tasks`` for the planar locomotion families: side view, tracking the torso."""

PolicyFn = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]
"""(observations (N, obs_dim), task indices (N,) or None) -> actions (N, act_dim) in [-1, 1]."""


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


@dataclass(frozen=True)
class TaskSet(abc.ABC):
    """A set of tasks sharing spaces (see the module docstring for the contract)."""

    name: str
    """Registry name, e.g. 'halfcheetah8'."""
    task_names: tuple[str, ...]
    """Task names in task-index order."""
    max_episode_steps: int
    """Steps per episode before the time-limit truncation."""

    simultaneous: ClassVar[bool] = False
    """True: one env holds all tasks, per-task rewards in ``info[task_reward_key]``."""
    task_reward_key: ClassVar[str | None] = None
    """``info`` key of the per-task reward vector of a simultaneous set."""
    reuses_evaluation_env: ClassVar[bool] = False
    """True: ``evaluate`` also takes ``envs``, a ``make_multitask_env(1, seed)`` that a training run builds once
    and passes to every evaluation (Meta-World, whose envs take ~10 s to build)."""

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


@dataclass(frozen=True)
class GymTaskSet(TaskSet):
    """Tasks that are registered gymnasium env ids (the morphology, hopper and biped families)."""

    env_ids: tuple[str, ...] = ()
    """Env id of each task, in task order."""

    def _vector_env(self, ids: list[str], seed: int | None) -> VectorEnv:
        env = SyncVectorEnv([lambda i=i: gym.make(i) for i in ids], autoreset_mode=AutoresetMode.SAME_STEP)
        env.reset(seed=seed)
        env.action_space.seed(seed)
        return env

    def make_env(self, task_index: int, num_envs: int = 1, seed: int | None = None) -> VectorEnv:
        self._check_task(task_index)
        return self._vector_env([self.env_ids[task_index]] * num_envs, seed)

    def make_multitask_env(self, envs_per_task: int = 1, seed: int | None = None) -> VectorEnv:
        return self._vector_env([self.env_ids[t] for t in self.task_indices(envs_per_task)], seed)

    def evaluate(self, policy_fn: PolicyFn, episodes: int, seed: int = HELD_OUT_SEED) -> dict[str, float]:
        """Undiscounted return of the first episode of ``episodes`` sub-envs per task, all run at once.

        ``eval/return_<task>`` and ``eval/return_std_<task>`` are the mean and
        standard deviation over the task's episodes (the A2C paper's
        mean +- std over rollouts); ``eval/mean_return`` averages the tasks.
        """
        env = self.make_multitask_env(episodes, seed)
        tasks = self.task_indices(episodes)
        obs, _ = env.reset()
        returns, running, done = np.zeros(len(tasks)), np.ones(len(tasks), dtype=bool), np.zeros(len(tasks), bool)
        while not done.all():
            obs, reward, terminated, truncated, _ = env.step(policy_fn(obs, tasks))
            returns += np.where(running, reward, 0.0)
            done |= terminated | truncated
            running &= ~done
        env.close()
        per_task = returns.reshape(self.n_tasks, episodes)
        out = {"eval/mean_return": float(per_task.mean())}
        for name, r in zip(self.task_names, per_task):
            out[f"eval/return_{name}"] = float(r.mean())
            out[f"eval/return_std_{name}"] = float(r.std())
        return out


    def render_tasks(self, width: int = 320, height: int = 240) -> list[np.ndarray]:
        frames = []
        for env_id in self.env_ids:
            env = gym.make(env_id, render_mode="rgb_array", width=width, height=height,
                           default_camera_config=SIDE_CAMERA)
            env.reset(seed=0)
            frames.append(env.render())
            env.close()
        return frames


@dataclass(frozen=True)
class ReachTaskSet(TaskSet):
    """A simultaneous set: one reach env, one task per end effector (``info['task_rewards']``)."""

    config: ReachConfig = ReachConfig()
    """The reach env settings."""

    simultaneous: ClassVar[bool] = True
    task_reward_key: ClassVar[str | None] = "task_rewards"

    def make_env(self, task_index: int | None = None, num_envs: int = 1, seed: int | None = None) -> VectorEnv:
        """The reach env (every env holds all tasks, so ``task_index`` must be None)."""
        if task_index is not None:
            raise ValueError(f"{self.name} is simultaneous: every env holds all tasks; pass task_index=None")
        env = ReachVectorEnv(num_envs, self.config)
        env.reset(seed=seed)
        return env

    def make_multitask_env(self, envs_per_task: int = 1, seed: int | None = None) -> VectorEnv:
        return self.make_env(None, envs_per_task, seed)

    def evaluate(self, policy_fn: PolicyFn, episodes: int, seed: int = HELD_OUT_SEED) -> dict[str, float]:
        """``evaluate_reach`` on ``episodes`` goal sets (success, per-end-effector errors and scores)."""
        metrics = evaluate_reach(lambda obs: policy_fn(obs, None), self.config, n_goal_sets=episodes, seed=seed)
        return {f"eval/{k}": v for k, v in metrics.items()}

    def render_tasks(self, width: int = 320, height: int = 240) -> list[np.ndarray]:
        env = ReachEnv(self.config, render_mode="rgb_array")
        env.reset(seed=0)
        frame = env.render()
        env.close()
        return [frame]


def _gym_set(name: str, tasks: dict[str, str], max_episode_steps: int = locomotion.EPISODE_STEPS) -> GymTaskSet:
    return GymTaskSet(name, tuple(tasks), max_episode_steps, env_ids=tuple(tasks.values()))


def _half_cheetahs(name: str, variants: tuple[str, ...]) -> Callable[[], TaskSet]:
    return lambda: _gym_set(name, {v: halfcheetah.env_id(v) for v in variants})


def _torso_mass_pair(light: float) -> Callable[[], TaskSet]:
    masses = (15.0, light)
    return lambda: _gym_set(f"hopper-mass-{light:g}", {f"torso{m:g}kg": locomotion.TORSO_MASS_IDS[m] for m in masses})


def _metaworld(benchmark: str) -> Callable[[], TaskSet]:
    def make() -> TaskSet:
        from mtpolicy_training.envs.metaworld import MetaWorldTaskSet
        return MetaWorldTaskSet.for_benchmark(benchmark)
    return make


def _reach(robot: str) -> Callable[[], TaskSet]:
    def make() -> TaskSet:
        config = ReachConfig(robot=robot)
        return ReachTaskSet(robot, load_robot(robot).end_effectors, config.max_episode_steps, config=config)
    return make


TASK_SETS: dict[str, Callable[[], TaskSet]] = {
    "mt10": _metaworld("MT10"),
    "mt50": _metaworld("MT50"),
    "halfcheetah6": _half_cheetahs("halfcheetah6", halfcheetah.A2C_VARIANTS),
    "halfcheetah8": _half_cheetahs("halfcheetah8", halfcheetah.PICOR_VARIANTS),
    "halfcheetah-e1e2": _half_cheetahs("halfcheetah-e1e2", halfcheetah.FINETUNE_VARIANTS),
    "hoppers3": lambda: _gym_set("hoppers3", {s.lower(): i for s, i in locomotion.HOPPER_IDS.items()}),
    "walker-fwd-bwd": lambda: _gym_set("walker-fwd-bwd", locomotion.BIPED_IDS),
    **{f"hopper-mass-{m:g}": _torso_mass_pair(m) for m in locomotion.HOPPER_TORSO_MASSES if m != 15.0},
    "planar8": _reach("planar8"),
    "humanoid": _reach("humanoid"),
}
"""Task set name -> constructor (lazy: Meta-World is imported only when asked for)."""


def make_task_set(name: str) -> TaskSet:
    """The task set called ``name`` (see TASK_SETS)."""
    if name not in TASK_SETS:
        raise ValueError(f"unknown task set {name!r}; known: {', '.join(TASK_SETS)}")
    return TASK_SETS[name]()


@dataclass
class RenderConfig:
    """Render every task of some task sets after a reset: one PNG strip per set."""

    names: tuple[str, ...] = ("halfcheetah8", "hoppers3", "hopper-mass-3", "walker-fwd-bwd", "planar8", "humanoid",
                              "mt10")
    """Task sets to render."""
    out_dir: Path = Path("docs/tasksets")
    """Directory of the PNGs (``<name>.png``)."""
    width: int = 480
    """Frame width (px)."""
    height: int = 360
    """Frame height (px)."""


def render_task_sets(config: RenderConfig) -> list[Path]:
    """Write ``<out_dir>/<name>.png``: the tasks' frames side by side (rows of 4), names as titles."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config.out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in config.names:
        task_set = make_task_set(name)
        frames = task_set.render_tasks(config.width, config.height)
        titles = task_set.task_names if len(frames) == task_set.n_tasks else (" + ".join(task_set.task_names),)
        cols = min(4, len(frames))
        rows = -(-len(frames) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, frame, title in zip(axes.flat, frames, titles):
            ax.imshow(frame)
            ax.set_title(title, fontsize=9)
        fig.suptitle(name)
        fig.tight_layout(h_pad=1.5)
        paths.append(config.out_dir / f"{name}.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


if __name__ == "__main__":
    import tyro

    for path in render_task_sets(tyro.cli(RenderConfig)):
        print(path)
