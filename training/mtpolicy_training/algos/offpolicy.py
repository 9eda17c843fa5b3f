"""The off-policy core: replay, the shared training loop, checkpoints, logs.

A method plugs in as an ``OffPolicyMethod``: it acts, updates from a
``Batch``, and saves/loads its state. The loop owns everything else: vector
env stepping, replay, update-to-data ratio, evaluation, logging, and atomic
checkpoints that let a killed run resume where its last checkpoint left it
(replay, RNG states and the envs' goal RNG included). The episodes in flight
restart from a reset, so a resumed run continues the same learning but does not
repeat an uninterrupted run step for step.

Any gymnasium ``VectorEnv`` with same-step autoreset works (``gym_vector_env``
makes one from an env id; ``ReachVectorEnv`` is one). Methods act in
normalized actions [-1, 1], which the loop maps to the env's Box bounds.
"""

from __future__ import annotations

import csv
import ctypes
import dataclasses
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Protocol

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv

from mtpolicy.integrity import CorruptFile, sha256_file, strict_json
from mtpolicy_training.cli import RunConfig, RunRefused, write_atomically


@dataclass
class Batch:
    """A sampled minibatch. ``truncated`` marks a time-limit cut, which is never a terminal."""

    obs: torch.Tensor
    action: torch.Tensor
    rewards: torch.Tensor
    """(B, n_rewards): one column per task for per-task methods, one for single-reward ones."""
    next_obs: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    task: torch.Tensor
    """(B,) task index (task families); 0 for simultaneous tasks in one env."""

    def rows(self, index: slice | torch.Tensor) -> "Batch":
        """The rows ``index`` (a slice or an index tensor) of every field."""
        return Batch(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})


