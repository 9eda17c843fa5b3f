"""Locomotion task families made by editing gymnasium's own MJCF models at run time.

The models are never copied into this repository: ``gym_model_spec`` loads the
file shipped in the installed gymnasium package as a ``mujoco.MjSpec``, the
family edits it, and ``write_model`` writes the result into a cache directory
(``$MTPOLICY_CACHE``, default ``~/.cache/mtpolicy``) under a content hash, from
which gymnasium's own env class loads it through its ``xml_file`` argument.

Mass: every model here gets its masses from geometry and density
(``inertiafromgeom``). ``half_cheetah.xml`` rescales all masses to 14 kg with
``settotalmass``; ``gym_model_spec`` folds that factor into the density of
every geom, so the unedited model has exactly gymnasium's masses and
inertias, and an edited part gets the mass its new volume implies.

Families of the PPO joint-training paper (seeds/ppo-joint-training-and-specialization.txt, Sec. V):

| id                                | model                                        | reward               |
|-----------------------------------|----------------------------------------------|----------------------|
| mtpolicy/Hopper-Capsule-v0        | gymnasium's hopper (capsules), height x 1.0   | Hopper-v5            |
| mtpolicy/Hopper-Box-v0            | every capsule a box, height x 0.8             | Hopper-v5            |
| mtpolicy/Hopper-Ellipsoid-v0      | every capsule an ellipsoid, height x 1.2      | Hopper-v5            |
| mtpolicy/Hopper-TorsoMass{3,8,14,15}-v0 | gymnasium's hopper, torso mass 3/8/14/15 kg | Hopper-v5        |
| mtpolicy/Biped-Forward-v0         | gymnasium's walker2d_v5.xml                  | + COM x velocity     |
| mtpolicy/Biped-Backward-v0        | the same body                                | - COM x velocity     |

Choices where the paper is vague (it gives no dimensions; its robots are DART models):

* Shapes: a capsule of radius r and half-length h becomes a box with half-sizes
  (r, r, h + r) or an ellipsoid with semi-axes (r, r, h + r): the same extent
  along every axis, so joints, attachment points and ground clearance stay;
  the mass follows the volume (box x1.35, ellipsoid x0.71 of the capsule).
* Heights: the whole robot is scaled about the floor (all positions and
  sizes), capsule 1.0, box 0.8, ellipsoid 1.2, so the three differ in shape
  and in size as in the paper's Fig. 2. With the shape change the total mass
  is 11.0 / 15.8 / 19.5 kg (box / capsule / ellipsoid); motor gears are
  gymnasium's for all three. The healthy-height lower bound (0.7 m) scales
  with the robot.
* Torso mass: set on the torso geom (its inertia follows the capsule at that
  mass); the rest is gymnasium's hopper (torso 3.67 kg there).
* Biped: the reward's forward term is ``direction * v_com``, the x velocity of
  the whole robot's centre of mass at the end of the step (the paper rewards
  "linear velocities at the COM ... positive and negative"); healthy reward,
  control cost and termination are Walker2d-v5's.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.hopper_v5 import HopperEnv
from gymnasium.envs.mujoco.walker2d_v5 import Walker2dEnv

from mtpolicy_training.core.files import write_new_file

GYM_ASSETS = Path(gym.__file__).resolve().parent / "envs" / "mujoco" / "assets"
"""The MJCF files shipped with the installed gymnasium."""

EPISODE_STEPS = 1000
"""Steps per episode of the hopper, walker and half-cheetah families (gymnasium's v5 default)."""

HOPPER_SHAPES = {"Capsule": (mujoco.mjtGeom.mjGEOM_CAPSULE, 1.0), "Box": (mujoco.mjtGeom.mjGEOM_BOX, 0.8),
                 "Ellipsoid": (mujoco.mjtGeom.mjGEOM_ELLIPSOID, 1.2)}
"""Hopper shape name -> (geom type of every body part, height scale)."""

HOPPER_TORSO_MASSES = (3.0, 8.0, 14.0, 15.0)
"""Torso masses (kg) of the torso-mass hoppers: 15 kg against 3, 8 or 14 kg."""

HOPPER_HEALTHY_Z = 0.7
"""Hopper-v5's lower healthy torso height (m) for the unscaled hopper."""


def cache_dir() -> Path:
    """Where generated models are written: ``$MTPOLICY_CACHE/mjcf`` (default ``~/.cache/mtpolicy/mjcf``)."""
    return Path(os.environ.get("MTPOLICY_CACHE", Path.home() / ".cache" / "mtpolicy")) / "mjcf"


def gym_model_spec(filename: str) -> mujoco.MjSpec:
    """gymnasium's model ``filename`` as an MjSpec whose masses come from per-geom densities.

    ``settotalmass`` is folded into the geom densities (see the module
    docstring): it is dropped by ``MjSpec.to_xml`` and would otherwise
    re-normalize an edited model's total mass.
    """
    spec = mujoco.MjSpec.from_file(str(GYM_ASSETS / filename))
    total = spec.compiler.settotalmass
    if total > 0:
        spec.compiler.settotalmass = -1
        factor = total / spec.compile().body_mass.sum()
        for geom in spec.geoms:
            geom.density = geom.density * factor
    return spec


def scale_body(spec: mujoco.MjSpec, body: str, scale: float, resize: tuple[str, ...] | None = None) -> None:
    """Scale one body part by ``scale`` about its own frame (the joint it hangs from).

    The geoms named in ``resize`` (default: all of the body's geoms) change
    size (``size``, or the ``fromto`` segment and radius); every geom, joint
    and site of the body and the attachment point of every child body moves
    to ``scale`` times its position, so the children stay attached at the
    part's end. Geoms not in ``resize`` keep their size (the half-cheetah's
    head rides on the torso's front end).
    """
    b = spec.body(body)
    for geom in b.geoms:
        if resize is None or geom.name in resize:
            if np.isnan(geom.fromto[0]):
                geom.size = geom.size * scale
            else:
                geom.fromto = geom.fromto * scale
                geom.size = geom.size * np.array([scale, 1.0, 1.0])
        geom.pos = geom.pos * scale
    for element in [*b.joints, *b.sites, *b.bodies]:
        element.pos = element.pos * scale


def scale_model(spec: mujoco.MjSpec, scale: float) -> None:
    """Scale the whole robot about the world origin: every body part, and the root bodies' positions.

    Slide joints' reference positions scale with them, so ``qpos0`` is the
    scaled standing pose.
    """
    for root in spec.worldbody.bodies:
        root.pos = root.pos * scale
    for body in spec.bodies[1:]:
        scale_body(spec, body.name, scale)
    for joint in spec.joints:
        if joint.type == mujoco.mjtJoint.mjJNT_SLIDE:
            joint.ref = joint.ref * scale


def capsules_to(spec: mujoco.MjSpec, geom_type: mujoco.mjtGeom) -> None:
    """Replace every capsule by ``geom_type`` with the capsule's extent: half-sizes (r, r, h + r)."""
    if geom_type == mujoco.mjtGeom.mjGEOM_CAPSULE:
        return
    for geom in spec.geoms:
        if geom.type == mujoco.mjtGeom.mjGEOM_CAPSULE:
            if not np.isnan(geom.fromto[0]):
                raise ValueError(f"geom {geom.name!r}: fromto capsules are not converted")
            radius, half_length = geom.size[:2]
            geom.type = geom_type
            geom.size = [radius, radius, half_length + radius]


def write_model(spec: mujoco.MjSpec, name: str) -> Path:
    """Compile ``spec`` (so a broken edit fails here) and write its XML to the cache, named by content hash.

    The write is atomic, so processes generating the same model at once
    (asynchronous vector envs) never read a partial file.
    """
    spec.compile()
    xml = spec.to_xml()
    path = cache_dir() / f"{name}-{hashlib.sha1(xml.encode()).hexdigest()[:12]}.xml"
    write_new_file(path, xml)
    return path


def hopper_model(shape: str = "Capsule", torso_mass: float | None = None) -> Path:
    """gymnasium's hopper with every part of ``shape`` (HOPPER_SHAPES) and, if given, the torso mass (kg)."""
    geom_type, scale = HOPPER_SHAPES[shape]
    spec = gym_model_spec("hopper.xml")
    capsules_to(spec, geom_type)
    scale_model(spec, scale)
    if torso_mass is not None:
        spec.geom("torso_geom").mass = torso_mass
    mass = "" if torso_mass is None else f"-torso{torso_mass:g}kg"
    return write_model(spec, f"hopper-{shape.lower()}{mass}")


def make_hopper(shape: str = "Capsule", torso_mass: float | None = None, **kwargs) -> HopperEnv:
    """Hopper-v5 on ``hopper_model(shape, torso_mass)``; the healthy height scales with the robot."""
    scale = HOPPER_SHAPES[shape][1]
    kwargs.setdefault("healthy_z_range", (HOPPER_HEALTHY_Z * scale, float("inf")))
    return HopperEnv(xml_file=str(hopper_model(shape, torso_mass)), **kwargs)


class BipedEnv(Walker2dEnv):
    """Walker2d-v5 rewarded for the centre-of-mass x velocity in ``direction`` (+1 forward, -1 backward).

    Observation, action, termination, healthy reward and control cost are
    Walker2d-v5's; ``reward_forward = forward_reward_weight * direction * v_com``
    with ``v_com`` the x velocity of the robot's centre of mass after the
    step (``info['com_x_velocity']``); ``info['x_velocity']`` stays the torso's.
    """

    def __init__(self, direction: float = 1.0, **kwargs):
        if direction not in (-1.0, 1.0):
            raise ValueError(f"direction must be +1 or -1, got {direction!r}")
        self.direction = float(direction)
        super().__init__(**kwargs)
        utils.EzPickle.__init__(self, direction=direction, **kwargs)

    def com_x_velocity(self) -> float:
        """x velocity of the whole robot's centre of mass in the current state."""
        mujoco.mj_forward(self.model, self.data)
        mujoco.mj_subtreeVel(self.model, self.data)
        return float(self.data.subtree_linvel[1, 0])

    def _get_rew(self, x_velocity: float, action):
        com_velocity = self.com_x_velocity()
        reward, info = super()._get_rew(self.direction * com_velocity, action)
        return reward, {**info, "com_x_velocity": com_velocity}


HOPPER_IDS = {shape: f"mtpolicy/Hopper-{shape}-v0" for shape in HOPPER_SHAPES}
"""Hopper shape -> env id."""
TORSO_MASS_IDS = {mass: f"mtpolicy/Hopper-TorsoMass{mass:g}-v0" for mass in HOPPER_TORSO_MASSES}
"""Torso mass (kg) -> env id."""
BIPED_IDS = {"forward": "mtpolicy/Biped-Forward-v0", "backward": "mtpolicy/Biped-Backward-v0"}
"""Walking direction -> env id."""


def register() -> None:
    """Register the hopper and biped env ids (module docstring table) with gymnasium."""
    for shape, env_id in HOPPER_IDS.items():
        gym.register(env_id, entry_point=make_hopper, max_episode_steps=EPISODE_STEPS, kwargs={"shape": shape})
    for mass, env_id in TORSO_MASS_IDS.items():
        gym.register(env_id, entry_point=make_hopper, max_episode_steps=EPISODE_STEPS,
                     kwargs={"torso_mass": mass})
    for direction, env_id in zip((1.0, -1.0), BIPED_IDS.values()):
        gym.register(env_id, entry_point=BipedEnv, max_episode_steps=EPISODE_STEPS,
                     kwargs={"direction": direction})
