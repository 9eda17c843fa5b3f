"""Multi-task reach for any branched robot: one task per end effector.

``ReachVectorEnv`` steps a batch of MuJoCo worlds with velocity actuators in
lockstep (all episodes have the same fixed length, so all reset together);
``ReachEnv`` is the same with one world, for the gymnasium API and checkers.

| action     | shape     | meaning                                            |
|------------|-----------|----------------------------------------------------|
| velocity   | n_joints  | joint velocity / velocity limit, in [-1, 1]        |

The velocity sent to the servos is the action ramped at the robot's
acceleration limits, as the controller node's ``CommandRamp`` sends it: each
joint's command within ``a_max dt`` of its previous one (zero at reset;
``mtpolicy.safety.rate_limit``), so training, the evaluator and the node move
the robot under the same limits.

Observation: ``mtpolicy.observation.observe`` (the layout table is there), the
same function the controller node uses.

Rewards (DiGrad Sec. 5, "Reward function"), with ``error_i = ||G_i - E_i||``
and ``done_i = error_i <= reach_tolerance`` after the step:

* per task (DiGrad): ``all_done_reward`` to every task if all are done, else
  ``task_done_reward`` to a done task, else ``-error_scale * error_i``;
* single (DDPG): ``all_done_reward`` if all are done, else
  ``-error_scale * sum_i error_i``.

With ``reward="hold"`` (not in the paper) the rewards pay for holding, per
period: ``r_i = -error_scale * error_i - step_cost * [not all done]
- leave_penalty * [left_i]`` per task, and ``-error_scale * sum_i error_i
- step_cost * [not all done] - leave_penalty * sum_i [left_i]`` as the single
reward, ``left_i`` meaning end effector i was within tolerance the period
before and is not now. A policy pays until every end effector is in, pays
again for every exit, and is pulled to the goals' centre by the error term,
where the error-gain actors (``core/holding.py``) command exactly zero.

The paper gives no magnitudes and leaves the reward of a done task flat. With
``centre_reward`` the error term stays on inside the tolerance too (a done task
gets its bonus minus ``error_scale * error_i``), so the reward keeps pointing at
the goal's centre. The defaults stay the paper's shape with round magnitudes;
what the bonus sizes did on planar8 is in docs/results.md ("planar8 reach").

``reward_mode`` picks which one is the scalar reward; ``info`` always holds
``task_rewards`` (per task), ``ddpg_reward``, ``errors``, ``scores``
(``-log(error_i)``) and ``all_done``. Episodes never terminate; they are
truncated after ``max_episode_steps``. Only the joints on an end-effector chain
act (``RobotSpec.joint_names``); the robot's other actuated joints stay at the
home keyframe (velocity 0). Start configurations are uniform within
the joint limits; a goal set is the end-effector positions of one random
configuration (``sample_configurations``), so every goal set is feasible at
once. Start and goal configurations are free of self-collision
(``sample_free_configurations``). ``goal_distribution`` says where that configuration lies:

| distribution | goal configuration                                              |
|--------------|-----------------------------------------------------------------|
| local        | within ``goal_joint_range`` rad (``goal_slide_range`` m) per joint of the start |
| workspace    | uniform over the joint limits, independent of the start          |

With ``planned`` the observation also holds ``q* - q`` for the goal
configuration q* that ``mtpolicy.planner`` finds for the goal set at reset
(with the planner's ``finish_at_goal``, its finish once the end effectors
enter the tolerance). With ``previous_command`` it ends with the velocities
sent at the last step (``commands``), as the controller node observes them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import gymnasium as gym
import mujoco
import numpy as np
import tyro
from gymnasium.vector import AutoresetMode, VectorEnv

from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import (GOAL_JOINT_RANGE, GOAL_SLIDE_RANGE, reach_tolerance, sample_configurations,
                                 sample_free_configurations)
from mtpolicy.observation import ObservationLayout, observe
from mtpolicy.planner import GoalConfigurationPlanner, PlannerConfig
from mtpolicy.robots import DEFAULT_ROBOT, RobotSpec, find_robot, load_robot, shipped_robots
from mtpolicy.safety import rate_limit
from mtpolicy_training.core.options import word

REWARDS = ("paper", "hold")
"""Reward shapes: DiGrad's (``paper``) or one that pays for holding (``hold``); module docstring."""

