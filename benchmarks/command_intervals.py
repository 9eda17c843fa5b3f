"""How late the commands of a recorded demo came: the intervals between two commands beyond the control period.

    mtpolicy demo --robot tiago --episodes 20 --seed 22 --no-video --record --out-dir out/demo
    python -m benchmarks.command_intervals out/demo [more demo folders]

Reads each folder's ``bag/`` (the demo's ``--record``: rosbag2, MCAP) and, with its ``goal_sets.json``, the goal sets
held. An interval is the time between two commands on the command topic as the demo's recorder received them, so it
counts the recorder's own delays too. Prints, per folder, the share of intervals more than 5, 10 and 20 ms longer
than the period and the longest interval.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

LATE_MS = (5.0, 10.0, 20.0)
"""The lateness thresholds reported (ms beyond the period)."""


def command_intervals(bag: Path) -> np.ndarray:
    """The intervals (s) between consecutive messages on the bag's command topic (``*/commands`` or
    ``*/joint_trajectory``), by their receive time."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        topics = [c for c in reader.connections if c.topic.endswith(("/commands", "/joint_trajectory"))]
        if not topics:
            raise SystemExit(f"error: {bag}: no command topic recorded ({[c.topic for c in reader.connections]})")
        stamps = np.array([t for _, t, _ in reader.messages(connections=topics)], dtype=np.float64) / 1e9
    return np.diff(stamps)


def summary(folder: Path, period: float) -> str:
    """One line: the folder, its intervals' lateness and longest interval, and the goal sets held."""
    gaps = command_intervals(folder / "bag")
    late_ms = (gaps - period) * 1000.0
    shares = ", ".join(f"> {t:g} ms late {np.mean(late_ms > t):.3f}" for t in LATE_MS)
    record = folder / "goal_sets.json"
    held = ""
    if record.exists():
        sets = json.loads(record.read_text())["goal_sets"]
        held = f"; held {sum(bool(s['held']) for s in sets)} of {len(sets)}"
    return f"{folder}: {len(gaps)} intervals, {shares}, longest {gaps.max() * 1000:.1f} ms{held}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.command_intervals", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="demo output folders recorded with --record")
    parser.add_argument("--period", type=float, default=0.05, help="the control period (s)")
    args = parser.parse_args(argv)
    for folder in args.folders:
        print(summary(folder, args.period))


if __name__ == "__main__":
    main()
