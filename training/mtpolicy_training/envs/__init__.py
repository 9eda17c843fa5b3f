"""Multi-task environments, registered with gymnasium under ``mtpolicy/``.

| id                                | what                                                        |
|-----------------------------------|-------------------------------------------------------------|
| mtpolicy/Planar8Reach-v0          | DiGrad's 8-DoF planar manipulator, 3 end effectors          |
| mtpolicy/HumanoidTwoHandReach-v0  | 27-DoF humanoid, both hands in 3-D with the 13-DoF upper body, success within 0.03 m |
| mtpolicy/HalfCheetah-{Small,Big}{Foot,Leg,Thigh,Torso}-v0 | half-cheetah morphologies (halfcheetah.py) |
| mtpolicy/Hopper-{Capsule,Box,Ellipsoid}-v0 | hoppers of three shapes and sizes (locomotion.py) |
| mtpolicy/Hopper-TorsoMass{3,8,14,15}-v0    | hoppers with the given torso mass (locomotion.py) |
| mtpolicy/Biped-{Forward,Backward}-v0       | walker rewarded for forward / backward COM velocity (locomotion.py) |

Task sets over these and Meta-World MT10/MT50: ``registry.make_task_set``; their contract: ``taskset``.
"""

import gymnasium as gym

from mtpolicy_training.envs import halfcheetah, locomotion
from mtpolicy_training.envs.reach import ReachConfig, ReachEnv, ReachVectorEnv

gym.register("mtpolicy/Planar8Reach-v0", entry_point=ReachEnv,
             max_episode_steps=ReachConfig().max_episode_steps, kwargs={"robot": "planar8"})
gym.register("mtpolicy/HumanoidTwoHandReach-v0", entry_point=ReachEnv,
             max_episode_steps=ReachConfig().max_episode_steps, kwargs={"config": ReachConfig(robot="humanoid")})
halfcheetah.register()
locomotion.register()

__all__ = ["ReachConfig", "ReachEnv", "ReachVectorEnv"]
