"""The trainer skeleton every family runs, and the one schema of its run records.

    validate -> train (periodic evaluations; the best one's policy kept) -> export + final evaluation
             -> the best policy's final evaluation

A family builds a ``Trainer`` (its loop, its final evaluation, its export)
and calls ``run_trainer``; the loops (``core/offpolicy.py``,
``core/onpolicy.py``, DAgger's own iterations) offer each periodic evaluation
to its ``BestRun``.

The run records, for every family:

* ``eval.json``, ``best_eval.json``: metrics plus ``train_wall_seconds_this_session``;
* ``best.json`` and ``best_eval.json`` also say when the best policy was found (``BEST_KEYS``): ``step`` (env
  steps), ``found_after_train_seconds`` (training wall time over all sessions of the run) and the family's own
  count (``iteration``: DAgger, ``updates``: DiGrad).

Records made before (DiGrad's ``found_after_session_seconds``) are read with ``read_best``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mtpolicy.integrity import strict_json
from mtpolicy_training.core.files import write_atomically
from mtpolicy_training.core.run_record import HEADLINE_METRICS, publish_final, write_eval

if TYPE_CHECKING:
    from _typeshed import SupportsDunderGT

BEST_KEYS = ("step", "found_after_train_seconds", "iteration", "updates")
"""What a best-run record says of when its policy was found (the last two: the families that count them)."""

OLD_BEST_KEYS = {"found_after_session_seconds": "found_after_train_seconds"}
"""Keys of best-run records made before the one schema -> today's (a run of one session: the same seconds)."""


def migrate_best(record: dict) -> dict:
    """A best-run record (best.json, best_eval.json) in today's schema."""
    out = dict(record)
    for old, new in OLD_BEST_KEYS.items():
        if old in out:
            out.setdefault(new, out.pop(old))
    return out


def read_best(path: Path) -> dict:
    """The best-run record at ``path`` in today's schema ({} when there is none)."""
    return migrate_best(json.loads(path.read_text())) if path.exists() else {}


def headline(metrics: dict) -> float:
    """The default order of evaluations: the first of ``HEADLINE_METRICS`` they have (held success, mean
    return)."""
    return next((metrics[k] for k in HEADLINE_METRICS if k in metrics), float("-inf"))


def reach_key(metrics: dict) -> tuple[float, float]:
    """The order of reach validations, best last: held success, then the shorter median time to reach (a policy
    that holds as often and is faster is better; without it a start that holds would never be replaced). A time
    not measured (NaN, or None as a record read back from JSON keeps it) ranks last."""
    time = metrics.get("time_to_reach_median")
    return metrics["success_rate"], -time if time is not None and math.isfinite(time) else -math.inf


@dataclass
class BestRun:
    """The best of a run's periodic (validation) evaluations: ``best.json`` (its metrics and ``BEST_KEYS``) and,
    with ``export``, its policy in ``best_policy.onnx``, written when it is found. Continues an earlier session's
    record."""

    out_dir: Path
    export: Callable[[dict, Path], object] | None = None
    """Exports the current policy with these metrics to a path (None: a family without an exported policy)."""
    key: Callable[[dict], SupportsDunderGT[Any]] = headline
    """Orders evaluations, best last."""
    extra: Callable[[], dict] = dict
    """The family's own count at the time (``{"updates": ...}``)."""
    record: dict = field(default_factory=dict)
    """The best so far ({}: none), in today's schema."""

    def __post_init__(self):
        self.record = migrate_best(self.record) or read_best(self.path)

    @property
    def path(self) -> Path:
        return self.out_dir / "best.json"

    @property
    def policy_path(self) -> Path:
        return self.out_dir / "best_policy.onnx"

    def offer(self, metrics: dict, step: int, train_seconds: float, **extra) -> bool:
        """Keep ``metrics`` (export the policy, write best.json) if they beat the best so far; True if they did."""
        if self.record and not self.key(metrics) > self.key(self.record):
            return False
        self.record = {**metrics, "step": step, "found_after_train_seconds": train_seconds, **self.extra(), **extra}
        if self.export is not None:
            self.export(metrics, self.policy_path)
        write_atomically(self.path, strict_json(self.record, indent=2))
        return True

    def found(self) -> dict:
        """When the best policy was found (``BEST_KEYS`` it has)."""
        return {k: self.record[k] for k in BEST_KEYS if k in self.record}


@dataclass
class Trainer:
    """What a family gives the skeleton."""

    out_dir: Path
    train: Callable[[], float | None]
    """Trains (or resumes) to the budget, with periodic evaluations (offered to ``best``); returns the training wall
    seconds to record (None: this session's, timed by the skeleton)."""
    final_evaluation: Callable[[], dict[str, float]]
    """The last policy's final evaluation."""
    export: Callable[[dict, Path], object] | None = None
    """Exports the last policy with its final metrics (None: a family without an exported policy)."""
    best: BestRun | None = None
    """The best-run record of the periodic evaluations (None: the family keeps none)."""
    evaluate_best: Callable[[Path], dict[str, float]] | None = None
    """The final evaluation of the best policy (its ONNX file), written to best_eval.json."""
    problems: list[str] = field(default_factory=list)
    """Settings out of range, by name (validated before anything runs)."""
    check: Callable[[], object] | None = None
    """Refuses a diverged policy (raises) before its final evaluation."""


def run_trainer(trainer: Trainer) -> dict[str, float]:
    """Validate, train, check, publish the final evaluation (eval.json, and policy.onnx with ``export``; never over
    a better one: ``publish_final``), evaluate the best policy; returns the final record."""
    if trainer.problems:
        raise ValueError("invalid config value(s): " + ", ".join(trainer.problems))
    t0 = time.perf_counter()
    seconds = trainer.train()
    seconds = time.perf_counter() - t0 if seconds is None else seconds
    if trainer.check is not None:
        trainer.check()
    final = publish_final(trainer.out_dir, trainer.final_evaluation(), seconds, trainer.export)
    best = trainer.best
    if best is not None and trainer.evaluate_best is not None and best.policy_path.exists():
        write_eval(trainer.out_dir / "best_eval.json", {**trainer.evaluate_best(best.policy_path), **best.found()},
                   seconds)
    return final
