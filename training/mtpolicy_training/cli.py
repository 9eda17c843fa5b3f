"""What every training entry point shares: the resumable config record and the tyro ``main``."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Callable, TypeVar

import tyro

Config = TypeVar("Config")


def config_dict(config) -> dict:  # noqa: ANN001 - any training-config dataclass
    """JSON-able config: what a checkpoint must match to be resumed (``progress`` is display only)."""
    d = dataclasses.asdict(config)
    d.pop("progress", None)
    return json.loads(json.dumps(d, default=str))


def train_main(config_type: type[Config], run: Callable[[Config], dict[str, float]], argv: list[str] | None,
               digits: int = 4) -> None:
    """Parse ``argv`` into ``config_type`` (a bad value exits naming it), ``run`` it, print its final metrics."""
    try:
        config = tyro.cli(config_type, args=argv)
    except ValueError as e:
        sys.exit(f"error: {e}")
    final = run(config)
    print(json.dumps({k: round(v, digits) for k, v in final.items()}, indent=2))
