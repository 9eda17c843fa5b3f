"""The reach env: gymnasium API, determinism, info consistent with the physics, rewards."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mtpolicy_training.envs  # noqa: F401  (registers the env ids)
from mtpolicy_training.envs.reach import LateTicks, ReachConfig, ReachVectorEnv


def test_check_env_passes():
    env = gym.make("mtpolicy/Planar8Reach-v0")
    with pytest.warns(UserWarning):  # unbounded Box warnings only
        check_env(env.unwrapped, skip_render_check=True)
    assert env.spec.max_episode_steps == ReachConfig().max_episode_steps


def test_same_seed_same_rollout():
    def rollout(seed):
        env = ReachVectorEnv(4)
        obs, _ = env.reset(seed=seed)
        actions = np.random.default_rng(0).uniform(-1, 1, (30, 4, 8))
        return np.stack([obs] + [env.step(a)[0] for a in actions])
    np.testing.assert_array_equal(rollout(5), rollout(5))
    assert not np.array_equal(rollout(5), rollout(6))


def test_info_matches_physics_and_rewards_follow_the_paper():
    cfg = ReachConfig()
    env = ReachVectorEnv(8, cfg)
    obs, _ = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(np.zeros((8, 8)))
    sites = np.stack([d.site_xpos[env.kin.site_ids] for d in env.datas]) - np.array([0, 0, 0.1])
    errors = np.linalg.norm(env.goals - sites, axis=-1)
    np.testing.assert_allclose(info["errors"], errors, atol=1e-12)
    done = errors <= cfg.reach_tolerance
    expected = np.where(done, cfg.task_done_reward, -cfg.error_scale * errors)
    expected[done.all(axis=1)] = cfg.all_done_reward
    assert (~done).any()  # the -error branch is exercised
    np.testing.assert_allclose(info["task_rewards"], expected, rtol=1e-6)
    np.testing.assert_allclose(reward, info["task_rewards"].sum(axis=1), rtol=1e-6)
    assert not terminated.any() and not truncated.any()
    # Goal at the end effector: every task done -> the all-done reward to every task and to DDPG.
    q = env.joint_positions()
    env.reset(options={"q": q, "goals": env.kin.ee_positions_batch(q)})
    _, _, _, _, info = env.step(np.zeros((8, 8)))
    assert np.all(info["task_rewards"] == cfg.all_done_reward) and np.all(info["ddpg_reward"] == cfg.all_done_reward)


def test_centre_reward_keeps_the_error_term_inside_the_tolerance():
    cfg = ReachConfig(centre_reward=True, error_scale=3.0)
    env = ReachVectorEnv(4, cfg)
    ee = np.zeros((4, 3, 3))
    errors = np.array([[0.01, 0.03, 0.0], [0.005, 0.01, 0.019], [0.05, 0.0, 0.0], [0.02, 0.02, 0.02]])
    goals = ee + errors[..., None] * np.array([1.0, 0.0, 0.0])
    info = env.reward_info(ee, goals)
    done, all_done = errors <= cfg.reach_tolerance, (errors <= cfg.reach_tolerance).all(axis=1)
    bonus = np.where(all_done[:, None], cfg.all_done_reward, np.where(done, cfg.task_done_reward, 0.0))
    np.testing.assert_allclose(info["task_rewards"], bonus - 3.0 * errors, rtol=1e-6)
    np.testing.assert_allclose(info["ddpg_reward"], np.where(all_done, cfg.all_done_reward, 0.0) - 3.0 * errors.sum(1),
                               rtol=1e-6)
    assert np.all(info["task_rewards"][done] > 0)  # a done task's reward stays positive at the tolerance


def test_time_limit_truncates_and_keeps_the_final_observation():
    cfg = ReachConfig(max_episode_steps=3)
    env = ReachVectorEnv(2, cfg)
    env.reset(seed=0)
    for _ in range(2):
        assert not env.step(np.zeros((2, 8)))[3].any()
    obs, _, terminated, truncated, info = env.step(np.ones((2, 8)))
    assert truncated.all() and not terminated.any()
    assert not np.array_equal(info["final_obs"], obs)  # obs is the next episode's first


def test_bad_config_value_is_named():
    with pytest.raises(ValueError, match="reach_tolerance=-1"):
        ReachConfig(reach_tolerance=-1)


def test_hindsight_relabel_uses_reached_positions_and_recomputes_rewards():
    cfg = ReachConfig(max_episode_steps=5)
    env = ReachVectorEnv(3, cfg)
    obs, _ = env.reset(seed=0)
    seq_obs, seq_next = [], []
    for _ in range(5):
        nxt, _, _, trunc, info = env.step(np.random.default_rng(1).uniform(-1, 1, (3, 8)))
        seq_obs.append(obs)
        seq_next.append(info["final_obs"] if trunc.any() else nxt)
        obs = nxt
    o, n = np.stack(seq_obs), np.stack(seq_next)
    r = env.relabel(o, n, np.random.default_rng(0))
    ee, g, e = (env.layout.slice(k) for k in ("ee_pos", "goal_pos", "goal_error"))
    reached = {tuple(np.round(x, 9)) for x in n[..., ee].reshape(-1, 9)}
    assert all(tuple(np.round(x, 9)) in reached for x in r["obs"][..., g].reshape(-1, 9))
    np.testing.assert_allclose(r["next_obs"][..., e], r["next_obs"][..., g] - r["next_obs"][..., ee], atol=1e-6)
    assert np.all(r["info"]["all_done"][-1])  # the last step can only relabel to itself: reached
    np.testing.assert_allclose(r["reward"], r["info"]["task_rewards"].sum(-1), rtol=1e-6)


def test_a_late_command_lets_the_previous_one_act_for_the_delay():
    """``LateTicks``: on a late step the previous command acts for ``delay`` s, then the new one: from rest, a constant
    command leaves the late robot behind by about its travel in ``delay`` after the first step, and no further
    behind after the next (the previous command is then the same). None late is the task as trained, step for
    step; about ``rate`` of the steps come late; a delay the period cannot hold is refused."""
    def rollout(late_ticks: LateTicks) -> tuple[np.ndarray, float]:
        env = ReachVectorEnv(128, late_ticks=late_ticks)
        env.reset(seed=3)
        q, late = [], []
        for _ in range(2):
            env.step(np.full((128, 8), 0.5))
            q.append(env.joint_positions())
            late.append(env.late.mean())
        return np.stack(q), float(np.mean(late))
    plain, _ = rollout(LateTicks())
    none, _ = rollout(LateTicks(rate=0.0, delay=0.01))
    np.testing.assert_array_equal(none, plain)
    late, every = rollout(LateTicks(rate=1.0, delay=0.01))
    behind = np.median(plain - late, axis=1)  # (steps, joints), over the starts (a few stop at a joint limit)
    travel = 0.5 * ReachVectorEnv(1).spec.velocity_limits * 0.01
    assert every == 1.0
    np.testing.assert_allclose(behind[0], travel, rtol=0.2)
    np.testing.assert_allclose(behind[1], behind[0], rtol=0.05)
    _, some = rollout(LateTicks(rate=0.5, delay=0.01))
    assert 0.35 < some < 0.65
    with pytest.raises(ValueError, match="rate"):
        LateTicks(rate=1.5)
    for delay in (0.05, 0.0013):
        with pytest.raises(ValueError, match="not a whole number of MJCF timesteps"):
            ReachVectorEnv(1, late_ticks=LateTicks(rate=0.1, delay=delay))


def test_peak_errors_are_the_largest_over_the_physics_steps_and_change_nothing():
    """``peak_errors``: the same rollout, step for step, and each end effector's largest error over a step's physics
    steps, at least its error at the step's end and above it where the hand moved towards its goal."""
    def rollout(peak_errors: bool) -> tuple[np.ndarray, list[dict]]:
        env = ReachVectorEnv(16, late_ticks=LateTicks(rate=0.5, delay=0.01), peak_errors=peak_errors)
        env.reset(seed=4)
        infos = [env.step(a)[4] for a in np.random.default_rng(1).uniform(-1, 1, (5, 16, 8))]
        return env.joint_positions(), infos
    q_plain, _ = rollout(False)
    q_peaks, infos = rollout(True)
    np.testing.assert_array_equal(q_peaks, q_plain)
    peaks, errors = np.array([i["peak_errors"] for i in infos]), np.array([i["errors"] for i in infos])
    assert (peaks >= errors).all() and (peaks > errors + 1e-4).any()
