"""RobotSpec derivation, scenes, kinematics."""

from dataclasses import replace

import mujoco
import numpy as np
import pytest

from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import sample_configurations, sample_goal_sets
from mtpolicy.robots import RobotSpecError, load_robot, shipped_robots


@pytest.mark.parametrize("name", shipped_robots())
def test_every_scene_loads_and_steps(name):
    spec = load_robot(name)
    model = spec.load_model()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    data.ctrl[:] = 0.5 * model.actuator_ctrlrange[:, 1]  # every actuator, held joints included
    mujoco.mj_step(model, data, nstep=100)
    assert np.all(np.isfinite(data.qpos))


def test_planar8_chains_match_the_paper():
    spec = load_robot("planar8")
    assert spec.n_joints == 8 and spec.n_tasks == 3
    assert spec.chain_mask.sum(axis=1).tolist() == [3, 4, 5]  # a1, a2, a3
    assert spec.shared_mask.sum() == 2  # a_s
    assert [spec.joint_names[j] for j in np.flatnonzero(spec.shared_mask)] == ["shoulder_1", "shoulder_2"]
    assert spec.base_body == "base"


def test_unknown_robot_is_a_clear_error():
    with pytest.raises(RobotSpecError, match="unknown robot 'nope'"):
        load_robot("nope")


def test_jacobian_matches_finite_differences():
    kin = Kinematics(load_robot("planar8"))
    q = np.random.default_rng(0).uniform(-1, 1, 8)
    jac = kin.jacobians(q)
    eps = 1e-6
    fd = np.stack([(kin.ee_positions(q + eps * e) - kin.ee_positions(q - eps * e)) / (2 * eps)
                   for e in np.eye(8)], axis=-1)
    np.testing.assert_allclose(jac, fd, atol=1e-6)


def test_goal_sets_are_reachable_configurations():
    spec = load_robot("planar8")
    goals = sample_goal_sets(Kinematics(spec), np.random.default_rng(1), 50)
    assert goals.shape == (50, 3, 3)
    assert np.allclose(goals[..., 2], 0.0)  # planar robot: the base-frame z of every goal is 0
    assert np.linalg.norm(goals[:, 2, :2], axis=-1).max() <= 0.5 + 1e-9  # chain 3 is 5 links of 0.1 m


def test_goal_configurations_stay_within_range_of_the_start_and_the_limits():
    spec = load_robot("planar8")
    rng = np.random.default_rng(2)
    start = sample_configurations(spec, rng, 200)
    goal = sample_configurations(spec, rng, 200, around=start, joint_range=0.5)
    assert np.abs(goal - start).max() <= 0.5 + 1e-12
    lo, hi = spec.joint_limits.T
    assert (goal >= lo).all() and (goal <= hi).all()


def test_configurations_cover_every_joint_range_of_one_turn_or_less():
    """Panda's joint6 turns from -0.02 to 3.75 rad: draws (and so the reach tasks' starts and goals) reach beyond pi,
    where the robot goes; a joint whose range exceeds one turn is drawn within [-pi, pi]."""
    spec = load_robot("panda")
    j = spec.joint_names.index("joint6")
    q = sample_configurations(spec, np.random.default_rng(3), 2000)
    assert q[:, j].max() > 3.6 and q[:, j].max() <= spec.joint_limits[j, 1] - 0.05
    np.testing.assert_array_equal(spec.search_limits, spec.joint_limits)
    unlimited = np.array([[-np.inf, np.inf], [-4.0, 4.0], [-1.0, 3.5]])
    wide = replace(spec, joint_names=spec.joint_names[:3], joint_limits=unlimited)
    np.testing.assert_array_equal(wide.search_limits, [[-np.pi, np.pi], [-np.pi, np.pi], [-1.0, 3.5]])
