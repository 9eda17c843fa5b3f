"""The controller's state prediction (``predict_state``) against a command delay, in the evaluator's simulation.

A command computed from a joint state and applied ``DELAY`` s after it was taken overshoots by DELAY x the previous
command; a policy that arrives at full speed (the shipped planar8_reach) then carries its end effectors out of
tolerance for a moment after entering it. The controller observes ``safety.predicted_positions`` over that lead
instead: the same loop then never leaves.
"""

from __future__ import annotations

import mujoco
import numpy as np

from mtpolicy import safety
from mtpolicy.observation import observe
from mtpolicy.policy import MODELS_DIR
from mtpolicy_training.envs.reach_evaluation import onnx_controller
from mtpolicy_training.envs.reach import ReachVectorEnv

DELAY = 0.012
"""s from a state to its command's effect: the controller node's state age, compute time and transport."""


def left_after_entering(predict: bool, goal_sets: int = 40, seed: int = 5) -> int:
    """Goal sets whose end effectors leave tolerance after entering it (checked every 10 ms of physics) when each
    command takes effect ``DELAY`` s into its period."""
    policy, config = onnx_controller(MODELS_DIR / "planar8_reach.onnx")
    env = ReachVectorEnv(goal_sets, config, time_limit=False)
    obs, _ = env.reset(seed=seed)
    delay_steps = int(round(DELAY / env.model.opt.timestep))
    entered = np.zeros(goal_sets, dtype=bool)
    left = np.zeros(goal_sets, dtype=bool)
    previous = np.zeros_like(env.commands)
    for _ in range(int(1.5 / config.control_period)):
        command = np.clip(policy(obs), -1.0, 1.0) * env.spec.velocity_limits
        for i, d in enumerate(env.datas):
            for step in range(env.substeps):
                d.ctrl[env._actuators] = previous[i] if step < delay_steps else command[i]
                mujoco.mj_step(env.model, d)
                if step % 5 == 4:
                    mujoco.mj_kinematics(env.model, d)
                    error = np.linalg.norm(env.kin.ee_positions(d.qpos[env._qadr]) - env.goals[i], axis=1).max()
                    within = error <= config.reach_tolerance
                    left[i] |= entered[i] and not within
                    entered[i] |= within
        q = env.joint_positions()
        if predict:
            q = safety.predicted_positions(q, command, DELAY, env.spec.joint_limits)
        obs, _ = observe(env.kin, q, env.goals)
        previous = command
    assert entered.all()
    return int(left.sum())


def test_predicted_state_keeps_a_full_speed_arrival_within_tolerance():
    assert left_after_entering(predict=False) > 0  # the delay alone makes some arrivals overshoot
    assert left_after_entering(predict=True) == 0


def test_predicted_positions_move_on_by_the_command_within_the_limits():
    limits = np.array([[-1.0, 1.0], [-1.0, 1.0]])
    q = np.array([0.5, 0.95])
    assert np.allclose(safety.predicted_positions(q, np.array([-2.0, 2.0]), 0.01, limits), [0.48, 0.97])
    assert np.allclose(safety.predicted_positions(q, np.array([0.0, 10.0]), 0.01, limits), [0.5, 1.0])