class ReplayBuffer:
    """Preallocated ring buffer of contiguous tensors, sampled in one gather per field."""

    FIELDS = ("obs", "action", "rewards", "next_obs", "terminated", "truncated", "task")

    def __init__(self, capacity: int, obs_size: int, action_size: int, n_rewards: int):
        self.capacity, self.size, self.pos = capacity, 0, 0
        f32 = torch.float32
        self.data = {
            "obs": torch.zeros(capacity, obs_size, dtype=f32), "action": torch.zeros(capacity, action_size, dtype=f32),
            "rewards": torch.zeros(capacity, n_rewards, dtype=f32), "next_obs": torch.zeros(capacity, obs_size, dtype=f32),
            "terminated": torch.zeros(capacity, dtype=torch.bool), "truncated": torch.zeros(capacity, dtype=torch.bool),
            "task": torch.zeros(capacity, dtype=torch.long),
        }

    def add(self, **fields: np.ndarray) -> None:
        n = len(fields["obs"])
        idx = slice(self.pos, self.pos + n) if self.pos + n <= self.capacity else \
            (torch.arange(n) + self.pos) % self.capacity
        for k in self.FIELDS:
            self.data[k][idx] = torch.as_tensor(fields[k]).to(self.data[k].dtype).reshape(n, *self.data[k].shape[1:])
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator, rounds: int = 1) -> list[Batch]:
        """``rounds`` independent minibatches (uniform, with replacement), gathered at once."""
        idx = torch.randint(0, self.size, (rounds * batch_size,), generator=generator)
        fields = {k: v[idx].split(batch_size) for k, v in self.data.items()}
        return [Batch(**{k: v[i] for k, v in fields.items()}) for i in range(rounds)]

    def state_dict(self) -> dict:
        return {"size": self.size, "pos": self.pos, "data": {k: v[:self.size].clone() for k, v in self.data.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.size, self.pos = state["size"], state["pos"]
        for k, v in state["data"].items():
            self.data[k][:self.size] = v


class OffPolicyMethod(Protocol):
    """What a method provides to the loop."""

    n_rewards: int

    def act(self, obs: np.ndarray, noise_std: float) -> np.ndarray: ...

    def update(self, batch: Batch) -> dict[str, torch.Tensor]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


MATMUL_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""``LoopConfig.matmul_precision`` -> the dtype of the updates' hidden-layer matrix products."""


def update_precision(name: str) -> torch.autocast:
    """The context an update runs in: matrix products autocast to the dtype ``name`` (none for float32)."""
    dtype = MATMUL_DTYPES[name]
    return torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32)


@dataclass
class LoopConfig:
    """Budget, replay and bookkeeping of an off-policy run."""

    total_steps: int = 300_000
    """Environment steps (summed over the parallel envs)."""
    num_envs: int = 16
    """Parallel envs stepped in lockstep."""
    batch_size: int = 256
    """Minibatch size of each update."""
    update_every: int = 16
    """Env steps between rounds of updates."""
    updates_per_round: int = 8
    """Gradient updates per round (update-to-data ratio = updates_per_round / update_every)."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions (hindsight copies included)."""
    learning_starts: int = 5_000
    """Env steps collected before the first update."""
    noise_start: float = 0.3
    """Std of the Gaussian exploration noise (normalized actions) at the start."""
    noise_end: float = 0.05
    """Std after ``noise_decay_steps`` (linear decay, then constant)."""
    noise_decay_steps: int = 200_000
    """Env steps over which the exploration noise decays."""
    eval_every: int = 25_000
    """Env steps between evaluations."""
    log_every: int = 5_000
    """Env steps between rows of training metrics in metrics.csv and TensorBoard, each the mean over the updates
    since the last row (an evaluation's row carries them too). A resumed run may change it."""
    eval_goal_sets: int = 100
    """Goal sets per periodic evaluation (the final evaluation uses 500)."""
    checkpoint_every: int = 25_000
    """Env steps between checkpoints (a killed run loses at most this much)."""
    hindsight_copies: int = 0
    """Hindsight-relabeled copies of each transition added at episode end (envs with ``relabel``; 0 = off)."""
    torch_threads: int = 1
    """torch intra-op threads (small nets: 1 avoids thread overhead on 2 cores)."""
    matmul_precision: Literal["float32", "bfloat16"] = "float32"
    """Precision of the updates' hidden-layer matrix products. bfloat16 runs each update under torch.autocast;
    weights, gradients, optimizer state and output layers stay float32. Faster only on CPUs with bfloat16 matrix
    units: with Intel AMX an MT10 update is 1.6-2.3x as fast on one thread, 1.3-1.8x on two
    (``benchmarks.sac_family_profile --precisions float32 bfloat16``)."""

    def validate(self) -> list[str]:
        bad = [k for k in ("total_steps", "num_envs", "batch_size", "update_every", "buffer_size", "eval_every",
                           "log_every", "checkpoint_every", "torch_threads", "eval_goal_sets") if getattr(self, k) <= 0]
        bad += [k for k in ("updates_per_round", "learning_starts", "noise_decay_steps", "hindsight_copies")
                if getattr(self, k) < 0]
        bad += [k for k in ("noise_start", "noise_end") if not 0 <= getattr(self, k) <= 1]
        if self.update_every % self.num_envs:
            bad.append("update_every (must be a multiple of num_envs)")
        if self.matmul_precision not in MATMUL_DTYPES:
            bad.append(f"matmul_precision ({self.matmul_precision!r} not in {', '.join(MATMUL_DTYPES)})")
        return bad

    def noise_std(self, step: int) -> float:
        frac = min(1.0, step / self.noise_decay_steps) if self.noise_decay_steps else 1.0
        return self.noise_start + frac * (self.noise_end - self.noise_start)


class RunLogger:
    """Namespaced scalars to CSV (one row per log call) and TensorBoard."""

    def __init__(self, out_dir: Path, resume: bool):
        from torch.utils.tensorboard import SummaryWriter

        self.path = out_dir / "metrics.csv"
        self.rows: list[dict] = []
        if resume and self.path.exists():
            with self.path.open() as f:
                self.rows = list(csv.DictReader(f))
        self.tb = SummaryWriter(str(out_dir / "tb"))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self.tb.add_scalar(k, v, step)
        self.rows.append({"step": step, **metrics})
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, keys)
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.path)

    def truncate(self, step: int) -> None:
        """Drop rows past ``step`` (logged after the checkpoint a resumed run restarts from)."""
        self.rows = [r for r in self.rows if int(float(r["step"])) <= step]

    def close(self) -> None:
        self.tb.close()


