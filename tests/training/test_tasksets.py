"""Task sets: generated models (scaled parts, shapes, masses), env ids, the shared interface, Meta-World MT10."""

import os

import gymnasium as gym
import metaworld
import mujoco
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import mtpolicy_training.envs  # noqa: F401  (registers the env ids)
from mtpolicy_training.envs import halfcheetah, locomotion
from mtpolicy_training.envs.registry import TASK_SETS, make_task_set
from mtpolicy_training.envs.render import RenderConfig, render_task_sets
from mtpolicy_training.envs.taskset import append_task_one_hot, next_observations

GYM_CHEETAH = mujoco.MjModel.from_xml_path(str(locomotion.GYM_ASSETS / "half_cheetah.xml"))
GYM_HOPPER = mujoco.MjModel.from_xml_path(str(locomotion.GYM_ASSETS / "hopper.xml"))
LOCAL_SETS = [name for name in TASK_SETS if not name.startswith("mt")]
FAMILY_IDS = ([halfcheetah.env_id(v) for v in halfcheetah.VARIANTS] + list(locomotion.HOPPER_IDS.values())
              + list(locomotion.TORSO_MASS_IDS.values()) + list(locomotion.BIPED_IDS.values()))


@pytest.fixture(autouse=True, scope="module")
def private_model_cache(tmp_path_factory):
    """Generate every model from scratch into a private cache, not the user's."""
    old = os.environ.get("MTPOLICY_CACHE")
    os.environ["MTPOLICY_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        del os.environ["MTPOLICY_CACHE"]
    else:
        os.environ["MTPOLICY_CACHE"] = old


def load(path) -> mujoco.MjModel:
    """A generated model, after checking it steps without blowing up."""
    model = mujoco.MjModel.from_xml_path(str(path))
    data = mujoco.MjData(model)
    data.ctrl[:] = 0.5
    mujoco.mj_step(model, data, nstep=200)
    assert np.isfinite(data.qpos).all() and np.isfinite(data.qacc).all()
    return model


def test_unedited_models_keep_gymnasium_masses_and_inertias():
    # settotalmass (14 kg) folded into the densities: nothing changes until a part is edited
    # (to the precision of the written XML's numbers).
    for gym_model, spec in ((GYM_CHEETAH, locomotion.gym_model_spec("half_cheetah.xml")),
                            (GYM_HOPPER, locomotion.gym_model_spec("hopper.xml"))):
        model = load(locomotion.write_model(spec, "unedited"))
        np.testing.assert_allclose(model.body_mass, gym_model.body_mass, rtol=1e-6)
        np.testing.assert_allclose(model.body_inertia, gym_model.body_inertia, rtol=1e-6)
        np.testing.assert_allclose(model.geom_size, gym_model.geom_size, rtol=1e-12)


@pytest.mark.parametrize("variant", halfcheetah.VARIANTS)
def test_half_cheetah_variant_scales_its_part_only(variant):
    part, scale = halfcheetah.split_variant(variant)
    model = load(halfcheetah.half_cheetah_model(part, scale))
    scaled = halfcheetah.PARTS[part]
    for body in range(1, model.nbody):
        name = model.body(body).name
        geom = model.geom(name).id  # each body's main geom has its name
        size_ratio = model.geom_size[geom, :2] / GYM_CHEETAH.geom_size[geom, :2]
        mass_ratio = model.body_mass[body] / GYM_CHEETAH.body_mass[body]
        if name in scaled:
            np.testing.assert_allclose(size_ratio, scale, rtol=1e-9)  # radius and half-length
            for child in np.flatnonzero(model.body_parentid == body):  # attachment points move with the part
                np.testing.assert_allclose(model.body_pos[child], scale * GYM_CHEETAH.body_pos[child], atol=1e-12)
            if name == "torso":  # the head keeps its size: mass between unscaled and scale^3
                assert min(1, scale**3) < mass_ratio < max(1, scale**3)
            else:
                assert mass_ratio == pytest.approx(scale**3, rel=1e-6)
        else:
            np.testing.assert_allclose(size_ratio, 1.0, rtol=1e-12)
            assert mass_ratio == pytest.approx(1.0, rel=1e-6)
    assert model.geom("head").size[1] == GYM_CHEETAH.geom("head").size[1]


@pytest.mark.parametrize("shape", locomotion.HOPPER_SHAPES)
def test_hopper_shapes_keep_the_capsule_extent_at_their_height(shape):
    geom_type, scale = locomotion.HOPPER_SHAPES[shape]
    model = load(locomotion.hopper_model(shape))
    body_geoms = np.flatnonzero(model.geom_bodyid > 0)
    assert (model.geom_type[body_geoms] == geom_type).all()
    r, h = GYM_HOPPER.geom_size[body_geoms, 0], GYM_HOPPER.geom_size[body_geoms, 1]
    expected = np.stack([r, h, np.zeros_like(r)], 1) if shape == "Capsule" else np.stack([r, r, h + r], 1)
    np.testing.assert_allclose(model.geom_size[body_geoms], scale * expected, rtol=1e-9)
    np.testing.assert_allclose(model.body_pos[1:], scale * GYM_HOPPER.body_pos[1:], atol=1e-12)
    assert model.qpos0[1] == pytest.approx(1.25 * scale)  # rootz: standing height scales
    env = gym.make(locomotion.HOPPER_IDS[shape]).unwrapped
    assert env._healthy_z_range[0] == pytest.approx(0.7 * scale)
    total = model.body_mass.sum() / GYM_HOPPER.body_mass.sum()
    assert {"Capsule": 1.0, "Box": 0.70, "Ellipsoid": 1.23}[shape] == pytest.approx(total, abs=0.01)


@pytest.mark.parametrize("mass", locomotion.HOPPER_TORSO_MASSES)
def test_torso_mass_hoppers_change_the_torso_only(mass):
    model = load(locomotion.hopper_model(torso_mass=mass))
    assert model.body_mass[1] == pytest.approx(mass)
    np.testing.assert_allclose(model.body_mass[2:], GYM_HOPPER.body_mass[2:], rtol=1e-6)
    np.testing.assert_allclose(model.body_inertia[1], GYM_HOPPER.body_inertia[1] * mass / GYM_HOPPER.body_mass[1],
                               rtol=1e-9)  # same capsule, inertia scales with its mass


@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_registered_ids_pass_check_env(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.spec.max_episode_steps == 1000


def test_biped_backward_task_rewards_backward_motion():
    rewards = {}
    for direction, env_id in locomotion.BIPED_IDS.items():
        env = gym.make(env_id).unwrapped
        env.reset(seed=0)
        qvel = np.zeros(env.model.nv)
        qvel[0] = -1.0  # the whole walker slides backward at 1 m/s
        env.set_state(env.init_qpos, qvel)
        com_before = env.data.subtree_com[1, 0]
        _, _, _, _, info = env.step(np.zeros(6))
        com_after = env.data.subtree_com[1, 0]
        # The reward's velocity is the centre of mass's: it matches the COM's displacement over the step.
        assert info["com_x_velocity"] == pytest.approx((com_after - com_before) / env.dt, abs=0.05)
        assert info["com_x_velocity"] < -0.8
        rewards[direction] = info["reward_forward"]
    assert rewards["backward"] > 0.8 and rewards["forward"] == pytest.approx(-rewards["backward"])
    with pytest.raises(ValueError, match="direction"):
        locomotion.BipedEnv(direction=0.5)


@pytest.mark.parametrize("name", LOCAL_SETS)
def test_task_sets_share_spaces_and_make_their_envs(name):
    task_set = make_task_set(name)
    env = task_set.make_multitask_env(envs_per_task=2, seed=3)
    if task_set.simultaneous:  # planar8: every env holds all tasks; per-task rewards in info
        assert env.num_envs == 2
        info = env.step(env.action_space.sample())[4]
        assert info[task_set.task_reward_key].shape == (2, task_set.n_tasks)
        with pytest.raises(ValueError, match="task_index=None"):
            task_set.make_env(0)
        return
    assert env.num_envs == 2 * task_set.n_tasks
    np.testing.assert_array_equal(task_set.task_indices(2), np.repeat(np.arange(task_set.n_tasks), 2))
    spaces = [task_set.make_env(t, 1, seed=0) for t in range(task_set.n_tasks)]
    for single in spaces:
        assert single.single_observation_space == env.single_observation_space
        assert single.single_action_space == env.single_action_space
    with pytest.raises(ValueError, match="task_index"):
        task_set.make_env(task_set.n_tasks)


def test_same_seed_same_episodes_and_true_next_observations_at_episode_ends():
    task_set = make_task_set("hoppers3")

    def rollout(seed):
        env = task_set.make_multitask_env(1, seed=seed)
        obs, _ = env.reset()
        trajectory, ends = [obs], []
        for _ in range(300):
            next_obs, _, terminated, truncated, info = env.step(np.ones((3, 3)))
            true_next = next_observations(next_obs, info)
            done = terminated | truncated
            if done.any():  # the next episode's first obs is returned; the last one is in final_obs
                ends.append((done, next_obs, true_next))
            trajectory.append(next_obs)
        return np.stack(trajectory), ends

    a, ends = rollout(5)
    np.testing.assert_array_equal(a, rollout(5)[0])
    assert not np.array_equal(a, rollout(6)[0])
    assert ends, "full-torque hoppers fall within 300 steps"
    done, next_obs, true_next = ends[0]
    assert not np.array_equal(true_next[done], next_obs[done])
    np.testing.assert_array_equal(true_next[~done], next_obs[~done])


def test_evaluate_reports_mean_and_per_task_returns_reproducibly():
    task_set = make_task_set("hopper-mass-3")
    seen = []

    def policy(obs, tasks):
        seen.append(tasks)
        return np.where(tasks[:, None] == 0, 0.3, -0.3) * np.ones((len(obs), 3))

    metrics = task_set.evaluate(policy, episodes=2, seed=1)
    assert set(metrics) == {"eval/mean_return", "eval/return_torso15kg", "eval/return_std_torso15kg",
                            "eval/return_torso3kg", "eval/return_std_torso3kg"}
    np.testing.assert_array_equal(seen[0], [0, 0, 1, 1])
    assert metrics["eval/mean_return"] == pytest.approx(
        (metrics["eval/return_torso15kg"] + metrics["eval/return_torso3kg"]) / 2)
    assert metrics == task_set.evaluate(policy, episodes=2, seed=1)
    planar = make_task_set("planar8").evaluate(lambda obs, tasks: np.zeros((len(obs), 8)), episodes=4, seed=1)
    assert {"eval/success_rate", "eval/score_ee_1", "eval/score_ee_3"} <= set(planar)


def test_append_task_one_hot_numpy_and_torch():
    obs = np.arange(6, dtype=np.float32).reshape(3, 2)
    out = append_task_one_hot(obs, np.array([2, 0, 1]), 3)
    np.testing.assert_array_equal(out, [[0, 1, 0, 0, 1], [2, 3, 1, 0, 0], [4, 5, 0, 1, 0]])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(append_task_one_hot(torch.from_numpy(obs), torch.tensor([2, 0, 1]), 3).numpy(), out)


def test_unknown_names_fail_naming_them():
    with pytest.raises(ValueError, match="unknown task set 'nope'.*halfcheetah8"):
        make_task_set("nope")
    with pytest.raises(ValueError, match="MediumFoot"):
        halfcheetah.split_variant("MediumFoot")


def test_render_writes_one_strip_per_task_set(tmp_path):
    (path,) = render_task_sets(RenderConfig(names=("hoppers3",), out_dir=tmp_path, width=96, height=72))
    image = __import__("matplotlib.pyplot").pyplot.imread(path)
    assert image.shape[0] > 72 and image[..., :3].std() > 0.05  # frames were drawn, not a blank canvas


def test_mt10_has_ten_tasks_in_order_random_goals_and_metaworld_evaluation():
    task_set = make_task_set("mt10")
    assert task_set.max_episode_steps == 500 and len(task_set.task_names) == 10
    env = task_set.make_multitask_env(seed=3)
    assert env.num_envs == 10
    # Sub-env i runs task i: the task names come from the env's own classes.
    names = {cls.__name__: name for name, cls in metaworld.env_dict.ALL_V3_ENVIRONMENTS.items()}
    assert [names[n] for n in env.get_attr("task_name")] == list(task_set.task_names)
    goals, _ = env.reset()
    one_hot = append_task_one_hot(goals, task_set.task_indices(), 10)
    assert one_hot.shape == (10, 49)
    np.testing.assert_array_equal(one_hot[:, -10:], np.eye(10))
    again, _ = env.reset()
    assert (goals[:, -3:] != again[:, -3:]).any(axis=1).sum() >= 8  # a new goal (of 50 per task) each reset
    rng = np.random.default_rng(1)
    metrics = task_set.evaluate(lambda o, t: rng.uniform(-1, 1, (len(o), 4)), episodes=1, envs=env)
    assert set(metrics) == {"eval/mean_success", "eval/mean_return"} | {
        f"eval/{k}_{n}" for k in ("success", "return") for n in task_set.task_names}
    assert all(metrics[f"eval/success_{n}"] in (0.0, 1.0) for n in task_set.task_names)
    assert metrics["eval/mean_return"] > 0
    assert not any(env.get_attr("terminate_on_success"))  # evaluation restores training mode


def test_metaworld_seeding_is_reproducible_and_our_one_hot_is_metaworlds():
    task_set = make_task_set("mt10")
    first, second = task_set.make_env(2, num_envs=2, seed=7), task_set.make_env(2, num_envs=2, seed=7)
    assert first.get_attr("task_name") == ("SawyerPickPlaceEnvV3",) * 2
    # Meta-World's own one-hot env of task 2, seeded like our first copy.
    reference = metaworld.make_mt_envs("pick-place-v3", seed=7, num_tasks=10, use_one_hot=True, env_id=2)
    obs, ref = first.reset()[0], reference.reset()[0]
    np.testing.assert_array_equal(obs, second.reset()[0])
    np.testing.assert_array_equal(append_task_one_hot(obs[:1], np.array([2]), 10)[0], ref)
    assert not np.array_equal(obs[0, -3:], obs[1, -3:])  # copies are seeded seed + i: other goals
    for action in np.random.default_rng(0).uniform(-1, 1, (5, 2, 4)).astype(np.float32):
        obs, reward, *_ = first.step(action)
        np.testing.assert_array_equal(obs, second.step(action)[0])
        ref, ref_reward, *_ = reference.step(action[0])
        np.testing.assert_array_equal(append_task_one_hot(obs[:1], np.array([2]), 10)[0], ref)
        assert reward[0] == ref_reward