GOAL_DISTRIBUTIONS = ("local", "workspace")
"""Where goal configurations lie: near the start (``local``) or anywhere in the joint limits (``workspace``)."""


@dataclass(frozen=True)
class ReachConfig:
    """Reach task settings shared by training, evaluation and export."""

    robot: str = DEFAULT_ROBOT
    """Shipped robot name, robot folder (with a robot.yaml) or path to an MJCF/URDF (made absolute: a saved
    config works from any directory)."""
    end_effectors: tuple[str, ...] = ()
    """End-effector sites (or bodies with one site), in task order (empty: the robot.yaml's, else every site)."""
    control_period: float = 0.05
    """Seconds per env step (policy rate 20 Hz); a multiple of the MJCF timestep."""
    max_episode_steps: int = 60
    """Steps per episode (3 s at 20 Hz); a time-limit cut, never a terminal state."""
    reach_tolerance: float | None = None
    """An end effector within this distance (m) of its goal has done its task (None: the robot.yaml's)."""
    error_scale: float = 1.0
    """Reward per metre of error when not done (negative)."""
    task_done_reward: float = 0.1
    """DiGrad: small positive reward to a task that is done."""
    all_done_reward: float = 1.0
    """Reward to every task (DiGrad) or the single reward (DDPG) when all are done."""
    centre_reward: bool = False
    """Keep ``-error_scale * error`` for done tasks as well (bonus on top): no flat reward inside the tolerance."""
    reward_mode: str = "digrad"
    """Scalar reward: 'digrad' (sum of per-task rewards) or 'ddpg' (single reward)."""
    reward: str = "paper"
    """Reward shape: 'paper' (DiGrad Sec. 5 with the bonuses above) or 'hold' (a cost per period until every end
    effector is within tolerance, a penalty for leaving it, the error term; module docstring)."""
    step_cost: float = 1.0
    """'hold': cost per period while any end effector is out of tolerance."""
    leave_penalty: float = 5.0
    """'hold': penalty to an end effector that leaves the tolerance it was within at the previous period."""
    goal_joint_range: float | None = GOAL_JOINT_RANGE
    """``local`` goal configurations lie within this many rad per joint of the start (None: anywhere)."""
    goal_slide_range: float = GOAL_SLIDE_RANGE
    """... and within this many m per prismatic joint (with ``goal_joint_range`` not None)."""
    goal_distribution: str = "local"
    """'local' (goal configuration near the start) or 'workspace' (independent of the start)."""
    planned: bool = False
    """Observe ``q* - q`` for the planner's goal configuration q* (planner-conditioned policies)."""
    planner: PlannerConfig = PlannerConfig()
    """The goal-configuration planner of planned observations."""
    previous_command: bool = False
    """Observe the command sent the period before (``commands``; policies whose graph times its braking by it)."""

    def __post_init__(self):
        if isinstance(self.planner, dict):  # a config read back from JSON
            object.__setattr__(self, "planner", PlannerConfig(**self.planner))
        if self.robot not in shipped_robots() and Path(self.robot).exists():
            object.__setattr__(self, "robot", str(Path(self.robot).resolve()))
        if self.reach_tolerance is None:  # derived once: the resolved value is what a run records
            object.__setattr__(self, "reach_tolerance", reach_tolerance(self.robot))
        if self.planner.algorithm == "time_optimal":  # the program is the task's: its tolerance and period
            object.__setattr__(self, "planner", replace(self.planner, reach_tolerance=self.reach_tolerance,
                                                        control_period=self.control_period))
        object.__setattr__(self, "end_effectors", tuple(self.end_effectors))
        checks = {
            "control_period": self.control_period > 0, "max_episode_steps": self.max_episode_steps > 0,
            "reach_tolerance": self.reach_tolerance > 0, "error_scale": self.error_scale > 0,
            "reward_mode": self.reward_mode in ("digrad", "ddpg"), "reward": self.reward in REWARDS,
            "step_cost": self.step_cost >= 0, "leave_penalty": self.leave_penalty >= 0,
            "goal_joint_range": self.goal_joint_range is None or self.goal_joint_range > 0,
            "goal_slide_range": self.goal_slide_range > 0,
            "goal_distribution": self.goal_distribution in GOAL_DISTRIBUTIONS,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError("invalid ReachConfig value(s): " + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad))

    @property
    def tolerance(self) -> float:
        """``reach_tolerance`` as resolved by ``__post_init__`` (never None)."""
        if self.reach_tolerance is None:
            raise ValueError("ReachConfig.reach_tolerance is unresolved: build the config through its constructor")
        return self.reach_tolerance


