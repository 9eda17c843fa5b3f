"""``python -m mtpolicy_training.train <family> [options]`` (``train/cli.py``)."""

from mtpolicy_training.train.cli import main

if __name__ == "__main__":
    main()
