"""What every training entry point shares: the resumable config record and the tyro ``main``."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import tyro

Config = TypeVar("Config")


def config_dict(config) -> dict:  # noqa: ANN001 - any training-config dataclass
    """JSON-able config: what a checkpoint must match to be resumed. ``progress`` (display),
    ``loop.torch_threads`` (speed) and ``loop.log_every`` (bookkeeping) are left out: a run may resume with any
    of them changed."""
    return without_run_only(json.loads(json.dumps(dataclasses.asdict(config), default=str)))


def without_run_only(record: dict) -> dict:
    """``record`` less the settings a resumed run may change (checkpoints made before ``config_dict`` left
    ``loop.torch_threads`` out still hold it)."""
    loop = {k: v for k, v in record.get("loop", {}).items() if k not in ("torch_threads", "log_every")}
    return {k: v for k, v in record.items() if k != "progress"} | ({"loop": loop} if "loop" in record else {})


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
        or else at its value in ``before_options``.
        """
        return _differences(without_run_only(recorded), self.record, self.defaults, self.before_options, "")


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


def write_new_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it exists, atomically: processes writing or reading it at once (vector
    envs building one model, harness drivers on one grid) never see a partial file."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_eval(path: Path, metrics: dict[str, float], train_seconds: float) -> dict[str, float]:
    """Write ``metrics`` plus ``train_wall_seconds_this_session`` as JSON to ``path``; return that dict."""
    record = {**metrics, "train_wall_seconds_this_session": train_seconds}
    path.write_text(json.dumps(record, indent=2))
    return record


def train_main(config_type: type[Config], run: Callable[[Config], dict[str, float]], argv: list[str] | None,
               digits: int = 4) -> None:
    """Parse ``argv`` into ``config_type`` (a bad value exits naming it), ``run`` it, print its final metrics."""
    try:
        config = tyro.cli(config_type, args=argv)
    except ValueError as e:
        sys.exit(f"error: {e}")
    final = run(config)
    print(json.dumps({k: round(v, digits) for k, v in final.items()}, indent=2))
