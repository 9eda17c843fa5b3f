"""Reach on a robot's morphology variants as a set of N MDPs: the tasks of PPO + specialization and A2C.

The papers' tasks are morphologies of one robot (hoppers of other shapes and
masses, HalfCheetahs with longer or shorter parts); here they are the
variants of a shipped robot (``mtpolicy.robots.variants``: links' lengths and
masses scaled by up to +-25 %), each a robot folder of its own. The task set
``<robot>-variants`` (``train ppo|a2c --robot <robot>``) has one task per
variant: a reach env (``envs/reach.py``) on that variant, all end effectors
at once, its scalar reward the task's reward. Every variant keeps the base's
joints and end effectors, so the observations and actions of all tasks have
one layout; a method tells the tasks apart by the one-hot it appends.

Evaluation runs ``evaluate_reach`` on each variant: ``eval/success_rate_<variant>``
(held: every end effector within tolerance for the final second),
``eval/mean_score_<variant>`` (``-log error``), and their means over the
variants, ``eval/success_rate`` and ``eval/mean_score``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from mtpolicy.robots.variants import VARIANTS, variants_of
from mtpolicy_training.envs.reach import GOAL_DISTRIBUTIONS, REWARDS, ReachConfig, ReachEnv, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import evaluate_reach
from mtpolicy_training.envs.seeds import HELD_OUT_SEED
from mtpolicy_training.envs.taskset import PolicyFn, TaskSet, TaskSetMetrics

SUFFIX = "-variants"
"""``<robot><SUFFIX>`` names the task set of a robot's variants."""


def _merged(infos: list[dict]) -> dict:
    """The sub-envs' infos as one: arrays (one row per sub-env) concatenated, dicts merged alike."""
    out: dict[str, dict | np.ndarray] = {}
    for key, value in infos[0].items():
        if isinstance(value, dict):
            out[key] = _merged([i[key] for i in infos])
        elif isinstance(value, np.ndarray):
            out[key] = np.concatenate([i[key] for i in infos])
    return out


class ReachEnvBlocks(VectorEnv):
    """Reach vector envs of one observation and action layout and one episode length side by side, as one
    VectorEnv stepped in lockstep (sub-env blocks in order); same-step autoreset in gymnasium's format
    (``info['final_obs']``, an object array, with its mask ``info['_final_obs']``)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, envs: list[ReachVectorEnv]):
        first = envs[0]
        for env in envs[1:]:
            if (env.layout.size, env.spec.n_joints, env.config.max_episode_steps) != (
                    first.layout.size, first.spec.n_joints, first.config.max_episode_steps):
                raise ValueError(f"reach envs of {env.spec.name} and {first.spec.name} differ in layout or length")
        self.envs = envs
        """The blocks (their random states are the loops' checkpointed env state)."""
        self.num_envs = sum(e.num_envs for e in envs)
        self.single_observation_space, self.single_action_space = (first.single_observation_space,
                                                                   first.single_action_space)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._splits = np.cumsum([e.num_envs for e in envs])[:-1]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Every block reset (block i with ``seed + i``)."""
        results = [e.reset(seed=None if seed is None else seed + i) for i, e in enumerate(self.envs)]
        return np.concatenate([obs for obs, _ in results]), _merged([info for _, info in results])

    def step(self, actions: np.ndarray):
        results = [e.step(a) for e, a in zip(self.envs, np.split(np.asarray(actions), self._splits))]
        obs, reward, terminated, truncated = (np.concatenate([r[k] for r in results]) for k in range(4))
        info = _merged([r[4] for r in results])
        if "final_obs" in info:
            final = np.empty(self.num_envs, dtype=object)
            for j, row in enumerate(info["final_obs"]):
                final[j] = row
            info["final_obs"], info["_final_obs"] = final, terminated | truncated
        return obs, reward, terminated, truncated, info


@dataclass(frozen=True)
class VariantReachTaskSet(TaskSet):
    """N MDPs: reach on each morphology variant of a robot (see the module docstring)."""

    goal_distribution: str = "local"
    """Where goal configurations lie ('local' or 'workspace', ``envs/reach.py``)."""
    reward: str = "paper"
    """The reward shape of every variant's reach task (``ReachConfig.reward``: paper or hold)."""

    metrics: ClassVar[TaskSetMetrics] = TaskSetMetrics("success_rate", ("success_rate", "mean_score"))

    def __post_init__(self):
        if self.goal_distribution not in GOAL_DISTRIBUTIONS:
            raise ValueError(f"goal_distribution {self.goal_distribution!r}: one of {GOAL_DISTRIBUTIONS}")
        if self.reward not in REWARDS:
            raise ValueError(f"reward {self.reward!r}: one of {', '.join(REWARDS)}")

    @classmethod
    def of(cls, robot: str, goal_distribution: str = "local", reward: str = "paper") -> "VariantReachTaskSet":
        """The set of ``robot``'s shipped variants (ValueError naming the robots that have some)."""
        variants = variants_of(robot)
        if not variants:
            raise ValueError(f"robot {robot!r} has no morphology variants; robots with some: "
                             f"{sorted({v.base for v in VARIANTS})} (mtpolicy/robots/variants.py)")
        config = ReachConfig(robot=variants[0])
        return cls(robot + SUFFIX, variants, config.max_episode_steps, goal_distribution=goal_distribution,
                   reward=reward)

    def config(self, task_index: int) -> ReachConfig:
        """The reach settings of task ``task_index``: its variant, its tolerance, the set's goal distribution and
        reward."""
        self._check_task(task_index)
        return ReachConfig(robot=self.task_names[task_index], goal_distribution=self.goal_distribution,
                           reward=self.reward)

    def make_env(self, task_index: int, num_envs: int = 1, seed: int | None = None) -> VectorEnv:
        env = ReachVectorEnv(num_envs, self.config(task_index))
        env.reset(seed=seed)
        return env

    def make_multitask_env(self, envs_per_task: int = 1, seed: int | None = None) -> VectorEnv:
        env = ReachEnvBlocks([ReachVectorEnv(envs_per_task, self.config(t)) for t in range(self.n_tasks)])
        env.reset(seed=seed)
        return env

    def evaluate(self, policy_fn: PolicyFn, episodes: int, seed: int = HELD_OUT_SEED) -> dict[str, float]:
        """``evaluate_reach`` on ``episodes`` goal sets of each variant (see the module docstring)."""
        out: dict[str, float] = {}
        for t, name in enumerate(self.task_names):
            metrics = evaluate_reach(lambda obs: policy_fn(obs, np.full(len(obs), t)), self.config(t),
                                     n_goal_sets=episodes, seed=seed)
            out |= {f"eval/{k}_{name}": metrics[k] for k in self.metrics.headline_metrics}
        return {f"eval/{k}": float(np.mean([out[f"eval/{k}_{n}"] for n in self.task_names]))
                for k in self.metrics.headline_metrics} | out

    def render_tasks(self, width: int = 320, height: int = 240) -> list[np.ndarray]:
        frames = []
        for t in range(self.n_tasks):
            env = ReachEnv(self.config(t), render_mode="rgb_array")
            env.reset(seed=0)
            frames.append(env.render())
            env.close()
        return frames
