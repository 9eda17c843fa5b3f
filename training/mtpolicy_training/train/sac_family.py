"""Train a SAC-family method (mtsac, mh-sac, dgrad-a, dgrad-o; picor) on MT10/MT50, halfcheetah8 or a robot (planar8,
any robot folder): ``train sac-family``.

    python -m mtpolicy_training.train sac-family --algo.method dgrad-o --task-set mt10 \
        --budget-steps 1000000 --seed 1 --out-dir runs/mt10/dgrad-o/1
    python -m mtpolicy_training.train sac-family --algo.method picor --algo.picor.no-adaptive \
        --task-set halfcheetah8 --out-dir runs/halfcheetah8/picor-no-ada/1
    python -m mtpolicy_training.train sac-family --algo.method picor --robot planar8 --out-dir runs/planar8/picor

Resumes from ``<out-dir>/checkpoint.pt`` (replay included) when run again with
the same config. Writes ``metrics.csv`` and TensorBoard logs (``eval/``,
``train/``, ``perf/steps_per_second``), a progress bar with steps/s and ETA,
``eval.json`` (final evaluation: Meta-World's evaluation with
``final_eval_episodes`` episodes per task, or as many held-out goal sets on
a robot) and, on a robot, ``policy.onnx`` (deterministic mean action,
checked against the robot by ``OnnxPolicy``).

Task families (mt10, mt50, halfcheetah8): one sub-env per task, so ``loop.num_envs`` and
``loop.update_every`` are set to the number of tasks (one update round per
vector step; ``loop.updates_per_round`` sets the update-to-data ratio), and
``loop.batch_size`` to ``batch_per_task`` x tasks (task-specific replay).
PiCor's optimization phase steps on the drawn task's rows only, so for picor the
batch holds ``batch_per_task`` x tasks rows of every task: the drawn task's block
is as large as MTSAC's whole batch.
``periodic_eval_episodes`` is the episodes per task of a periodic evaluation
(halfcheetah8: the set's own evaluation, mean return per task).

For the harness: the D-Grad paper's four methods, PiCor and its Table 2
ablations, and MTSAC with bfloat16 products, on mt10, halfcheetah8 and planar8.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from mtpolicy.policy import OnnxPolicy
from mtpolicy_training.algos.picor import PiCor, PiCorFamilyConfig
from mtpolicy_training.algos.sac_family import SACFamily
from mtpolicy_training.core.offpolicy import LoopConfig, train_off_policy
from mtpolicy_training.core.replay import ReplayBuffer, TaskReplayBuffer
from mtpolicy_training.core.run_record import RunConfig, config_dict
from mtpolicy_training.core.trainer import BestRun, Trainer, reach_key, run_trainer
from mtpolicy_training.core.vector_envs import space_sizes
from mtpolicy_training.envs.reach import REWARDS
from mtpolicy_training.envs.reach_evaluation import onnx_controller
from mtpolicy_training.envs.registry import ReachTaskSet, is_robot, make_task_set
from mtpolicy_training.envs.taskset import TaskOneHotObservations, TaskSet, append_task_one_hot
from mtpolicy_training.ship.export import export_policy
from mtpolicy_training.train.family import Family, TrainSettings


TASK_FAMILIES = ("mt10", "mt50", "halfcheetah8")
"""The task families these methods train on, besides any robot's reach set."""


