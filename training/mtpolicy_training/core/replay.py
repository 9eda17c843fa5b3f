"""Replay: minibatches, a ring buffer, task-specific replay and hindsight copies of finished episodes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


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
            "rewards": torch.zeros(capacity, n_rewards, dtype=f32),
            "next_obs": torch.zeros(capacity, obs_size, dtype=f32),
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


def add_relabeled(buffer: ReplayBuffer, env, episode: list, rng: np.random.Generator, reward_of: Callable) -> None:
    """Add one hindsight-relabeled copy of a finished lockstep episode."""
    obs, action, next_obs = (np.stack(x) for x in zip(*episode))
    r = env.relabel(obs, next_obs, rng)
    flat = obs.shape[0] * obs.shape[1]
    info = {k: v.reshape(flat, *v.shape[2:]) for k, v in r["info"].items()}
    buffer.add(obs=r["obs"].reshape(flat, -1), action=action.reshape(flat, -1),
               rewards=reward_of(r["reward"].reshape(flat), info), next_obs=r["next_obs"].reshape(flat, -1),
               terminated=np.zeros(flat), truncated=np.zeros(flat), task=np.zeros(flat))



class TaskReplayBuffer(ReplayBuffer):
    """Task-specific replay: one ring buffer per task (segments of one storage), each batch equal parts per task.

    A batch of B holds B / n_tasks samples of every task, task-major (so
    ``Batch.task`` is 0..0, 1..1, ...), drawn uniformly within each task's
    buffer; ``capacity`` is split equally between the tasks.
    """

    def __init__(self, capacity: int, obs_size: int, action_size: int, n_rewards: int, n_tasks: int):
        self.n_tasks, self.per_task = n_tasks, capacity // n_tasks
        super().__init__(self.per_task * n_tasks, obs_size, action_size, n_rewards)
        self.sizes, self.positions = [0] * n_tasks, [0] * n_tasks

    def add(self, **fields: np.ndarray) -> None:
        """Each row to the ring of its task, in arrival order (one scatter per field for all tasks)."""
        task = np.asarray(fields["task"]).astype(np.int64)
        n = len(task)
        counts = np.bincount(task, minlength=self.n_tasks)
        by_task = np.argsort(task, kind="stable")
        rank = np.empty(n, dtype=np.int64)  # the row's place among this call's rows of its task
        rank[by_task] = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
        positions = np.asarray(self.positions)
        idx = torch.as_tensor(task * self.per_task + (positions[task] + rank) % self.per_task)
        for k in self.FIELDS:
            value = torch.as_tensor(np.asarray(fields[k])).to(self.data[k].dtype)
            self.data[k][idx] = value.reshape(n, *self.data[k].shape[1:])
        self.positions = ((positions + counts) % self.per_task).tolist()
        self.sizes = np.minimum(np.asarray(self.sizes) + counts, self.per_task).tolist()
        self.size = sum(self.sizes)

    def sample(self, batch_size: int, generator: torch.Generator, rounds: int = 1) -> list[Batch]:
        if batch_size % self.n_tasks or min(self.sizes) == 0:
            raise ValueError(f"batch_size={batch_size} must be a multiple of n_tasks={self.n_tasks} and every task "
                             f"needs data (per-task sizes {self.sizes})")
        per = batch_size // self.n_tasks
        sizes = torch.tensor(self.sizes, dtype=torch.float64)[None, :, None]
        draw = (torch.rand(rounds, self.n_tasks, per, generator=generator, dtype=torch.float64) * sizes).long()
        idx = (draw + torch.arange(self.n_tasks)[None, :, None] * self.per_task).reshape(-1)
        fields = {k: v[idx].split(batch_size) for k, v in self.data.items()}
        return [Batch(**{k: v[i] for k, v in fields.items()}) for i in range(rounds)]

    def state_dict(self) -> dict:
        return {"sizes": list(self.sizes), "positions": list(self.positions),
                "data": {k: [v[t * self.per_task:t * self.per_task + s].clone() for t, s in enumerate(self.sizes)]
                         for k, v in self.data.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.sizes, self.positions = list(state["sizes"]), list(state["positions"])
        self.size = sum(self.sizes)
        for k, parts in state["data"].items():
            for t, part in enumerate(parts):
                self.data[k][t * self.per_task:t * self.per_task + len(part)] = part
