"""The task sets by name: ``make_task_set(name)``, and the two kinds of set built from this package's envs.

| name                         | tasks                                             | source                 |
|------------------------------|---------------------------------------------------|------------------------|
| mt10, mt50                   | Meta-World MT10 / MT50 (random goal each reset)    | envs/metaworld.py      |
| halfcheetah6, halfcheetah8   | HalfCheetah morphologies (A2C paper / PiCor)       | envs/halfcheetah.py    |
| halfcheetah-e1e2             | SmallFoot, SmallLeg (A2C paper's fine-tuning pair) | envs/halfcheetah.py    |
| hoppers3                     | capsule, box, ellipsoid hoppers                   | envs/locomotion.py     |
| walker-fwd-bwd               | one biped, forward and backward COM velocity      | envs/locomotion.py     |
| hopper-mass-3, -8, -14       | hoppers with torso 15 kg and 3, 8 or 14 kg        | envs/locomotion.py     |
| planar8, humanoid (any robot) | one task per end effector (3 / 2), simultaneous  | envs/reach.py          |
| planar8-variants, humanoid-variants | reach on each morphology variant (4 / 3)  | envs/variants.py       |

A robot is a task set too: every shipped robot by name, and any robot
folder or MJCF/URDF path (``mtpolicy.robots.find_robot``). The contract every
set keeps is in ``taskset.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from mtpolicy.robots import RobotSpecError, find_robot, load_robot, shipped_robots
from mtpolicy.robots.variants import VARIANTS
from mtpolicy_training.envs import halfcheetah, locomotion
from mtpolicy_training.envs.reach import ReachConfig, ReachEnv, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import evaluate_reach
from mtpolicy_training.envs.seeds import HELD_OUT_SEED
from mtpolicy_training.envs.taskset import PolicyFn, TaskSet, TaskSetMetrics
from mtpolicy_training.envs.variants import SUFFIX, VariantReachTaskSet

SIDE_CAMERA = {"trackbodyid": 1, "distance": 2.8, "elevation": -5.0, "azimuth": 90.0, "lookat": np.array([0, 0, 0.6])}
"""Camera of ``render_tasks`` for the planar locomotion families: side view, tracking the torso."""


@dataclass(frozen=True)
class GymTaskSet(TaskSet):
    """Tasks that are registered gymnasium env ids (the morphology, hopper and biped families)."""

    env_ids: tuple[str, ...] = ()
    """Env id of each task, in task order."""

    metrics: ClassVar[TaskSetMetrics] = TaskSetMetrics("return", ("mean_return",))

    def _vector_env(self, ids: list[str], seed: int | None) -> VectorEnv:
        env = SyncVectorEnv([partial(gym.make, i) for i in ids], autoreset_mode=AutoresetMode.SAME_STEP)
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
            frames.append(np.asarray(env.render()))  # an rgb_array frame
            env.close()
        return frames


@dataclass(frozen=True)
class ReachTaskSet(TaskSet):
    """A simultaneous set: one reach env, one task per end effector (``info['task_rewards']``)."""

    config: ReachConfig = ReachConfig()
    """The reach env settings."""

    metrics: ClassVar[TaskSetMetrics] = TaskSetMetrics("score", ("success_rate", "mean_score"))
    simultaneous: ClassVar[bool] = True
    task_reward_key: ClassVar[str | None] = "task_rewards"

    def make_env(self, task_index: int | None = None, num_envs: int = 1, seed: int | None = None) -> ReachVectorEnv:
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
    **{b + SUFFIX: partial(VariantReachTaskSet.of, b) for b in dict.fromkeys(v.base for v in VARIANTS)},
    **{robot: _reach(robot) for robot in shipped_robots()},
}
"""Task set name -> constructor (lazy: Meta-World is imported only when asked for); the robots' variants and the
shipped robots last."""


def is_robot(name: str) -> bool:
    """Whether ``name`` is a robot (a shipped name, robot folder or MJCF/URDF path): its reach task set."""
    try:
        find_robot(name)
    except RobotSpecError:
        return False
    return True


def make_task_set(name: str) -> TaskSet:
    """The task set called ``name`` (see TASK_SETS), or the reach set of a robot folder or MJCF/URDF path."""
    if name in TASK_SETS:
        return TASK_SETS[name]()
    if not is_robot(name):
        raise ValueError(f"unknown task set {name!r}; known: {', '.join(TASK_SETS)}, or a robot folder or MJCF/URDF "
                         "path")
    return _reach(name)()
