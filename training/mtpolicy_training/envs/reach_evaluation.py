"""The reach evaluator: one protocol for learned policies and classical controllers.

A controller maps a batch of observations to normalized joint velocities in
[-1, 1]. It runs ``n_goal_sets`` episodes of ``episode_seconds`` whose start
configurations and goal sets come from one seed and the task's goal
distribution (``local`` or ``workspace``, see ``envs/reach.py``); every
controller given the same seed and distribution sees the same goal sets.

| metric                         | meaning                                                              |
|--------------------------------|----------------------------------------------------------------------|
| success_rate                   | held: every end effector within tolerance at every control step of  |
|                                | the final ``hold_seconds``                                           |
| reached_rate                   | every end effector within tolerance at some step                     |
| time_to_reach_median, _mean    | first time all are within tolerance (s), over held goal sets         |
| error_median_<ee>, error_p90_* | final distance to the goal (m)                                       |
| score_<ee>                     | -log(max(final distance, 1e-6)), mean over goal sets: the per-task   |
|                                | score of the reach task sets                                         |
| mean_score                     | the same over every end effector                                     |
| dither_sign_changes            | sign changes per joint of the commanded velocity over the final      |
|                                | ``hold_seconds``, counting commands above ``dither_deadband`` of the |
|                                | velocity limit; mean over goal sets and joints                       |
| left_after_reach_rate          | reached at some step but not held                                    |
| left_after_entering_rate       | out of tolerance at some step after the first reach, held or not     |
|                                | (an overshoot through the tolerance on the way in)                   |
| controller_failure_rate        | the controller gave up on the goal set (a non-finite action row, e.g.|
|                                | mink's QP without a solution): a miss from then on, velocity 0       |
| time_to_settle_median          | first time from which all stay within tolerance to the end (s), over |
|                                | held goal sets: time to reach unless it left after entering          |
| time_ratio_median, _p90        | time to reach / the time-optimal bound of the same goal set          |
|                                | (``envs/time_optimal.py``), over held goal sets; with ``bound``      |
| settle_ratio_median, _p90      | time to settle / that bound, likewise                                |
| per_set                        | with ``per_set``: each goal set's ``held`` (bool), ``time_to_reach`` |
|                                | (s, NaN if never reached), ``time_to_settle`` (s, NaN if not held)   |
|                                | and ``time_ratio``, ``settle_ratio`` (NaN where the ratios above     |
|                                | leave the set out),                                                  |
|                                | arrays for pooling over seeds                                        |

Seeds: ``envs/seeds.py`` (validation seeds choose, test seeds only report).

This module has no command line: an exported policy (shipped name or path) is
evaluated, with DLS and mink on the same goal sets, by ``ship/evaluate.py``::

    python -m mtpolicy_training.ship.evaluate planar8_reach --goal-distribution local
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from mtpolicy.dls import DampedLeastSquares
from mtpolicy.policy import OnnxPolicy
from mtpolicy.safety import CollisionGuard, limited_command
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.seeds import VALIDATION_SEED

Controller = Callable[[np.ndarray], np.ndarray]
StepHook = Callable[[int, ReachVectorEnv, np.ndarray, dict], None]
"""Called after control step ``t`` of ``evaluate_reach`` with the env, the actions applied (clipped to [-1, 1], 0
for a failed set) and the step's ``info``: what a probe records beside the metrics (benchmarks/reach_handover.py)."""


@dataclass(frozen=True)
class Protocol:
    """How an episode is run and scored."""

    episode_seconds: float = 4.0
    """Length of every episode (s)."""
    hold_seconds: float = 1.0
    """Success: within tolerance at every step of this final stretch (s)."""
    tolerance: float | None = None
    """Reach tolerance (m); None: the task's ``reach_tolerance``."""
    dither_deadband: float = 0.01
    """Commands below this fraction of the velocity limit do not count as a sign (dithering)."""

    def steps(self, control_period: float) -> tuple[int, int]:
        """Episode and hold lengths in control steps."""
        return round(self.episode_seconds / control_period), max(1, round(self.hold_seconds / control_period))


