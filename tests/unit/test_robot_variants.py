"""Morphology variants of the shipped robots: generated folders, scaled lengths and masses, the base's contract."""

import mujoco
import numpy as np
import pytest

from mtpolicy.kinematics import Kinematics
from mtpolicy.robots import find_robot, load_robot, shipped_robots
from mtpolicy.robots.variants import VARIANTS, Variant, main, variants_of


def test_the_shipped_variant_folders_are_what_the_generator_writes(capsys):
    main(["--check"])  # exits 1 naming a stale file
    assert "checked" in capsys.readouterr().out


def test_every_variant_is_a_shipped_robot_with_its_bases_joints_end_effectors_and_tolerance():
    assert variants_of("planar8") == ("planar8_long", "planar8_short", "planar8_long_base")
    assert len(variants_of("humanoid")) == 3
    for variant in VARIANTS:
        assert variant.name in shipped_robots()
        spec, base = load_robot(variant.name), load_robot(variant.base)
        assert spec.name == variant.name and spec.robot_file == f"mtpolicy/robots/{variant.name}/robot.xml"
        assert (spec.joint_names, spec.end_effectors, spec.held_joints) == (base.joint_names, base.end_effectors,
                                                                           base.held_joints)
        np.testing.assert_array_equal(spec.velocity_limits, base.velocity_limits)
        np.testing.assert_array_equal(spec.joint_limits, base.joint_limits)
        assert find_robot(variant.name).reach_tolerance == find_robot(variant.base).reach_tolerance
        assert find_robot(variant.name).default_model is None


def home_ee(name: str) -> np.ndarray:
    spec = load_robot(name)
    return Kinematics(spec).ee_positions(np.zeros(spec.n_joints))


def test_lengths_and_masses_are_scaled_where_the_variant_says():
    # atol: MuJoCo writes the branches' rotations with 6 digits (0.3 um at the end effectors)
    np.testing.assert_allclose(home_ee("planar8_long"), 1.25 * home_ee("planar8"), atol=1e-6)
    np.testing.assert_allclose(home_ee("planar8_short"), 0.8 * home_ee("planar8"), atol=1e-6)
    long_base, planar8 = load_robot("planar8_long_base").load_model(), load_robot("planar8").load_model()
    links = [planar8.body(b).id for b in ("link_1", "link_2")]

    def capsule(length: float, r: float = 0.012) -> float:
        return np.pi * r ** 2 * length + 4 / 3 * np.pi * r ** 3
    np.testing.assert_allclose(long_base.body_mass[links], 1.25 * capsule(0.125) / capsule(0.1)
                               * planar8.body_mass[links], rtol=1e-6)  # 25 % longer and 25 % denser
    others = [b for b in range(planar8.nbody) if b not in links]
    np.testing.assert_allclose(long_base.body_mass[others], planar8.body_mass[others], rtol=1e-9)
    # only the two base links longer: every end effector moves out by 2 x 0.025 m along the base links (x at home)
    np.testing.assert_allclose(home_ee("planar8_long_base") - home_ee("planar8"), [[0.05, 0, 0]] * 3, atol=1e-6)
    long_arms, humanoid = home_ee("humanoid_long_arms"), home_ee("humanoid")
    shoulder_z = 0.14 + 0.16 + 0.08  # chest, abdomen offsets above the pelvis (base frame)
    np.testing.assert_allclose(long_arms[:, 2] - shoulder_z, 1.2 * (humanoid[:, 2] - shoulder_z), atol=1e-6)
    heavy, base = load_robot("humanoid_heavy_arms").load_model(), load_robot("humanoid").load_model()
    arm = [mujoco.mj_name2id(base, mujoco.mjtObj.mjOBJ_BODY, b) for b in ("left_forearm", "right_upper_arm")]
    np.testing.assert_allclose(heavy.body_mass[arm], 1.25 * base.body_mass[arm], rtol=1e-9)
    assert heavy.body_mass[mujoco.mj_name2id(base, mujoco.mjtObj.mjOBJ_BODY, "head")] == pytest.approx(
        base.body_mass[mujoco.mj_name2id(base, mujoco.mjtObj.mjOBJ_BODY, "head")])


def test_a_change_beyond_25_percent_is_refused():
    with pytest.raises(ValueError, match="length 1.3 is not within 1 \\+- 0.25"):
        Variant("planar8_huge", "planar8", length=1.3)
