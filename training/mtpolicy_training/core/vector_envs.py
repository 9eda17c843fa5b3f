"""Vector envs as the training loops use them: same-step autoreset, normalized actions, the final observation of
an episode, the envs' random state in checkpoints, and a plain return evaluation.

Any gymnasium ``VectorEnv`` with same-step autoreset works (``gym_vector_env``
makes one from an env id; ``ReachVectorEnv`` is one). Methods act in
normalized actions [-1, 1], which ``action_scaler`` maps to the env's Box bounds.
"""

from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv


def gym_vector_env(env_id: str, num_envs: int, **kwargs) -> VectorEnv:
    """``num_envs`` copies of a registered gymnasium env in this process, with same-step autoreset."""
    return gym.make_vec(env_id, num_envs, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **kwargs)


def check_same_step_autoreset(env: VectorEnv) -> None:
    """The loops read the last observation of an episode from ``info["final_obs"]`` (same-step autoreset)."""
    mode = env.metadata.get("autoreset_mode")
    if mode not in (AutoresetMode.SAME_STEP, AutoresetMode.SAME_STEP.value):
        raise ValueError(f"env autoreset_mode is {mode!r}; the training loops need AutoresetMode.SAME_STEP "
                         "(use gym_vector_env or vector_kwargs={'autoreset_mode': AutoresetMode.SAME_STEP})")


def action_scaler(space: gym.Space) -> Callable[[np.ndarray], np.ndarray]:
    """Map normalized actions (clipped to [-1, 1]) to the Box bounds of ``space``."""
    if not isinstance(space, gym.spaces.Box):
        raise TypeError(f"continuous actions only: the action space is a {type(space).__name__}, not a Box")
    low, high = space.low.astype(np.float32), space.high.astype(np.float32)
    if np.all(low == -1) and np.all(high == 1):
        return lambda a: np.clip(a, -1.0, 1.0)
    return lambda a: low + (np.clip(a, -1.0, 1.0) + 1.0) * 0.5 * (high - low)


def space_sizes(env: VectorEnv) -> tuple[int, int]:
    """(observation size, action size) of one sub-env of ``env``, whose spaces are flat vectors."""
    obs_shape, action_shape = env.single_observation_space.shape, env.single_action_space.shape
    if obs_shape is None or action_shape is None or len(obs_shape) != 1 or len(action_shape) != 1:
        raise TypeError(f"flat vector spaces only: observations {obs_shape}, actions {action_shape}")
    return obs_shape[0], action_shape[0]


def final_observations(next_obs: np.ndarray, done: np.ndarray, info: dict) -> np.ndarray:
    """The observation each env reached this step: ``info["final_obs"]`` where an episode ended."""
    if not done.any():
        return next_obs
    final = next_obs.copy()
    final[done] = np.stack(info["final_obs"][done])
    return final


def _generator(env) -> np.random.Generator:
    return env._rng if hasattr(env, "_rng") else env.np_random


def _sub_envs(env: VectorEnv) -> list:
    """The sub-envs of a SyncVectorEnv (or of a ``envs.variants.ReachEnvBlocks``: its blocks)."""
    if not hasattr(env, "envs"):
        raise TypeError(f"{type(env).__name__} has no episode random state: neither a _rng nor sub-envs")
    return list(env.envs)


def env_rng_state(env: VectorEnv):
    """The random state of the env's episode draws: ``ReachVectorEnv._rng``, or each sub-env's (its ``np_random``,
    or a block's ``_rng`` in ``envs.variants.ReachEnvBlocks``)."""
    if hasattr(env, "_rng"):
        return env._rng.bit_generator.state
    return [_generator(e).bit_generator.state for e in _sub_envs(env)]


def set_env_rng_state(env: VectorEnv, state) -> None:
    if hasattr(env, "_rng"):
        env._rng.bit_generator.state = state
        return
    for e, s in zip(_sub_envs(env), state):
        _generator(e).bit_generator.state = s


def evaluate_returns(policy: Callable[[np.ndarray], np.ndarray], make_env: Callable[[int], VectorEnv],
                     episodes: int, seed: int) -> dict[str, float]:
    """Mean and std of the undiscounted return of one episode in each of ``episodes`` envs."""
    env = make_env(episodes)
    to_env = action_scaler(env.single_action_space)
    obs, _ = env.reset(seed=seed)
    returns, running = np.zeros(episodes), np.ones(episodes, dtype=bool)
    while running.any():
        obs, reward, terminated, truncated, _ = env.step(to_env(policy(obs)))
        returns += reward * running
        running &= ~(terminated | truncated)
    env.close()
    return {"return_mean": float(returns.mean()), "return_std": float(returns.std())}