def evaluate_reach(controller: Controller, config: ReachConfig, n_goal_sets: int = 500,
                   seed: int = VALIDATION_SEED, protocol: Protocol = Protocol(),
                   bound: np.ndarray | None = None, per_set: bool = False, on_step: StepHook | None = None) -> dict:
    """The metrics of the module table for ``controller`` on ``n_goal_sets`` goal sets of ``seed``; ``bound``:
    the time-optimal bound (s) of each of those goal sets (``time_optimal.bound_table(...).bound_seconds``);
    ``per_set``: also each goal set's figures (key ``per_set``); ``on_step``: called after every control step
    (``StepHook``). ``controller`` is called once per control step, in order."""
    tolerance = config.reach_tolerance if protocol.tolerance is None else protocol.tolerance
    steps, hold = protocol.steps(config.control_period)
    env = ReachVectorEnv(n_goal_sets, config, time_limit=False)
    obs, info = env.reset(seed=seed)
    first_reach = np.full(n_goal_sets, -1)
    settled = np.full(n_goal_sets, -1)
    held = np.ones(n_goal_sets, dtype=bool)
    left = np.zeros(n_goal_sets, dtype=bool)
    failed = np.zeros(n_goal_sets, dtype=bool)
    actions = []
    for t in range(steps):
        action = np.asarray(controller(obs), dtype=np.float64)
        failed |= ~np.isfinite(action).all(axis=1)
        action = np.clip(np.where(failed[:, None], 0.0, action), -1.0, 1.0)
        if t >= steps - hold:
            actions.append(action)
        obs, _, _, _, info = env.step(action)
        if on_step is not None:
            on_step(t, env, action, info)
        within = (info["errors"] <= tolerance).all(axis=1) & ~failed
        left |= (first_reach > 0) & ~within
        first_reach[(first_reach < 0) & within] = t + 1
        settled[~within] = -1
        settled[(settled < 0) & within] = t + 1
        if t >= steps - hold:
            held &= within
    held &= ~failed
    errors = info["errors"]
    times = first_reach[held] * config.control_period
    settle_times = settled[held] * config.control_period
    signs = np.sign(np.asarray(actions)) * (np.abs(np.asarray(actions)) > protocol.dither_deadband)
    flips = (signs[1:] * signs[:-1] < 0).sum(axis=0)  # (goal sets, joints)
    out: dict[str, float | dict[str, np.ndarray]] = {
        "success_rate": float(held.mean()), "reached_rate": float((first_reach > 0).mean()),
        "time_to_reach_median": float(np.median(times)) if len(times) else math.nan,
        "time_to_reach_mean": float(np.mean(times)) if len(times) else math.nan,
        "time_to_settle_median": float(np.median(settle_times)) if len(times) else math.nan,
        "dither_sign_changes": float(flips.mean()),
        "left_after_reach_rate": float(np.mean((first_reach > 0) & ~held)),
        "left_after_entering_rate": float(left.mean()),
        "controller_failure_rate": float(failed.mean()),
        "mean_score": float(np.mean(-np.log(np.maximum(errors, 1e-6))))}
    reach_seconds = np.where(first_reach > 0, first_reach * config.control_period, math.nan)
    ratio, settle_ratio = np.full(n_goal_sets, math.nan), np.full(n_goal_sets, math.nan)
    if bound is not None:
        bound = np.asarray(bound)
        timed = held & (bound > 0)  # a set within tolerance at the start has no ratio
        ratio[timed] = reach_seconds[timed] / bound[timed]
        settle_ratio[timed] = settled[timed] * config.control_period / bound[timed]
        for name, ratios in (("time_ratio", ratio[timed]), ("settle_ratio", settle_ratio[timed])):
            out[f"{name}_median"] = float(np.median(ratios)) if len(ratios) else math.nan
            out[f"{name}_p90"] = float(np.percentile(ratios, 90)) if len(ratios) else math.nan
    for i, ee in enumerate(env.spec.end_effectors):
        out[f"score_{ee}"] = float(np.mean(-np.log(np.maximum(errors[:, i], 1e-6))))
        out[f"error_median_{ee}"] = float(np.median(errors[:, i]))
        out[f"error_p90_{ee}"] = float(np.percentile(errors[:, i], 90))
    if per_set:
        settle_seconds = np.where(held, settled * config.control_period, math.nan)
        out["per_set"] = {"held": held, "time_to_reach": reach_seconds, "time_to_settle": settle_seconds,
                          "time_ratio": ratio, "settle_ratio": settle_ratio}
    return out


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate successes / n."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)  # exactly 0 and 1 at p = 0, 1 (not -1e-17)


