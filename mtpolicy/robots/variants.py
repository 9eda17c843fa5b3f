"""Morphology variants of a shipped robot, each a robot folder of its own (the tasks of PPO + specialization and A2C).

The joint-training paper's tasks are hoppers of other shapes and masses, the
A2C paper's HalfCheetahs with parts 25 % longer or shorter; here a variant is
a shipped robot with some links' lengths and masses scaled (``VARIANTS``).
Each is written as a folder of ``mtpolicy/robots`` (``robot.xml``,
``scene.xml``, ``robot.yaml``), so it is found by name, trained, exported and
served like any robot:

    python -m mtpolicy.robots.variants            # (re)write every folder of VARIANTS
    python -m mtpolicy.robots.variants --check    # exit 1 naming each file that differs from what it would write

A variant scales, for each of its ``bodies`` (every body of the robot when
empty), the lengths that body defines by ``length`` -- its geoms' ``fromto``
ends (or position, and a capsule's or cylinder's half-length), its sites'
positions and its child bodies' offsets -- and its geoms' masses (``mass``
or ``density``) by ``mass``. Joints, actuators, limits, keyframes and the
manifest (end effectors, reach tolerance, home) are the base's; a variant
names no default model and no gymnasium env id.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
import yaml

from mtpolicy.robots.manifest import MANIFEST, ROBOTS_DIR, RobotSpecError, find_robot

REPO = ROBOTS_DIR.parent.parent
"""The repository root (robot folders under mtpolicy/robots)."""
MAX_SCALE_CHANGE = 0.25
"""Largest relative change of a length or mass (the A2C paper's +-25 %)."""


@dataclass(frozen=True)
class Variant:
    """A shipped robot with some bodies' lengths and masses scaled."""

    name: str
    """Folder (= robot) name, ``<base>_<what changed>``."""
    base: str
    """The shipped robot it derives from."""
    length: float = 1.0
    """Factor on the lengths ``bodies`` define."""
    mass: float = 1.0
    """Factor on the masses of ``bodies``' geoms."""
    bodies: tuple[str, ...] = ()
    """Bodies scaled (empty: every body)."""
    about: str = ""
    """One line on what it is, the MJCF's header comment."""

    def __post_init__(self):
        for key in ("length", "mass"):
            if not abs(getattr(self, key) - 1.0) <= MAX_SCALE_CHANGE:
                raise ValueError(f"variant {self.name}: {key} {getattr(self, key)} is not within 1 +- "
                                 f"{MAX_SCALE_CHANGE}")


ARMS = ("left_upper_arm", "left_forearm", "right_upper_arm", "right_forearm")
VARIANTS: tuple[Variant, ...] = (
    Variant("planar8_long", "planar8", length=1.25, about="every link 25 % longer"),
    Variant("planar8_short", "planar8", length=0.8, about="every link 20 % shorter"),
    Variant("planar8_long_base", "planar8", length=1.25, mass=1.25, bodies=("link_1", "link_2"),
            about="the two shared base links 25 % longer and heavier"),
    Variant("humanoid_long_arms", "humanoid", length=1.2, bodies=ARMS, about="upper arms, forearms, hands 20 % longer"),
    Variant("humanoid_short_arms", "humanoid", length=0.8, bodies=ARMS,
            about="upper arms, forearms, hands 20 % shorter"),
    Variant("humanoid_heavy_arms", "humanoid", mass=1.25, bodies=ARMS, about="arms and hands 25 % heavier"),
)
"""The shipped variants: three of planar8 and three of humanoid (as the joint-training paper's three hoppers)."""


def variants_of(base: str) -> tuple[str, ...]:
    """Names of the shipped variants of robot ``base``, in ``VARIANTS`` order."""
    return tuple(v.name for v in VARIANTS if v.base == base)


def variant_mjcf(variant: Variant) -> str:
    """The variant's robot.xml text: the base's MJCF with ``variant``'s scaling, compiled and written by MuJoCo."""
    spec = mujoco.MjSpec.from_file(str(find_robot(variant.base).mjcf_path))
    bodies = [spec.body(b) for b in variant.bodies] if variant.bodies else list(spec.bodies)[1:]
    if None in bodies:
        missing = [b for b, body in zip(variant.bodies, bodies) if body is None]
        raise RobotSpecError(f"variant {variant.name}: {variant.base} has no body {missing}")
    for body in bodies:
        if body.explicitinertial:
            raise RobotSpecError(f"variant {variant.name}: body {body.name!r} has an explicit inertial (only geom "
                                 "masses are scaled)")
        for geom in body.geoms:
            if np.isfinite(geom.fromto).all():
                geom.fromto = geom.fromto * variant.length
            else:
                geom.pos = geom.pos * variant.length
                if geom.type in (mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_CYLINDER):
                    geom.size = geom.size * np.array([1.0, variant.length, 1.0])
            if np.isfinite(geom.mass):
                geom.mass = geom.mass * variant.mass
            else:
                geom.density = geom.density * variant.mass
        for site in body.sites:
            site.pos = site.pos * variant.length
        for child in body.bodies:
            child.pos = child.pos * variant.length
    spec.modelname = variant.name
    spec.compile()
    header = (f"<!--\n  {variant.name}: {variant.base} with {variant.about} (length x{variant.length:g}, mass "
              f"x{variant.mass:g}).\n  Written by `python -m mtpolicy.robots.variants` (mtpolicy/robots/variants.py);"
              " edit VARIANTS there, not this file.\n-->\n")
    return header + spec.to_xml()


def variant_manifest(variant: Variant) -> str:
    """The variant's robot.yaml text: the base's fields without ``default_model`` and ``env_id``."""
    base = find_robot(variant.base)
    fields = {k: v for k, v in yaml.safe_load((base.folder / MANIFEST).read_text()).items()
              if k not in ("default_model", "env_id")}
    return (f"# {variant.name}: {variant.base} with {variant.about}; a morphology variant (a task of train ppo / a2c "
            f"--robot {variant.base}).\n# Written by `python -m mtpolicy.robots.variants`: edit VARIANTS in "
            "mtpolicy/robots/variants.py, not this file. Fields: mtpolicy/robots/manifest.py.\n"
            + yaml.safe_dump(fields, sort_keys=False))


def variant_files(variant: Variant) -> dict[str, str]:
    """Path (from the repository root) -> text of the variant's robot folder (the scene is the base's, which
    includes robot.xml)."""
    base = find_robot(variant.base)
    folder = f"mtpolicy/robots/{variant.name}"
    scene = {f"{folder}/{base.scene}": base.scene_path.read_text()} if base.scene else {}
    return {f"{folder}/robot.xml": variant_mjcf(variant), f"{folder}/{MANIFEST}": variant_manifest(variant), **scene}


def main(argv: list[str] | None = None) -> None:
    """Write (or with --check compare) the files of every variant in ``VARIANTS`` under ``--root``."""
    parser = argparse.ArgumentParser(prog="python -m mtpolicy.robots.variants", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=REPO, help="repository root the files go under")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    args = parser.parse_args(argv)
    stale = []
    for variant in VARIANTS:
        for name, text in variant_files(variant).items():
            path = args.root / name
            if args.check:
                if not path.is_file() or path.read_text() != text:
                    stale.append(str(path))
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        sys.exit(f"stale variant files (run python -m mtpolicy.robots.variants): {', '.join(stale)}")
    print(f"{'checked' if args.check else 'wrote'} {', '.join(v.name for v in VARIANTS)} under {args.root}")


if __name__ == "__main__":
    main()
