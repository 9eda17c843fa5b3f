"""Multi-task environments, registered with gymnasium under ``mtpolicy/``.

| id                                | what                                                        |
|-----------------------------------|-------------------------------------------------------------|
| mtpolicy/<env_id>                 | reach on a shipped robot whose robot.yaml names an ``env_id`` (reach.py): |
| mtpolicy/Planar8Reach-v0          | DiGrad's 8-DoF planar manipulator, 3 end effectors          |
| mtpolicy/HumanoidTwoHandReach-v0  | 27-DoF humanoid, both hands with the 13-DoF upper body      |
| mtpolicy/HalfCheetah-{Small,Big}{Foot,Leg,Thigh,Torso}-v0 | half-cheetah morphologies (halfcheetah.py) |
| mtpolicy/Hopper-{Capsule,Box,Ellipsoid}-v0 | hoppers of three shapes and sizes (locomotion.py) |
| mtpolicy/Hopper-TorsoMass{3,8,14,15}-v0    | hoppers with the given torso mass (locomotion.py) |
| mtpolicy/Biped-{Forward,Backward}-v0       | walker rewarded for forward / backward COM velocity (locomotion.py) |

Task sets over these and Meta-World MT10/MT50: ``registry.make_task_set``; their contract: ``taskset``.
"""

from mtpolicy_training.envs import halfcheetah, locomotion, reach
from mtpolicy_training.envs.reach import ReachConfig, ReachEnv, ReachVectorEnv

reach.register()
halfcheetah.register()
locomotion.register()

__all__ = ["ReachConfig", "ReachEnv", "ReachVectorEnv"]