@dataclass(frozen=True)
class ReachOptions(ReachConfig):
    """A reach trainer's ``env``: ``ReachConfig`` whose vocabulary words are spelled as in every command
    (``--robot``, ``--end-effectors``, ``--reach-tolerance``, ``--goal-distribution``; the rest ``--env.*``)."""

    robot: Annotated[str, word("robot")] = ReachConfig.robot
    end_effectors: Annotated[tuple[str, ...], word("end effectors")] = ReachConfig.end_effectors
    reach_tolerance: Annotated[float | None, word("tolerance")] = ReachConfig.reach_tolerance
    goal_distribution: Annotated[str, word("goal distribution")] = ReachConfig.goal_distribution
    previous_command: tyro.conf.Suppress[bool] = False
    """Not a trainer's: ``ship.refine`` sets it for the graphs that read it (``--refinement.command deadbeat``)."""


@dataclass(frozen=True)
class LateTicks:
    """A loaded control loop, emulated: at each step, with probability ``rate`` per env, the new command takes effect
    ``delay`` s late and the previous one acts meanwhile, as when a controller's tick comes late and the robot's
    velocity servos hold the last command they were sent."""

    rate: float = 0.0
    """Fraction of the steps whose command is late (0: none, the task as trained)."""
    delay: float = 0.0
    """How late (s): a whole number of MJCF timesteps, less than the control period."""
    seed: int = 0
    """Seed of which steps are late."""

    def __post_init__(self):
        bad = [k for k, ok in {"rate": 0 <= self.rate <= 1, "delay": self.delay >= 0}.items() if not ok]
        if bad:
            raise ValueError("invalid LateTicks value(s): " + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad))


