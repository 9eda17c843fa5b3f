"""The platform's share of a real-time controller's late ticks: a bare SCHED_FIFO sleeper at the control rate.

One thread at SCHED_FIFO priority ``--realtime`` sleeps to deadlines every
1 / ``--rate`` s for ``--minutes`` and does nothing else: no ROS, no policy, no
Python work between wakeups. It counts what the controller's soak counts
(``benchmarks/soak.py``, "late by the controller's clock"): wakeups more than
2 periods after the previous one, and the longest interval. What this thread
sees late is the kernel's or the hypervisor's doing, so it is the floor under
the controller's count on the same machine at the same time.

    python -m benchmarks.fifo_wakeups --minutes 30 --rate 250 --realtime 50 --out out/fifo_wakeups.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def sleep_to_deadlines(rate: float, seconds: float) -> dict:
    """Wake every 1 / rate s (deadlines on the monotonic clock, a late wakeup does not shift the next deadline) for
    ``seconds``; the count of intervals between wakeups over 2 periods, the longest interval, the wakeups."""
    period = 1.0 / rate
    start = previous = time.monotonic()
    deadline, late, longest, wakeups, late_at = start + period, 0, 0.0, 0, []
    while previous - start < seconds:
        time.sleep(max(0.0, deadline - time.monotonic()))
        now = time.monotonic()
        gap = now - previous
        if gap > 2 * period:
            late += 1
            late_at.append(round(now - start, 3))
        longest, previous, wakeups = max(longest, gap), now, wakeups + 1
        deadline += period
        if deadline < now:  # more than a period behind: the next deadline is the next one ahead
            deadline = now + period - (now - deadline) % period
    return {"rate_hz": rate, "seconds": previous - start, "wakeups": wakeups, "late": late,
            "longest_interval_ms": longest * 1e3, "late_at_s": late_at}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=250.0, help="Hz")
    parser.add_argument("--realtime", type=int, default=50, help="SCHED_FIFO priority (0: the default scheduler)")
    parser.add_argument("--out", type=Path, help="JSON record of the run")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.minutes <= 0:
        parser.error("--rate and --minutes must be > 0")
    if args.realtime:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.realtime))
        except (PermissionError, OSError) as e:
            parser.error(f"--realtime {args.realtime}: cannot switch to SCHED_FIFO ({e}); run as root or with "
                         "CAP_SYS_NICE, or give --realtime 0")
    result = {"realtime": args.realtime, **sleep_to_deadlines(args.rate, args.minutes * 60.0)}
    print(f"{result['wakeups']} wakeups at {args.rate:g} Hz in {result['seconds'] / 60:.1f} min, "
          f"SCHED_FIFO {args.realtime}: {result['late']} late (over 2 periods), "
          f"longest interval {result['longest_interval_ms']:.1f} ms")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