def dls_controller(env_config: ReachConfig) -> Controller:
    """The damped-least-squares baseline as a normalized-action controller."""
    env = ReachVectorEnv(1, replace(env_config, planned=False))
    dls = DampedLeastSquares(env.kin, env.layout)
    return lambda obs: dls(obs) / env.spec.velocity_limits


def mink_controller(env_config: ReachConfig) -> Controller:
    """mink's differential IK (a QP per step: every end effector's position task, joint position and velocity
    limits, the robot's other joints held) as a normalized-action controller at the task's control period. A QP
    without a solution gives NaN for that goal set (evaluate_reach: a controller failure, a miss)."""
    import mink  # a benchmark dependency (extras bench, dev)

    env = ReachVectorEnv(1, replace(env_config, planned=False))
    spec, model, kin = env.spec, env.model, env.kin
    velocity = dict(zip(spec.joint_names, spec.velocity_limits)) | {j: 0.0 for j in spec.held_joints}
    limits = [mink.ConfigurationLimit(model), mink.VelocityLimit(model, {j: [v] for j, v in velocity.items()})]
    tasks = [mink.FrameTask(ee, "site", position_cost=1.0, orientation_cost=0.0) for ee in spec.end_effectors]
    home = None if spec.home_keyframe is None else model.key_qpos[spec.home_keyframe]
    configuration = mink.Configuration(model, home)
    base_pos, base_rot = kin.base_pose()
    q_slice, goal_slice = env.layout.slice("joint_pos"), env.layout.slice("goal_pos")

    def velocity_of(obs: np.ndarray) -> np.ndarray:
        try:
            return solve(obs)
        except mink.exceptions.NoSolutionFound:  # this goal set's miss (evaluate_reach), not every set's crash
            return np.full(spec.n_joints, np.nan)

    def solve(obs: np.ndarray) -> np.ndarray:
        q = configuration.q.copy()
        q[kin.qpos_adr] = obs[q_slice]
        configuration.update(q)
        for task, goal in zip(tasks, obs[goal_slice].reshape(-1, 3).astype(np.float64)):
            task.set_target(mink.SE3.from_translation(base_pos + base_rot @ goal))
        v = mink.solve_ik(configuration, tasks, env_config.control_period, "daqp", damping=1e-3, limits=limits)
        return v[kin.dof_adr] / spec.velocity_limits

    return lambda obs: np.stack([velocity_of(o) for o in np.atleast_2d(obs)])


def onnx_controller(path: str | Path) -> tuple[Controller, ReachConfig]:
    """An exported ONNX policy as a normalized-action controller, and the reach task it was trained on."""
    policy = OnnxPolicy(path)
    limits = np.asarray(policy.contract.velocity_limits)
    env = policy.contract.training_config.get("env") or {"robot": policy.contract.robot}  # SAC family: its robot's
    return (lambda obs: policy(obs) / limits), ReachConfig(**env)


def guarded_controller(controller: Controller, env_config: ReachConfig, clearance: float = 0.0) -> Controller:
    """``controller`` behind the controller node's collision guard (``mtpolicy.safety.CollisionGuard``), as the node
    sends a command (``safety.limited_command`` at the node's default ``limit_margin`` 0): each row's command clamped
    to the velocity limits, joints at (or past) a position limit only moving inwards, then slid along the contacts or
    scaled down until its move keeps the larger of ``clearance`` (m) and the robot's ``collision_clearance``
    (0 for both: puts the robot into no new self-collision)."""
    env = ReachVectorEnv(1, replace(env_config, planned=False))
    guard = CollisionGuard(env.kin, env_config.control_period, env.spec.acceleration_limits, clearance=clearance)
    limits, joint_limits, q_slice = env.spec.velocity_limits, env.spec.joint_limits, env.layout.slice("joint_pos")

    def act(obs: np.ndarray) -> np.ndarray:
        return np.stack([limited_command(q, v, limits, joint_limits, collision_guard=guard)[0]
                         for q, v in zip(obs[:, q_slice].astype(np.float64), controller(obs) * limits)]) / limits

    return act
