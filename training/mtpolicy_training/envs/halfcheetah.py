"""HalfCheetah morphology variants: one body part scaled by 0.75 (Small) or 1.25 (Big).

The variants of Henderson et al.'s gym-extensions used by the A2C
multi-task paper (six) and PiCor's HalfCheetah task group (all eight),
rebuilt from the installed gymnasium's ``half_cheetah.xml`` (see
``locomotion`` for how models are edited and cached) and run by gymnasium's
``HalfCheetahEnv`` (v5: reward, observation, 1000-step episodes unchanged).

| id                                   | scaled geoms              | scale |
|--------------------------------------|---------------------------|-------|
| mtpolicy/HalfCheetah-SmallFoot-v0    | ffoot, bfoot              | 0.75  |
| mtpolicy/HalfCheetah-BigFoot-v0      | ffoot, bfoot              | 1.25  |
| mtpolicy/HalfCheetah-SmallLeg-v0     | fshin, bshin              | 0.75  |
| mtpolicy/HalfCheetah-BigLeg-v0       | fshin, bshin              | 1.25  |
| mtpolicy/HalfCheetah-SmallThigh-v0   | fthigh, bthigh            | 0.75  |
| mtpolicy/HalfCheetah-BigThigh-v0     | fthigh, bthigh            | 1.25  |
| mtpolicy/HalfCheetah-SmallTorso-v0   | torso                     | 0.75  |
| mtpolicy/HalfCheetah-BigTorso-v0     | torso                     | 1.25  |

Choices (gym-extensions multiplies only the geoms' ``size`` and keeps the
total mass at 14 kg; here mass and geometry stay consistent):

* Front and back parts both scale (as in gym-extensions).
* A limb part scales uniformly about its joint: capsule radius and length,
  the geom's offset, and the attachment point of the next part, so the leg
  stays connected and its length changes by the scale.
* The torso is the torso geom: its length (``fromto``) and radius scale,
  and the thighs' attachment points and the head's position move with its
  ends; the head keeps its size.
* Mass follows volume at gymnasium's density (``settotalmass`` folded into
  the density): a scaled part's mass changes by scale^3 (0.42 or 1.95); all
  other parts keep gymnasium's masses exactly, so the total is no longer 14 kg.
* The torso starts at gymnasium's height (0.7 m); Big legs or thighs may
  touch the ground at reset and settle in the first steps.
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from mtpolicy_training.envs.locomotion import EPISODE_STEPS, gym_model_spec, scale_body, write_model

PARTS = {"Foot": ("ffoot", "bfoot"), "Leg": ("fshin", "bshin"), "Thigh": ("fthigh", "bthigh"), "Torso": ("torso",)}
"""Part name -> the bodies scaled (each body's geom has the body's name)."""

SIZES = {"Small": 0.75, "Big": 1.25}
"""Size prefix -> scale factor."""

VARIANTS = tuple(f"{size}{part}" for part in PARTS for size in SIZES)
"""All eight variant names, e.g. 'SmallFoot'."""

A2C_VARIANTS = ("SmallFoot", "BigFoot", "SmallLeg", "SmallThigh", "SmallTorso", "BigTorso")
"""The six variants of the A2C multi-task paper (its Table 2, in that order)."""

PICOR_VARIANTS = A2C_VARIANTS + ("BigLeg", "BigThigh")
"""PiCor's HalfCheetah task group: all eight Small/Big Foot/Leg/Thigh/Torso variants."""

FINETUNE_VARIANTS = ("SmallFoot", "SmallLeg")
"""E1 and E2 of the A2C paper's Table 1 (fine-tuning one on the other)."""


def split_variant(variant: str) -> tuple[str, float]:
    """'BigThigh' -> ('Thigh', 1.25)."""
    for size, scale in SIZES.items():
        if variant.startswith(size) and variant[len(size):] in PARTS:
            return variant[len(size):], scale
    raise ValueError(f"unknown half-cheetah variant {variant!r}; known: {', '.join(VARIANTS)}")


def half_cheetah_model(part: str, scale: float):
    """Path of gymnasium's half-cheetah with ``part`` (PARTS) scaled by ``scale`` (generated once, cached)."""
    spec = gym_model_spec("half_cheetah.xml")
    for body in PARTS[part]:
        scale_body(spec, body, scale, resize=(body,))
    return write_model(spec, f"half_cheetah-{part.lower()}-x{scale:g}")


def make_half_cheetah(variant: str, **kwargs) -> HalfCheetahEnv:
    """gymnasium's HalfCheetahEnv (v5) on the model of ``variant`` (e.g. 'SmallFoot')."""
    return HalfCheetahEnv(xml_file=str(half_cheetah_model(*split_variant(variant))), **kwargs)


def env_id(variant: str) -> str:
    """'SmallFoot' -> 'mtpolicy/HalfCheetah-SmallFoot-v0'."""
    return f"mtpolicy/HalfCheetah-{variant}-v0"


def register() -> None:
    """Register the eight variant ids with gymnasium (1000-step episodes, as HalfCheetah-v5)."""
    for variant in VARIANTS:
        gym.register(env_id(variant), entry_point=f"{__name__}:make_half_cheetah", max_episode_steps=EPISODE_STEPS,
                     kwargs={"variant": variant})