def checksum_path(path: Path) -> Path:
    """The sidecar of a checkpoint: SHA-256 digests (hex, one a line) its content must match."""
    return path.with_name(path.name + ".sha256")


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically, with its checksum: a kill during the save leaves the previous checkpoint intact.

    The sidecar is replaced first and lists the new digest and the one of the checkpoint it replaces, so a
    kill between the two replacements leaves a pair that still verifies.
    """
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    sidecar = checksum_path(path)
    previous = sidecar.read_text().split()[:1] if sidecar.exists() else \
        [sha256_file(path)] if path.exists() else []
    write_atomically(sidecar, "\n".join([sha256_file(tmp), *previous]) + "\n")
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    """A checkpoint, verified against its sidecar; CorruptFile naming it if it does not match or cannot be read.

    A checkpoint made before checksums existed (no sidecar) loads with a warning.
    """
    sidecar = checksum_path(path)
    if sidecar.exists():
        digest = sha256_file(path)
        if digest not in sidecar.read_text().split():
            raise CorruptFile(f"{path}: corrupt checkpoint (sha256 {digest[:12]}... is not the one recorded in "
                              f"{sidecar.name}); restore a copy, or delete both files to start the run over")
    else:
        print(f"warning: {path} has no checksum ({sidecar.name}, checkpoints made before checksums existed): "
              "loading it unverified", file=sys.stderr, flush=True)
    try:
        return torch.load(path, weights_only=False)
    except Exception as e:  # noqa: BLE001 - torch and pickle raise many types for a damaged file
        raise CorruptFile(f"{path}: unreadable checkpoint ({type(e).__name__}: {e})") from None


def add_relabeled(buffer: ReplayBuffer, env, episode: list, rng: np.random.Generator, reward_of: Callable) -> None:
    """Add one hindsight-relabeled copy of a finished lockstep episode."""
    obs, action, next_obs = (np.stack(x) for x in zip(*episode))
    r = env.relabel(obs, next_obs, rng)
    flat = obs.shape[0] * obs.shape[1]
    info = {k: v.reshape(flat, *v.shape[2:]) for k, v in r["info"].items()}
    buffer.add(obs=r["obs"].reshape(flat, -1), action=action.reshape(flat, -1),
               rewards=reward_of(r["reward"].reshape(flat), info), next_obs=r["next_obs"].reshape(flat, -1),
               terminated=np.zeros(flat), truncated=np.zeros(flat), task=np.zeros(flat))


def keep_freed_memory() -> None:
    """Make glibc's malloc keep freed memory for reuse instead of handing it back to the OS (no-op elsewhere).

    Every update allocates and frees the same activation and gradient tensors
    (MBs each at batch 1280). With glibc's default thresholds, big chunks are
    mmapped and unmapped and the top of the heap is trimmed, so the next update
    faults the same pages in again (measured per update at MT10 sizes: MTSAC
    1-2k page faults and 3-5 ms of kernel time, D-Grad(O) 5-15k and 12-38 ms).
    Here chunks up to 32 MB (glibc's maximum) come from the heap, and the heap
    is trimmed only past 1 GB free: the process keeps its peak footprint.
    Allocation only: numerics unchanged.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    libc = ctypes.CDLL(None)
    libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    libc.mallopt(m_trim_threshold, 1 << 30)


def crossed(step: int, advanced: int, interval: int) -> bool:
    """True when ``step`` passed a multiple of ``interval`` during the last ``advanced`` steps."""
    return step // interval > (step - advanced) // interval


def gym_vector_env(env_id: str, num_envs: int, **kwargs) -> VectorEnv:
    """``num_envs`` copies of a registered gymnasium env in this process, with same-step autoreset."""
    return gym.make_vec(env_id, num_envs, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **kwargs)


def check_same_step_autoreset(env: VectorEnv) -> None:
    """The loops read the last observation of an episode from ``info["final_obs"]`` (same-step autoreset)."""
    mode = env.metadata.get("autoreset_mode")
    if mode not in (AutoresetMode.SAME_STEP, AutoresetMode.SAME_STEP.value):
        raise ValueError(f"env autoreset_mode is {mode!r}; the training loops need AutoresetMode.SAME_STEP "
                         "(use gym_vector_env or vector_kwargs={'autoreset_mode': AutoresetMode.SAME_STEP})")


def action_scaler(space: gym.spaces.Box) -> Callable[[np.ndarray], np.ndarray]:
    """Map normalized actions (clipped to [-1, 1]) to the Box bounds of ``space``."""
    low, high = space.low.astype(np.float32), space.high.astype(np.float32)
    if np.all(low == -1) and np.all(high == 1):
        return lambda a: np.clip(a, -1.0, 1.0)
    return lambda a: low + (np.clip(a, -1.0, 1.0) + 1.0) * 0.5 * (high - low)


def final_observations(next_obs: np.ndarray, done: np.ndarray, info: dict) -> np.ndarray:
    """The observation each env reached this step: ``info["final_obs"]`` where an episode ended."""
    if not done.any():
        return next_obs
    final = next_obs.copy()
    final[done] = np.stack(info["final_obs"][done])
    return final


class EpisodeStats:
    """Undiscounted return and length of each finished training episode, plus the reach env's end-of-episode info."""

    def __init__(self, num_envs: int):
        self.returns, self.lengths = np.zeros(num_envs), np.zeros(num_envs, dtype=np.int64)
        self.finished: list[tuple[float, int]] = []
        self.reach: list[tuple[float, float, float]] = []

    def record(self, reward: np.ndarray, done: np.ndarray, info: dict) -> None:
        self.returns += reward
        self.lengths += 1
        if done.any():
            self.finished += zip(self.returns[done].tolist(), self.lengths[done].tolist())
            self.returns[done], self.lengths[done] = 0.0, 0
            fi = info.get("final_info", {})
            if "all_done" in fi:
                self.reach.append((fi["all_done"][done].mean(), fi["scores"][done].mean(), fi["errors"][done].mean()))

    def pop(self) -> dict[str, float]:
        """``train/`` metrics of the episodes finished since the last call."""
        out = {}
        if self.finished:
            r, n = np.mean(self.finished, axis=0)
            out = {"train/episode_return": r, "train/episode_length": n}
        if self.reach:
            s = np.mean(self.reach, axis=0)
            out.update({"train/success": s[0], "train/mean_score": s[1], "train/mean_error": s[2]})
        self.finished, self.reach = [], []
        return out


class UpdateMeans:
    """Sums of the metrics each update returns; ``pop`` gives their means since the last call as ``train/`` metrics.

    A row of metrics.csv then stands for every update since the previous row, not only the last one's values.
    """

    def __init__(self):
        self.sums: dict[str, torch.Tensor | float] = {}
        self.count = 0

    def add(self, metrics: dict[str, torch.Tensor | float]) -> None:
        for k, v in metrics.items():
            v = v.detach() if isinstance(v, torch.Tensor) else v
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.count += 1

    def pop(self) -> dict[str, float]:
        means = {f"train/{k}": float(v) / self.count for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


def env_rng_state(env: VectorEnv):
    """The random state of the env's episode draws: ``ReachVectorEnv._rng`` or each sub-env's ``np_random``."""
    if hasattr(env, "_rng"):
        return env._rng.bit_generator.state
    return [e.np_random.bit_generator.state for e in env.envs]


def set_env_rng_state(env: VectorEnv, state) -> None:
    if hasattr(env, "_rng"):
        env._rng.bit_generator.state = state
        return
    for e, s in zip(env.envs, state):
        e.np_random.bit_generator.state = s


def evaluate_returns(policy: Callable[[np.ndarray], np.ndarray], make_env: Callable[[int], VectorEnv],
                     episodes: int, seed: int) -> dict[str, float]:
    """Mean and std of the undiscounted return of one episode in each of ``episodes`` envs."""
    env = make_env(episodes)
    to_env = action_scaler(env.single_action_space)
    obs, _ = env.reset(seed=seed)
    returns, running = np.zeros(episodes), np.ones(episodes, dtype=bool)
    while running.any():
        obs, reward, terminated, truncated, _ = env.step(to_env(policy(obs)))
        returns += reward * running
        running &= ~(terminated | truncated)
    env.close()
    return {"return_mean": float(returns.mean()), "return_std": float(returns.std())}


class LogLines:
    """A stream for tqdm when stderr is a log file, not a terminal: each refresh is a line of its own (no ``\\r``)."""

    def __init__(self, stream):  # noqa: ANN001 - a text stream
        self.stream, self.last = stream, ""

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line and line != self.last:  # closing redraws the last state once more
            self.stream.write(line + "\n")
            self.last = line

    def flush(self) -> None:
        self.stream.flush()


class RunRecorder:
    """What both training loops share: the resume check, config.json, metric rows with throughput, the progress
    bar and atomic checkpoints (``run_config``, ``step``, ``last_eval`` and ``train_seconds`` plus what the loop
    adds).

    On a terminal the bar redraws itself; when stderr is a file (a harness cell's ``train.log``) it writes a
    line a minute instead, so a long run's log shows its step, rate and ETA.

    ``train_seconds`` is the run's wall time summed over its sessions (a resumed run continues the count from
    its checkpoint, so the time lost after the last checkpoint is not counted); every metric row logs it as
    ``perf/train_seconds``, so the time a run took to reach a result is read off ``metrics.csv``.
    """

    def __init__(self, out_dir: Path, run_config: RunConfig, total_steps: int, progress: bool):
        from tqdm import tqdm

        out_dir.mkdir(parents=True, exist_ok=True)
        self.ckpt_path, self.run_config = out_dir / "checkpoint.pt", run_config.record
        self.resumed: dict | None = None
        """The checkpoint this run resumes from, if any."""
        if self.ckpt_path.exists():
            self.resumed = load_checkpoint(self.ckpt_path)
            changed = run_config.differences(self.resumed["run_config"])
            if changed:
                raise RunRefused(f"{self.ckpt_path} was made with a different config ({', '.join(changed)}); "
                                 "use a new --out-dir or delete it")
            print(f"resuming {out_dir} from step {self.resumed['step']}", flush=True)
        self.step = self.resumed["step"] if self.resumed else 0
        self.last_eval: dict[str, float] = self.resumed["last_eval"] if self.resumed else {}
        self._seconds_before = self.resumed.get("train_seconds", 0.0) if self.resumed else 0.0
        self._session_start = time.perf_counter()
        (out_dir / "config.json").write_text(strict_json(self.run_config, indent=2))
        self.logger = RunLogger(out_dir, self.resumed is not None)
        self.logger.truncate(self.step)
        # In a log file: at most a line a minute (maxinterval too: tqdm's monitor thread redraws after it, 10 s).
        log_file = {"file": LogLines(sys.stderr), "ncols": 100, "mininterval": 60.0, "maxinterval": 60.0}
        self.bar = tqdm(total=total_steps, initial=self.step, disable=not progress, unit="step", smoothing=0.05,
                        **({"dynamic_ncols": True} if sys.stderr.isatty() else log_file))
        self._since = (time.perf_counter(), self.step)

    @property
    def train_seconds(self) -> float:
        """Wall seconds of training over all sessions of the run (see the class doc)."""
        return self._seconds_before + time.perf_counter() - self._session_start

    def advance(self, steps: int) -> None:
        self.step += steps
        self.bar.update(steps)

    def log(self, evaluation: dict[str, float] | None, metrics: dict[str, float]) -> None:
        """One row: ``eval/`` metrics (None: a row without an evaluation), the loop's metrics and env steps per
        second since the last row."""
        now = time.perf_counter()
        row = {f"eval/{k}": v for k, v in (evaluation or {}).items()} | metrics
        row["perf/steps_per_second"] = (self.step - self._since[1]) / (now - self._since[0])
        row["perf/train_seconds"] = self.train_seconds
        self._since = (now, self.step)
        self.logger.log(self.step, row)
        if evaluation is not None:
            self.last_eval = evaluation
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in list(evaluation.items())[:2]})

    def save(self, **state) -> None:
        save_checkpoint(self.ckpt_path, {"run_config": self.run_config, "step": self.step,
                                         "last_eval": self.last_eval, "train_seconds": self.train_seconds, **state})

    def close(self) -> None:
        self.bar.close()
        self.logger.close()


