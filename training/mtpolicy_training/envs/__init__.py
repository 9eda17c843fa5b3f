"""Multi-task environments, registered with gymnasium under ``mtpolicy/``.

| id                      | what                                              |
|-------------------------|---------------------------------------------------|
| mtpolicy/Planar8Reach-v0 | DiGrad's 8-DoF planar manipulator, 3 end effectors |
"""

import gymnasium as gym

from mtpolicy_training.envs.reach import ReachConfig, ReachEnv, ReachVectorEnv

gym.register("mtpolicy/Planar8Reach-v0", entry_point=ReachEnv,
             max_episode_steps=ReachConfig().max_episode_steps, kwargs={"robot": "planar8"})

__all__ = ["ReachConfig", "ReachEnv", "ReachVectorEnv"]
