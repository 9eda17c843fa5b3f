"""A task family run's checkpoint and replay, rebuilt for probes that put the run's own minibatches through
updates from the checkpoint's state: each from it (``gradient_conflicts``, ``picor_constraint``) or one after
another (``picor_constraint --sequential``, ``optimizer_steps``)."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mtpolicy_training.algos.picor import PiCorFamilyConfig
from mtpolicy_training.algos.sac import SACConfig
from mtpolicy_training.algos.sac_family import SACFamily, SACFamilyConfig
from mtpolicy_training.core.offpolicy import update_precision
from mtpolicy_training.core.replay import TaskReplayBuffer
from mtpolicy_training.core.run_record import load_checkpoint

PROBED_METHODS = ("mtsac", "dgrad-o", "picor")
"""Runs whose networks are MTSAC's (actor and twin critic on [state, one_hot(z)]), so any of their updates applies."""


@dataclass
class RunCheckpoint:
    """What a probe rebuilds from a task family run's ``config.json`` and ``checkpoint.pt``."""

    step: int
    """Env step of the checkpoint."""
    family: SACFamilyConfig
    """mtsac networks at the run's widths and its SAC settings."""
    state: dict
    """The method's state_dict (networks, temperatures, optimizers)."""
    buffer: TaskReplayBuffer
    """The run's replay."""
    batch_per_task: int
    """The run's ``batch_per_task`` option (an MTSAC-family minibatch holds that many rows of every task)."""
    n_tasks: int
    state_size: int
    """Observation size without the one-hot."""
    action_size: int
    matmul_precision: str
    """The run's ``loop.matmul_precision``: its updates' products, and the probes'."""

    def start_for(self, method: SACFamily) -> dict:
        """The checkpoint's state for ``method``, completed by ``method``'s own where the run's method has no such
        part (PiCor's task draws and correction optimizer, fresh, for an mtsac or dgrad-o run)."""
        return {**method.state_dict(), **self.state}


def load_run(run_dir: Path) -> RunCheckpoint:
    """The run's checkpoint, networks and replay; a clear error for a run that is not an MTSAC-network one."""
    record = json.loads((run_dir / "config.json").read_text())
    algo, loop = record["algo"], record["loop"]
    if algo["method"] not in PROBED_METHODS:
        raise ValueError(f"{run_dir}: method {algo['method']!r}; only {', '.join(PROBED_METHODS)} runs have "
                         "MTSAC's networks")
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    replay = checkpoint["buffer"]
    if "sizes" not in replay:
        raise ValueError(f"{run_dir}: not a task family's run (its replay has no per-task buffers)")
    n_tasks = len(replay["sizes"])
    obs_size, action_size = (replay["data"][k][0].shape[1] for k in ("obs", "action"))
    sac = SACConfig(**{**algo["sac"], "hidden": tuple(algo["sac"]["hidden"])})
    widths = PiCorFamilyConfig(method=algo["method"], sac=sac, paper_hidden=algo["paper_hidden"]).hidden
    family = SACFamilyConfig(method="mtsac", sac=dataclasses.replace(sac, hidden=widths), paper_hidden=False)
    buffer = TaskReplayBuffer(loop["buffer_size"], obs_size, action_size, 1, n_tasks)
    buffer.load_state_dict(replay)
    return RunCheckpoint(checkpoint["step"], family, checkpoint["method"], buffer, record["batch_per_task"], n_tasks,
                         obs_size - n_tasks, action_size, loop.get("matmul_precision", "float32"))


def replay_updates(method: SACFamily, states: Iterable[dict | None], run: RunCheckpoint, seed: int,
                   batch_per_task: int | None = None) -> Iterator[dict[str, float]]:
    """The metrics of one ``method.update`` per entry of ``states``, each on its own replay minibatch of
    ``batch_per_task`` samples per task (default the run's option), in the run's matrix-product precision. A
    state is loaded before its update, as a copy: torch's optimizers keep a loaded dict's tensors as their own
    moments and step them in place, so a state loaded itself would start later loads from where the update left
    it. None continues from the previous update's state. Each minibatch is drawn when its update is taken (the
    same draws as all at once, in bounded memory)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    batch_size = (run.batch_per_task if batch_per_task is None else batch_per_task) * run.n_tasks
    for state in states:
        batch = run.buffer.sample(batch_size, generator)[0]
        if state is not None:
            method.load_state_dict(copy.deepcopy(state))
        with update_precision(run.matmul_precision):
            yield {k: float(v) for k, v in method.update(batch).items()}


def mean_std(rows: list[dict[str, float]], keys: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Mean and std over ``rows`` of each of ``keys``."""
    values = {k: np.array([row[k] for row in rows]) for k in keys}
    return {k: (float(v.mean()), float(v.std())) for k, v in values.items()}
