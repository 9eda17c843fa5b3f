"""The record of a training run: its settings, its config record and the resume check, metric rows, the progress
bar, checksummed checkpoints and the final ``eval.json``.

Every checkpoint holds the run's config record (``config_dict``: plain JSON
values) and plain states (``state_dict``s, tensors, numbers, lists and dicts):
no pickled class, so a checkpoint stays loadable when modules move.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import torch

from mtpolicy.integrity import CorruptFile, sha256_file, strict_json
from mtpolicy_training.core.files import write_atomically, write_failure


@dataclass(kw_only=True)
class RunSettings:
    """What every training run is given, in the words every trainer and the harness share."""

    budget_steps: int
    """Environment steps of the run (summed over the parallel envs)."""
    seed: int = 1
    """Seed of the networks, the exploration and the training episodes."""
    out_dir: Path
    """Run folder: config.json, metrics.csv, TensorBoard logs, checkpoint.pt, eval.json (and exported policies)."""
    progress: bool = True
    """Show a progress bar."""

    COMMAND: ClassVar[str] = ""
    """The command that trains it (``train <family>``), recorded in its config record."""

    def validate_settings(self) -> list[str]:
        """The settings of this base that are out of range, by name."""
        return ["budget_steps"] if self.budget_steps <= 0 else []


def config_dict(config) -> dict:  # noqa: ANN001 - any training-config dataclass
    """JSON-able config, with the ``command`` that trains it: what a checkpoint must match to be resumed.
    ``progress`` (display), ``loop.torch_threads``, ``loop.teacher_workers`` (speed) and ``loop.log_every``
    (bookkeeping) are left out: a run may resume with any of them changed."""
    record = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    return without_run_only(record | ({"command": config.COMMAND} if getattr(config, "COMMAND", "") else {}))


def without_run_only(record: dict) -> dict:
    """``record`` less the settings a resumed run may change (checkpoints made before ``config_dict`` left
    ``loop.torch_threads`` out still hold it)."""
    loop = {k: v for k, v in record.get("loop", {}).items() if k not in ("torch_threads", "teacher_workers",
                                                                           "log_every")}
    return {k: v for k, v in record.items() if k != "progress"} | ({"loop": loop} if "loop" in record else {})


def read_run_config(run_dir: Path) -> dict:
    """A run's config.json."""
    return json.loads((run_dir / "config.json").read_text())


@dataclass(frozen=True)
class RunConfig:
    """A run's config record and its type's defaults, for the resume check."""

    record: dict
    """``config_dict`` of the run's config: saved in every checkpoint and in config.json."""
    defaults: dict
    """``config_dict`` of the config type's defaults."""
    before_options: dict = field(default_factory=dict)
    """Options added with a default that changed what the run does, by dotted name: the value that does what a
    run did before the option existed (a config's ``behaviour_before_options()``, if it has one)."""

    @classmethod
    def of(cls, config) -> "RunConfig":  # noqa: ANN001 - any training-config dataclass with defaults
        before = config.behaviour_before_options() if hasattr(config, "behaviour_before_options") else {}
        return cls(config_dict(config), config_dict(type(config)()), before)

    def differences(self, recorded: dict) -> list[str]:
        """Dotted names of the settings in which ``recorded`` (a checkpoint's record) differs from this run.

        A setting absent from the record (an option added after the checkpoint
        was made) matches when this run leaves it at its default, which by
        convention reproduces the behaviour from before the option existed,
        or else at its value in ``before_options``. ``out_dir`` is not
        compared: a run directory may be moved or copied and resumed there,
        nor are the settings a resumed run may change (``without_run_only``).
        """
        recorded = relocatable(without_run_only(recorded))
        return _differences(recorded, relocatable(self.record), self.defaults, self.before_options, "")


def relocatable(record: dict) -> dict:
    """``record`` less its ``out_dir``: a run directory may be moved or copied and resumed from where it is."""
    return {k: v for k, v in record.items() if k != "out_dir"}


def _differences(recorded: dict, current: dict, defaults: dict, before: dict, prefix: str) -> list[str]:
    out = []
    for key in sorted(set(recorded) | set(current)):
        name = prefix + key
        if key not in current:
            out.append(name)
        elif key not in recorded:
            if current[key] != before.get(name, defaults.get(key)):
                out.append(name)
        elif isinstance(recorded[key], dict) and isinstance(current[key], dict):
            out += _differences(recorded[key], current[key], defaults.get(key) or {}, before, name + ".")
        elif recorded[key] != current[key]:
            out.append(name)
    return out


