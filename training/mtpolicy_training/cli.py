"""What every training entry point shares: the resumable config record and the tyro ``main``."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import tyro

from mtpolicy.integrity import CorruptFile, strict_json

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
        or else at its value in ``before_options``. ``out_dir`` is not
        compared: a run directory may be moved or copied and resumed there.
        """
        return _differences(relocatable(without_run_only(recorded)), relocatable(self.record), self.defaults,
                            self.before_options, "")


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


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file: a reader or a kill never sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_new_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it exists, atomically: processes writing or reading it at once (vector
    envs building one model, harness drivers on one grid) never see a partial file."""
    if not path.exists():
        write_atomically(path, text)


def write_eval(path: Path, metrics: dict[str, float], train_seconds: float) -> dict[str, float]:
    """Write ``metrics`` plus ``train_wall_seconds_this_session`` as strict JSON to ``path``; return that dict."""
    record = {**metrics, "train_wall_seconds_this_session": train_seconds}
    write_atomically(path, strict_json(record, indent=2))
    return record


HEADLINE_METRICS = ("success_rate", "mean_return")
"""What makes one final evaluation better than another: the first of these both have, higher is better."""


def publish_final(out_dir: Path, metrics: dict[str, float], train_seconds: float,
                  export: Callable[[dict[str, float], Path], object] | None = None) -> dict[str, float]:
    """Write a run's final evaluation to ``eval.json`` and, with ``export(record, path)``, its ``policy.onnx``.

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
    if previous is not None and record[key] < previous:
        eval_path, policy_path = out_dir / "eval.rejected.json", out_dir / "policy.rejected.onnx"
        print(f"warning: this run's {key} {record[key]:.4g} is worse than the {previous:.4g} of the existing "
              f"{out_dir}/eval.json: kept it{' and policy.onnx' if export else ''}; wrote {eval_path.name}"
              f"{' and ' + policy_path.name if export else ''} instead", file=sys.stderr, flush=True)
    if export is not None:
        export(record, policy_path)
    return write_eval(eval_path, metrics, train_seconds)


def _headline(path: Path, key: str | None) -> float | None:
    """The finite headline metric ``key`` of an existing evaluation file, or None."""
    if key is None or not path.exists():
        return None
    try:
        value = json.loads(path.read_text()).get(key)
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


class RunRefused(ValueError):
    """A run cannot start or finish as asked: the message says why (the entry points print it as one line)."""


def one_line_tyro_error(text: str) -> str:
    """The message of a tyro error box (its text after the title, up to the next rule), as one line; tyro draws
    the box in Unicode or, on a stream that is not UTF-8, in ASCII."""
    rule = set("─-+╭╮╰╯ ")
    lines = [c for c in (line.strip().strip("│|").strip() for line in text.splitlines()) if c][1:]
    while lines and set(lines[0]) <= rule:
        lines.pop(0)
    message = []
    for line in lines:
        if set(line) <= rule:
            break
        message.append(line)
    return " ".join(message) or text.strip()


def parse_config(config_type: type[Config], argv: list[str] | None) -> Config:
    """``argv`` parsed into ``config_type``; a bad value or option exits 2 with a one-line error naming it."""
    captured = io.StringIO()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100000"  # tyro wraps its error box to the terminal width: keep the message whole
    try:
        with contextlib.redirect_stderr(captured):
            config = tyro.cli(config_type, args=argv)
    except SystemExit as e:
        if e.code:
            print(f"error: {one_line_tyro_error(captured.getvalue())}", file=sys.stderr)
        else:
            sys.stderr.write(captured.getvalue())
        raise
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    sys.stderr.write(captured.getvalue())
    seed = getattr(config, "seed", 0)
    if not 0 <= seed < 2 ** 32:
        print(f"error: --seed must be in [0, 2**32), got {seed}", file=sys.stderr)
        raise SystemExit(2)
    return config


def train_main(config_type: type[Config], run: Callable[[Config], dict[str, float]], argv: list[str] | None,
               digits: int = 4) -> None:
    """Parse ``argv`` into ``config_type`` (a bad value exits naming it, in one line), ``run`` it, print its final
    metrics. A run refused on the way (a corrupt checkpoint, another run's directory, a non-finite result) exits
    1 with a one-line error."""
    config = parse_config(config_type, argv)
    try:
        final = run(config)
    except (RunRefused, CorruptFile) as e:
        sys.exit(f"error: {e}")
    print(strict_json({k: round(v, digits) for k, v in final.items()}, indent=2))
