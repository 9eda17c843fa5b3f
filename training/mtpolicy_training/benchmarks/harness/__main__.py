"""``python -m mtpolicy_training.benchmarks.harness PRESET [options]``: run a grid, print its table."""

import sys

import tyro

from mtpolicy_training.benchmarks.harness.grid import PRESETS
from mtpolicy_training.benchmarks.harness.run import run_grid


def main(argv: list[str] | None = None) -> None:
    spec = tyro.extras.overridable_config_cli(PRESETS, prog="python -m mtpolicy_training.benchmarks.harness", args=argv)
    try:
        print(run_grid(spec))
    except (ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
