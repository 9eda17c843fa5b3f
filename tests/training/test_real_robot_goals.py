"""Goals and states that make sense on a real robot (issue 52, item 4): free of self-collision, local ranges in the
joint's own units, an anchor's failure a miss, saved configs that work from any directory."""

from __future__ import annotations

import json
from dataclasses import asdict

import mujoco
import numpy as np
import pytest

from helpers import REPO
from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import GOAL_SLIDE_RANGE
from mtpolicy.robots import load_robot
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import evaluate_reach, mink_controller


def _penetrating(kin: Kinematics, q: np.ndarray) -> np.ndarray:
    """Per row of q: two of the robot's geoms interpenetrate (MuJoCo's collision detection, nothing of ours)."""
    model, data = kin.model, mujoco.MjData(kin.model)
    kin.spec.reset_to_home(model, data)
    out = []
    for qi in np.atleast_2d(q):
        data.qpos[kin.qpos_adr] = qi
        mujoco.mj_kinematics(model, data)
        mujoco.mj_collision(model, data)
        out.append(any(c.dist < 0 and model.geom_bodyid[c.geom1] > 0 and model.geom_bodyid[c.geom2] > 0
                       for c in data.contact[:data.ncon]))
    return np.array(out)


def test_start_and_goal_configurations_are_free_of_self_collision():
    env = ReachVectorEnv(64, ReachConfig(robot="panda"))  # about 1 in 8 uniform configurations collide
    env.reset(seed=3)
    q0 = env.joint_positions()
    assert not _penetrating(env.kin, q0).any()
    for distribution in ("local", "workspace"):
        env.config = ReachConfig(robot="panda", goal_distribution=distribution)
        goals = env._goal_configurations(np.random.default_rng(4), q0)
        assert not _penetrating(env.kin, goals).any(), distribution
        assert np.abs(goals - q0).max() > 0.5  # still goals, not the starts


def test_a_prismatic_joints_local_range_is_in_metres():
    config = ReachConfig(robot="tiago")
    env = ReachVectorEnv(200, config)
    env.reset(seed=5)
    q0 = env.joint_positions()
    goals = env._goal_configurations(np.random.default_rng(6), q0)
    torso = env.spec.joint_names.index("torso_lift_joint")
    assert env.spec.slide_mask.tolist().count(True) == 1 and env.spec.slide_mask[torso]
    moved = np.abs(goals - q0)
    assert moved[:, torso].max() <= GOAL_SLIDE_RANGE + 1e-12  # not "1 rad" as 1 m: the whole 0.35 m stroke
    assert moved[:, torso].max() > 0.5 * GOAL_SLIDE_RANGE
    assert np.delete(moved, torso, axis=1).max() > 0.9  # the arms' hinges keep their 1 rad


def test_an_anchor_failing_on_one_goal_set_is_that_sets_miss_not_a_crash(monkeypatch):
    import mink

    config = ReachConfig(robot="planar8")
    n, calls = 4, {"k": 0}
    solve = mink.solve_ik

    def failing(*args, **kwargs):
        k = calls["k"] = calls["k"] + 1
        if k == 3 * n + 2:  # goal set 1, control step 3
            raise mink.exceptions.NoSolutionFound("daqp")
        return solve(*args, **kwargs)

    monkeypatch.setattr(mink, "solve_ik", failing)
    out = evaluate_reach(mink_controller(config), config, n_goal_sets=n, seed=1, per_set=True)
    assert out["controller_failure_rate"] == 0.25
    assert not out["per_set"]["held"][1]
    assert out["success_rate"] <= 0.75


def test_a_saved_config_with_a_relative_robot_path_works_from_another_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    config = ReachConfig(robot="tests/fixtures/robots/arm3")
    assert config.robot == str(REPO / "tests" / "fixtures" / "robots" / "arm3")
    saved = json.dumps(asdict(config))  # what a run's config.json and a policy's contract hold
    monkeypatch.chdir(tmp_path)
    again = ReachConfig(**json.loads(saved))
    assert ReachVectorEnv(1, again).spec.name == "arm3"
    assert ReachConfig(robot="planar8").robot == "planar8"  # a shipped robot stays a name


@pytest.mark.parametrize("robot", ["planar8", "humanoid"])
def test_robots_without_self_collision_keep_their_goal_sets(robot):
    """The shipped figures of planar8 and the humanoid stand: no configuration of theirs collides, so the
    collision-free sampler draws exactly what the plain one did."""
    from mtpolicy.reach_task import sample_configurations, sample_free_configurations

    kin = Kinematics(load_robot(robot))
    plain = sample_configurations(kin.spec, np.random.default_rng(7), 50)
    free = sample_free_configurations(kin, np.random.default_rng(7), 50)
    np.testing.assert_array_equal(plain, free)