@dataclass(kw_only=True)
class SACFamilyTrainConfig(TrainSettings):
    """A SAC-family method (the D-Grad paper's four, PiCor) on a task family or a reach robot's end effectors."""

    budget_steps: int = 300_000
    out_dir: Path = Path("runs/sac_family")
    periodic_eval_episodes: int = 10
    final_eval_episodes: int = 50
    algo: PiCorFamilyConfig = field(default_factory=PiCorFamilyConfig)
    """Method settings (a SAC-family method, or picor with its settings in ``algo.picor``)."""
    task_set: str = "mt10"
    """Task family (mt10, mt50, halfcheetah8) or a robot's simultaneous reach set (a shipped robot's name, a robot
    folder or an MJCF/URDF path: one task per end effector)."""
    robot: str | None = None
    """A robot (the vocabulary's ``--robot``): its reach set, the same as ``--task-set ROBOT``; recorded as the
    task set."""
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(updates_per_round=1, eval_every=100_000,
                                                                checkpoint_every=50_000))
    """Parallel envs, replay and bookkeeping (see the module docstring for the fields set per task family)."""
    batch_per_task: int = 128
    """Minibatch samples per task (planar8: transitions, each used once per task)."""
    reward: str = "paper"
    """Reach sets: the reward shape, ``ReachConfig.reward`` (paper: DiGrad's; hold: pays for holding). Task families
    keep their own."""

    COMMAND: ClassVar[str] = "train sac-family"

    def __post_init__(self):
        if self.robot is not None:
            if self.task_set not in ("mt10", self.robot):  # mt10: the default, not given
                raise ValueError(f"invalid config value(s): robot {self.robot!r} and task_set {self.task_set!r}: "
                                 "give one")
            self.task_set, self.robot = self.robot, None
        bad = self.validate_settings() + self.algo.validate()
        bad += ["batch_per_task"] if self.batch_per_task <= 0 else []
        if self.task_set not in TASK_FAMILIES and not is_robot(self.task_set):
            raise ValueError(f"invalid config value(s): task_set {self.task_set!r} is neither one of {TASK_FAMILIES} "
                             "nor a robot (a shipped name, robot folder or MJCF/URDF path)")
        task_set = make_task_set(self.task_set)
        if self.reward not in REWARDS or (self.reward != "paper" and not task_set.simultaneous):
            bad += [f"reward ({self.reward!r}: one of {', '.join(REWARDS)}, and paper on a task family)"]
        if self.algo.actor != "mlp" and not task_set.simultaneous:
            bad += [f"algo.actor ({self.algo.actor} needs a reach set's goal errors; {self.task_set} has none)"]
        if not task_set.simultaneous:
            n = task_set.n_tasks
            self.loop = dataclasses.replace(self.loop, num_envs=n, update_every=n,
                                            batch_size=family_batch_size(self.algo.method, self.batch_per_task, n))
        else:
            self.loop = dataclasses.replace(self.loop, batch_size=self.batch_per_task)
        bad += [f"loop.{k}" for k in self.loop.validate()]
        if bad:
            raise ValueError("invalid config value(s): " + ", ".join(bad))

    def behaviour_before_options(self) -> dict[str, object]:
        """PiCor's options whose defaults changed its update, at the values that do what it did before them (a
        checkpoint without them resumes only with these; the other methods ignore them)."""
        if self.algo.method != "picor":
            return {}
        return {"algo.picor.correction_states_per_task": 0, "algo.picor.every_task_temperature": False}


def family_batch_size(method: str, batch_per_task: int, n_tasks: int) -> int:
    """Rows of a task-family batch: ``batch_per_task`` of every task; PiCor's optimization phase steps on one task's
    block, so it samples as many rows of every task as the others' whole batch."""
    return batch_per_task * n_tasks * (n_tasks if method == "picor" else 1)


def make_configured_task_set(config: SACFamilyTrainConfig) -> TaskSet:
    """The task set of ``config``; a reach set with the reward shape ``config.reward``."""
    task_set = make_task_set(config.task_set)
    if not isinstance(task_set, ReachTaskSet):  # a simultaneous set
        return task_set
    return dataclasses.replace(task_set, config=dataclasses.replace(task_set.config, reward=config.reward))


