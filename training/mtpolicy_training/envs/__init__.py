"""Multi-task environments, registered with gymnasium under ``mtpolicy/``.

| id                                | what                                                        |
|-----------------------------------|-------------------------------------------------------------|
| mtpolicy/Planar8Reach-v0          | DiGrad's 8-DoF planar manipulator, 3 end effectors          |
| mtpolicy/HumanoidTwoHandReach-v0  | 27-DoF humanoid, both hands in 3-D with the 13-DoF upper body, success within 0.03 m |
"""

import gymnasium as gym

from mtpolicy_training.envs.reach import ReachConfig, ReachEnv, ReachVectorEnv

gym.register("mtpolicy/Planar8Reach-v0", entry_point=ReachEnv,
             max_episode_steps=ReachConfig().max_episode_steps, kwargs={"robot": "planar8"})
gym.register("mtpolicy/HumanoidTwoHandReach-v0", entry_point=ReachEnv,
             max_episode_steps=ReachConfig().max_episode_steps, kwargs={"config": ReachConfig(robot="humanoid")})

__all__ = ["ReachConfig", "ReachEnv", "ReachVectorEnv"]