class RunRefused(ValueError):
    """A run cannot start or finish as asked: the message says why (the training command prints it as one line)."""


def write_eval(path: Path, metrics: dict[str, float], train_seconds: float) -> dict[str, float]:
    """Write ``metrics`` plus ``train_wall_seconds_this_session`` as strict JSON to ``path``; return that dict."""
    record = {**metrics, "train_wall_seconds_this_session": train_seconds}
    write_atomically(path, strict_json(record, indent=2))
    return record


HEADLINE_METRICS = ("success_rate", "mean_return")
"""What makes one final evaluation better than another: the first of these both have, higher is better."""


def publish_final(out_dir: Path, metrics: dict[str, float], train_seconds: float,
                  export: Callable[[dict[str, float], Path], object] | None = None) -> dict[str, float]:
    """Write a run's final evaluation to ``eval.json`` and, with ``export(record, path)``, its ``policy.onnx`` (or
    the files ``export`` returns a list of: one per variant, ``ship.export.export_variant_policies``).

    They never silently replace better ones: a non-finite headline metric (HEADLINE_METRICS) writes nothing
    (RunRefused); if the existing eval.json has a better one, it and policy.onnx stay, this run's go to
    ``eval.rejected.json`` and ``policy.rejected.onnx``, and a warning says so. ``export`` is expected to
    refuse a non-finite policy. Returns the record (metrics plus ``train_wall_seconds_this_session``).
    """
    record = {**metrics, "train_wall_seconds_this_session": train_seconds}
    key = next((k for k in HEADLINE_METRICS if k in record), None)
    if key is not None and not math.isfinite(record[key]):
        raise RunRefused(f"the final evaluation's {key} is {record[key]}: {out_dir}/eval.json and policy.onnx "
                         "left as they were")
    eval_path, policy_path = out_dir / "eval.json", out_dir / "policy.onnx"
    previous = _headline(eval_path, key)
    if key is not None and previous is not None and record[key] < previous:
        eval_path, policy_path = out_dir / "eval.rejected.json", out_dir / "policy.rejected.onnx"
        print(f"warning: this run's {key} {record[key]:.4g} is worse than the {previous:.4g} of the existing "
              f"{out_dir}/eval.json: kept it{' and policy.onnx' if export else ''}; wrote {eval_path.name}"
              f"{' and ' + policy_path.name if export else ''} instead", file=sys.stderr, flush=True)
    exported = export(record, policy_path) if export is not None else None
    written = write_eval(eval_path, metrics, train_seconds)
    policies = ", ".join(map(str, exported if isinstance(exported, list) else [policy_path]))  # a list: per variant
    print(f"final evaluation: {eval_path}" + (f"; policy: {policies}" if export is not None else ""), flush=True)
    return written


def _headline(path: Path, key: str | None) -> float | None:
    """The finite headline metric ``key`` of an existing evaluation file, or None."""
    if key is None or not path.exists():
        return None
    try:
        value = json.loads(path.read_text()).get(key)
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


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
    kill between the two replacements leaves a pair that still verifies. A failed write (a full disk) leaves
    the previous checkpoint and its sidecar as they were, and no temporary file, and raises RunRefused, naming
    the file and the free space: torch reports an OSError of the file it writes as an internal RuntimeError
    ("unexpected pos", the OSError its context), given a path or a file.
    """
    tmp = path.with_suffix(".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
        sidecar = checksum_path(path)
        previous = sidecar.read_text().split()[:1] if sidecar.exists() else \
            [sha256_file(path)] if path.exists() else []
        write_atomically(sidecar, "\n".join([sha256_file(tmp), *previous]) + "\n")
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        cause = e if isinstance(e, OSError) else e.__context__ if isinstance(e, RuntimeError) else None
        if not isinstance(cause, OSError):
            raise
        kept = "the previous checkpoint is kept" if path.exists() else "no checkpoint written"
        raise RunRefused(f"{write_failure(path, cause)}; {kept}") from None


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
    """What every training loop shares: the resume check, config.json, metric rows with throughput, the progress
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

    def continue_from(self, seconds: float) -> None:
        """Count the run's training time from ``seconds`` already spent (a run started again from partial results
        saved before its first checkpoint)."""
        self._seconds_before = max(self._seconds_before, seconds)

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