def run(config: SACFamilyTrainConfig) -> dict[str, float]:
    """Train (or resume), evaluate, and on reach sets export ``policy.onnx``; returns the final evaluation."""
    torch.manual_seed(config.seed)
    task_set = make_configured_task_set(config)
    n = task_set.n_tasks
    make_method = (functools.partial(PiCor, config.algo.family(), config.algo.picor) if config.algo.method == "picor"
                   else functools.partial(SACFamily, config.algo))
    reward_of: Callable[[np.ndarray, dict], np.ndarray] | None = None  # None: the env's scalar reward
    make_buffer: Callable[[int, int, int, int], ReplayBuffer] = ReplayBuffer
    if isinstance(task_set, ReachTaskSet):  # a simultaneous set
        reach_set = task_set
        probe = reach_set.make_env(None, 1, config.seed)
        mean, std = probe.observation_statistics()
        method = make_method(mean.shape[0], space_sizes(probe)[1], n, True, mean, std, seed=config.seed,
                             layout=probe.layout, kin=probe.kin)
        eval_kwargs: dict = {}

        def make_env(num_envs: int) -> VectorEnv:
            return reach_set.make_env(None, num_envs, config.seed)

        def task_rewards(reward: np.ndarray, info: dict) -> np.ndarray:
            return info[reach_set.task_reward_key]
        reward_of = task_rewards
    else:
        envs = task_set.make_multitask_env(1, config.seed)
        eval_kwargs = {"seed": config.seed, **({"envs": envs} if task_set.reuses_evaluation_env else {})}
        method = make_method(*space_sizes(envs), n, seed=config.seed)
        if not task_set.reuses_evaluation_env:
            envs.close()

        def make_env(num_envs: int) -> VectorEnv:
            return TaskOneHotObservations(task_set.make_multitask_env(1, config.seed), task_set.task_indices(), n)
        make_buffer = functools.partial(TaskReplayBuffer, n_tasks=n)

    def policy_fn(obs: np.ndarray, tasks: np.ndarray | None) -> np.ndarray:
        obs = obs.astype(np.float32)
        return method.act(obs if tasks is None else append_task_one_hot(obs, tasks, n), 0.0)

    def evaluate(m: SACFamily, episodes: int = config.periodic_eval_episodes) -> dict[str, float]:
        return {k.removeprefix("eval/"): v for k, v in task_set.evaluate(policy_fn, episodes, **eval_kwargs).items()}

    export, best, evaluate_best = None, BestRun(config.out_dir), None
    if task_set.simultaneous:  # a reach set: its policies export, the best validated one as best_policy.onnx
        def export(record: dict[str, float], path: Path) -> None:
            export_policy(method.policy, probe.spec, reach_set.config, method=config.algo.method,
                          training_config=config_dict(config), metrics=record, path=path)
            OnnxPolicy(path).check(probe.spec)

        def evaluate_best(path: Path) -> dict[str, float]:
            controller = onnx_controller(path)[0]
            metrics = task_set.evaluate(lambda obs, tasks: controller(obs), config.final_eval_episodes)
            return {k.removeprefix("eval/"): v for k, v in metrics.items()}
        best = BestRun(config.out_dir, export, key=reach_key)
    last: dict[str, float] = {}

    def train() -> None:
        last.update(train_off_policy(method, make_env, config.loop, config, evaluate, reward_of, RunConfig.of(config),
                                     make_buffer, best=best))

    def final_evaluation() -> dict[str, float]:
        same_evaluation = config.final_eval_episodes == config.periodic_eval_episodes
        return last if same_evaluation else evaluate(method, config.final_eval_episodes)

    final = run_trainer(Trainer(config.out_dir, train, final_evaluation, export, best, evaluate_best=evaluate_best))
    if not task_set.simultaneous and "envs" in eval_kwargs:
        eval_kwargs["envs"].close()
    return final


SETTINGS = {
    **{m: ["--algo.method", m] for m in ("mtsac", "mh-sac", "dgrad-a", "dgrad-o")},
    "picor": ["--algo.method", "picor"],
    "picor-no-ada": ["--algo.method", "picor", "--algo.picor.no-adaptive"],
    "picor-no-cor": ["--algo.method", "picor", "--algo.picor.no-correction"],
    "picor-no-ada-no-cor": ["--algo.method", "picor", "--algo.picor.no-adaptive", "--algo.picor.no-correction"],
    "mtsac-bf16": ["--algo.method", "mtsac", "--loop.matmul-precision", "bfloat16"],
}
"""Harness methods: the D-Grad paper's four, PiCor and its Table 2 ablations (Ada: adaptive weights, Cor:
correction phase; without Cor, Ada has nothing to weigh, so picor-no-cor and picor-no-ada-no-cor are the same
algorithm), and MTSAC with bfloat16 matrix products (against MTSAC: what the faster products cost in learning)."""

TASK_SET_ARGS: dict[str, list[str]] = {"mt10": [], "halfcheetah8": [], "planar8": []}
"""Harness task sets (PiCor's two benchmarks, mt10 being D-Grad's too, and the deployment task) and the options
their cells start from (overrides come after): every one at the trainer's defaults; the reach re-test grids give
the holding recipe of the shipped planar8 policies as overrides (``benchmarks/harness/grid.py``)."""

FAMILY = Family("sac-family", SACFamilyTrainConfig, run, settings=SETTINGS,
                task_sets={t: ["--task-set", t, *args] for t, args in TASK_SET_ARGS.items()},
                fixed=frozenset({"task_set", "algo.method", "algo.picor.adaptive", "algo.picor.correction"}))
