"""``python -m benchmarks.harness PRESET [options]``: run a grid, print its table."""

import sys

import tyro

from benchmarks.harness.grid import PRESETS
from benchmarks.harness.run import run_grid


def main(argv: list[str] | None = None) -> None:
    spec = tyro.extras.overridable_config_cli(PRESETS, prog="python -m benchmarks.harness", args=argv)
    try:
        print(run_grid(spec))
    except (ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