class ReachVectorEnv(VectorEnv):
    """``num_envs`` reach worlds stepped in lockstep (gymnasium VectorEnv, same-step autoreset)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}
    spec: RobotSpec  # type: ignore[assignment]  # the robot's, where gymnasium has an EnvSpec (None here)

    def __init__(self, num_envs: int, config: ReachConfig = ReachConfig(), spec: RobotSpec | None = None,
                 time_limit: bool = True, late_ticks: LateTicks = LateTicks(), peak_errors: bool = False):
        self.config = config
        self.time_limit = time_limit
        self.spec = spec or load_robot(config.robot, list(config.end_effectors) or None)
        self.model = self.spec.load_model()
        substeps = config.control_period / self.model.opt.timestep
        if abs(substeps - round(substeps)) > 1e-6:
            raise ValueError(f"control_period={config.control_period} is not a multiple of the MJCF timestep "
                             f"{self.model.opt.timestep}")
        self.substeps = int(round(substeps))
        self.late_ticks = late_ticks
        self.late_substeps = int(round(late_ticks.delay / self.model.opt.timestep))
        if self.late_substeps >= self.substeps or abs(self.late_substeps * self.model.opt.timestep
                                                      - late_ticks.delay) > 1e-9:
            raise ValueError(f"LateTicks delay={late_ticks.delay} is not a whole number of MJCF timesteps "
                             f"({self.model.opt.timestep}) below the control period {config.control_period}")
        self._late_rng = np.random.default_rng(late_ticks.seed)
        self.late = np.zeros(num_envs, dtype=bool)
        """Whether each env's command of the last step came late (``LateTicks``)."""
        self.peak_errors = peak_errors
        """Whether ``step``'s info has ``peak_errors``: (num_envs, n_ee) each end effector's largest error (m) over
        the step's physics steps (what a 100 Hz joint-state stream sees between two control steps)."""
        self.kin = Kinematics(self.spec, self.model)
        self.layout = ObservationLayout.for_robot(self.spec.n_joints, self.spec.n_tasks, config.planned,
                                                  config.previous_command)
        self.planner = GoalConfigurationPlanner(self.kin, config.planner) if config.planned else None
        self.num_envs = num_envs
        self.datas = [mujoco.MjData(self.model) for _ in range(num_envs)]
        n, k = self.spec.n_joints, self.spec.n_tasks
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (n,), np.float32)
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (self.layout.size,), np.float32)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.goals = np.zeros((num_envs, k, 3))
        self.goal_configs: np.ndarray | None = None
        """(num_envs, n_joints) the planner's goal configurations (planned observations only): each its finish once
        ``PlannerConfig.finishes``."""
        self.finish_configs: np.ndarray | None = None
        """(num_envs, n_joints) what each goal configuration becomes then (``GoalConfigurationPlanner.finish``)."""
        self.commands = np.zeros((num_envs, n))
        """(num_envs, n_joints) the velocities sent at the last step (rad/s or m/s): the ramp's previous command."""
        self.steps = 0
        self._ee: np.ndarray | None = None
        """End-effector positions of the last observation (``hold``'s leaving penalty)."""
        self._rng = np.random.default_rng()
        self._qadr = self.kin.qpos_adr
        self._actuators = self.spec.actuator_ids(self.model)

    # --- state access -----------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        return np.stack([d.qpos[self._qadr] for d in self.datas])

    def _observe(self) -> tuple[np.ndarray, np.ndarray]:
        """The observation and end-effector positions; a planned goal configuration becomes its finish first where
        the planner says so (as in the controller node, ``mtpolicy.nodes.planning``)."""
        q = self.joint_positions()
        commands = self.commands if self.config.previous_command else None
        obs, ee = observe(self.kin, q, self.goals, self.goal_configs, commands)
        if self.goal_configs is not None and self.finish_configs is not None:  # planned, after a reset
            travel = (np.abs(self.goal_configs - q) / self.spec.velocity_limits).max(axis=1)
            finishing = self.config.planner.finishes(np.linalg.norm(self.goals - ee, axis=-1), travel)
            finishing &= (self.goal_configs != self.finish_configs).any(axis=1)
            if finishing.any():
                self.goal_configs = np.where(finishing[:, None], self.finish_configs, self.goal_configs)
                obs, ee = observe(self.kin, q, self.goals, self.goal_configs, commands)
        return obs, ee

    # --- gymnasium API ----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Random start configurations and goal sets; ``options`` may fix ``q`` and ``goals``."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        options = options or {}
        q0 = np.atleast_2d(options["q"] if "q" in options  # drawn only when not given (a draw costs and uses rng)
                           else sample_free_configurations(self.kin, self._rng, self.num_envs))
        goals = options.get("goals")
        if goals is None:
            goals = self.kin.ee_positions_batch(self._goal_configurations(self._rng, q0))
        self.goals = np.asarray(goals, dtype=np.float64).reshape(self.num_envs, self.spec.n_tasks, 3)
        for d, q in zip(self.datas, q0):
            self.spec.reset_to_home(self.model, d)
            d.qpos[self._qadr] = q
            mujoco.mj_kinematics(self.model, d)
        if self.planner is not None:
            self.goal_configs = self.planner.plan_batch(q0, self.goals)
            self.finish_configs = self.planner.finish_batch(q0, self.goals)
        self.commands = np.zeros_like(self.commands)
        self.steps = 0
        obs, ee = self._observe()
        self._ee = ee
        return obs, self._info(ee)

    def _goal_configurations(self, rng: np.random.Generator, q0: np.ndarray) -> np.ndarray:
        local = self.config.goal_distribution == "local"
        return sample_free_configurations(self.kin, rng, len(q0), around=q0 if local else None,
                                          joint_range=self.config.goal_joint_range if local else None,
                                          slide_range=self.config.goal_slide_range)

    def step(self, actions: np.ndarray):
        target = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0) * self.spec.velocity_limits
        previous = self.commands
        self.commands = rate_limit(target, previous, self.spec.acceleration_limits, self.config.control_period)[0]
        if self.late_ticks.rate > 0 and self.late_substeps:
            self.late = self._late_rng.random(self.num_envs) < self.late_ticks.rate
        peaks = np.zeros((self.num_envs, self.spec.n_tasks)) if self.peak_errors else None
        held = (self.late_substeps * self.late).tolist()  # physics steps of each env's previous command
        for i, (d, v, v0, k) in enumerate(zip(self.datas, self.commands, previous, held)):
            if k:  # the previous command acts until the new one arrives
                self._advance(i, v0, k, peaks)
            self._advance(i, v, self.substeps - k, peaks)
            mujoco.mj_kinematics(self.model, d)
        self.steps += 1
        obs, ee = self._observe()
        info = self.reward_info(ee, self.goals, self._ee)
        if peaks is not None:
            info["peak_errors"] = peaks
        self._ee = ee
        reward = info["task_rewards"].sum(axis=1) if self.config.reward_mode == "digrad" else info["ddpg_reward"]
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.full(self.num_envs, self.time_limit and self.steps >= self.config.max_episode_steps)
        if truncated[0]:
            info["final_obs"] = obs
            obs, reset_info = self.reset()
            info["final_info"] = {k: info[k] for k in ("errors", "scores", "all_done")}
        return obs, reward.astype(np.float32), terminated, truncated, info

    def _advance(self, i: int, command: np.ndarray, n: int, peaks: np.ndarray | None) -> None:
        """``n`` physics steps of env ``i`` under ``command``; given ``peaks`` (``peak_errors``), one at a time, each
        end effector's largest error over them raised into ``peaks[i]``."""
        d = self.datas[i]
        d.ctrl[self._actuators] = command
        if peaks is None:
            mujoco.mj_step(self.model, d, nstep=n)
            return
        for _ in range(n):
            mujoco.mj_step(self.model, d)
            errors = np.linalg.norm(self.kin.ee_positions(d.qpos[self._qadr]) - self.goals[i], axis=-1)
            peaks[i] = np.maximum(peaks[i], errors)

    def _info(self, ee: np.ndarray) -> dict:
        return self.reward_info(ee, self.goals)

    def reward_info(self, ee: np.ndarray, goals: np.ndarray, previous_ee: np.ndarray | None = None) -> dict:
        """Errors, scores and both reward kinds for end effectors ee at goals (..., n_ee, 3); ``previous_ee``: where
        they were a period before (``hold``'s leaving penalty; None: nothing left)."""
        c = self.config
        errors = np.linalg.norm(goals - ee, axis=-1)
        done = errors <= c.reach_tolerance
        all_done = done.all(axis=-1)
        penalty = -c.error_scale * errors
        if c.reward == "hold":
            was_done = done if previous_ee is None else \
                np.linalg.norm(goals - previous_ee, axis=-1) <= c.reach_tolerance
            left = c.leave_penalty * (was_done & ~done)
            cost = c.step_cost * ~all_done
            task = penalty - cost[..., None] - left
            ddpg = penalty.sum(axis=-1) - cost - left.sum(axis=-1)
        else:
            inside = penalty if c.centre_reward else np.zeros_like(penalty)
            task = np.where(done, c.task_done_reward + inside, penalty)
            task = np.where(all_done[..., None], c.all_done_reward + inside, task)
            ddpg = np.where(all_done, c.all_done_reward + np.sum(inside, axis=-1), penalty.sum(axis=-1))
        return {"task_rewards": task.astype(np.float32), "ddpg_reward": ddpg.astype(np.float32),
                "errors": errors, "scores": -np.log(np.maximum(errors, 1e-6)), "all_done": all_done}

    def relabel(self, obs: np.ndarray, next_obs: np.ndarray, rng: np.random.Generator) -> dict:
        """Hindsight goals for one episode of transitions, (T, N, obs) each ("future" strategy).

        Each transition's goal set becomes the end-effector positions reached
        at a uniformly drawn later step of its own episode (always a feasible
        goal set; in planned observations the configuration there is its q*);
        observations, the scalar reward and the reward ``info`` are recomputed
        for it.
        """
        steps, n = obs.shape[:2]
        t = np.arange(steps)[:, None]
        future = t + (rng.random((steps, n)) * (steps - t)).astype(int)
        q_sl, ee_sl = self.layout.slice("joint_pos"), self.layout.slice("ee_pos")

        def at_future(sl: slice, width: int) -> np.ndarray:
            return np.take_along_axis(next_obs[..., sl], future[..., None], axis=0).reshape(-1, width)

        goals = at_future(ee_sl, 3 * self.spec.n_tasks).reshape(-1, self.spec.n_tasks, 3)
        q_goal = at_future(q_sl, self.spec.n_joints) if self.config.planned else None

        def commands(o: np.ndarray) -> np.ndarray | None:
            return o[..., self.layout.slice("previous_command")].reshape(steps * n, -1) \
                if self.config.previous_command else None
        out: dict[str, np.ndarray | dict] = {
            k: observe(self.kin, o[..., q_sl].reshape(steps * n, -1), goals, q_goal, commands(o))[0].reshape(
                steps, n, -1) for k, o in (("obs", obs), ("next_obs", next_obs))}
        shape = (steps, n, self.spec.n_tasks, 3)
        info = self.reward_info(out["next_obs"][..., ee_sl].reshape(shape), goals.reshape(shape),
                                obs[..., ee_sl].reshape(shape))
        out["reward"] = info["task_rewards"].sum(-1) if self.config.reward_mode == "digrad" else info["ddpg_reward"]
        out["info"] = info
        return out

    def observation_statistics(self, n: int = 4096, seed: int = 12345) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of observations over random configurations and goal sets.

        Used as the (fixed) observation normalization of the policy, so it is the
        same in training and in the exported graph, and independent of the policy.
        """
        rng = np.random.default_rng(seed)
        q = sample_configurations(self.spec, rng, n)
        q_goal = self._goal_configurations(rng, q)  # stands in for the planner's q*: another solution as far
        commands = rng.uniform(-1.0, 1.0, q.shape) * self.spec.velocity_limits if self.config.previous_command else None
        obs, _ = observe(self.kin, q, self.kin.ee_positions_batch(q_goal), q_goal if self.config.planned else None,
                         commands)
        return obs.mean(axis=0), np.maximum(obs.std(axis=0), 1e-2)


class ReachEnv(gym.Env):
    """One reach world with the gymnasium Env API (see the module docstring).

    The time limit is gymnasium's ``TimeLimit`` (``max_episode_steps`` at
    registration), so this env itself never truncates.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, config: ReachConfig = ReachConfig(), render_mode: str | None = None, **overrides):
        self.config = ReachConfig(**{**config.__dict__, **overrides})
        self.vec = ReachVectorEnv(1, self.config, time_limit=False)
        self.spec_robot = self.vec.spec
        self.action_space = self.vec.single_action_space
        self.observation_space = self.vec.single_observation_space
        self.render_mode = render_mode
        self._renderer = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self.vec.reset(seed=seed if seed is not None else int(self.np_random.integers(2**31)),
                                   options=options)
        return obs[0], _first(info)

    def step(self, action):
        obs, reward, _, _, info = self.vec.step(np.asarray(action)[None])
        return obs[0], float(reward[0]), False, False, _first(info)

    def render(self):
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.vec.model, 480, 480)
        self._renderer.update_scene(self.vec.datas[0])
        return self._renderer.render()

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _first(info: dict) -> dict:
    return {k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in info.items()}


def register() -> None:
    """Register ``mtpolicy/<env_id>`` with gymnasium for each shipped robot whose manifest names an ``env_id``."""
    for name in shipped_robots():
        env_id = find_robot(name).env_id
        if env_id:
            gym.register(f"mtpolicy/{env_id}", entry_point=ReachEnv,
                         max_episode_steps=ReachConfig().max_episode_steps, kwargs={"config": ReachConfig(name)})