def train_off_policy(method: OffPolicyMethod, make_env: Callable[[int], VectorEnv], loop: LoopConfig,
                     out_dir: Path, seed: int, evaluate: Callable[[OffPolicyMethod], dict[str, float]],
                     reward_of: Callable[[np.ndarray, dict], np.ndarray] | None, run_config: RunConfig,
                     progress: bool = True,
                     make_buffer: Callable[[int, int, int, int], ReplayBuffer] = ReplayBuffer) -> dict[str, float]:
    """Run (or resume) training; returns the last evaluation's metrics.

    ``reward_of(reward, info)`` turns an env step into the (N, n_rewards)
    rewards the method learns from (None: the env's scalar reward). A
    truncated transition stores the episode's real last observation
    (``info["final_obs"]``) and is not terminal; ``info["task"]``, when the
    env gives it, is stored as the task index. With ``hindsight_copies`` the
    env's ``relabel`` (lockstep episodes) adds goal-relabeled copies of each
    episode. Resumes from ``out_dir/checkpoint.pt`` if it exists and was made
    with the same ``run_config``. ``make_buffer(capacity, obs_size,
    action_size, n_rewards)`` builds the replay (e.g. one buffer per task).
    """
    if bad := loop.validate():
        raise ValueError("invalid LoopConfig value(s): " + ", ".join(bad))
    torch.set_num_threads(loop.torch_threads)
    keep_freed_memory()
    run = RunRecorder(out_dir, run_config, loop.total_steps, progress)
    env = make_env(loop.num_envs)
    check_same_step_autoreset(env)
    reward_of = reward_of or (lambda reward, info: reward[:, None])
    to_env = action_scaler(env.single_action_space)
    transitions = loop.total_steps * (1 + loop.hindsight_copies)
    buffer = make_buffer(min(loop.buffer_size, transitions), env.single_observation_space.shape[0],
                          env.single_action_space.shape[0], method.n_rewards)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    if run.resumed:
        method.load_state_dict(run.resumed["method"])
        buffer.load_state_dict(run.resumed["buffer"])
        gen.set_state(run.resumed["torch_rng"])
        rng.bit_generator.state = run.resumed["np_rng"]
        set_env_rng_state(env, run.resumed["env_rng"])
    obs, _ = env.reset(seed=None if run.resumed else seed)
    stats = EpisodeStats(loop.num_envs)
    update_means = UpdateMeans()
    no_task = np.zeros(loop.num_envs, dtype=np.int64)
    precision = update_precision(loop.matmul_precision)  # entered once per update
    episode: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    while run.step < loop.total_steps:
        noise = loop.noise_std(run.step)
        action = method.act(obs, noise) if run.step >= loop.learning_starts else \
            rng.uniform(-1, 1, (loop.num_envs, env.single_action_space.shape[0])).astype(np.float32)
        next_obs, reward, terminated, truncated, info = env.step(to_env(action))
        done = terminated | truncated
        final_obs = final_observations(next_obs, done, info)
        buffer.add(obs=obs, action=action, rewards=reward_of(reward, info), next_obs=final_obs,
                   terminated=terminated, truncated=truncated, task=info.get("task", no_task))
        stats.record(reward, done, info)
        if loop.hindsight_copies:
            episode.append((obs, action, final_obs))
        if truncated.any():
            for _ in range(loop.hindsight_copies):
                add_relabeled(buffer, env, episode, rng, reward_of)
            episode.clear()
        obs = next_obs
        run.advance(loop.num_envs)
        step = run.step
        learning = step >= loop.learning_starts and loop.updates_per_round > 0
        if learning and step % loop.update_every == 0:
            for batch in buffer.sample(loop.batch_size, gen, loop.updates_per_round):
                with precision:
                    update_means.add(method.update(batch))
        finished = step >= loop.total_steps
        evaluating = crossed(step, loop.num_envs, loop.eval_every) or finished
        if evaluating or crossed(step, loop.num_envs, loop.log_every):
            run.log(evaluate(method) if evaluating else None,
                    stats.pop() | {"train/noise_std": noise} | update_means.pop())
        if crossed(step, loop.num_envs, loop.checkpoint_every) or finished:
            run.save(method=method.state_dict(), buffer=buffer.state_dict(), torch_rng=gen.get_state(),
                     np_rng=rng.bit_generator.state, env_rng=env_rng_state(env))
    run.close()
    env.close()
    return run.last_eval
