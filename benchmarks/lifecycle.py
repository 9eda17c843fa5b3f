"""Start/stop cycles of sim + controller under both launchers: does every node stop, cleanly, every time?

    python benchmarks/lifecycle.py --cycles 20                 # idle machine
    python benchmarks/lifecycle.py --cycles 20 --hog           # plus a busy-loop process per core

Each cycle starts ``sim_controller.launch.xml model:=planar8_picor`` with
``ros2 launch`` (from a colcon build of ros2_ws, made once in a temporary
folder) or ``mtpolicy launch`` (the pip-only runner), publishes a goal set
until the controller sends policy commands, then sends the launcher one
signal (INT, TERM, HUP or KILL) and watches, over DDS and /proc
(``mtpolicy.launchers.stop_and_watch``):

* survivors: nodes still running 2 s after the signal;
* tracebacks / unclean exits: "Traceback" in the launcher's output (its
  nodes' output included), plus the nodes that outlive their launcher (KILL;
  ros2 launch on TERM and HUP, which exits without stopping them) and exit
  with anything but 0: their output goes with the launcher, but this process
  adopts them as child subreaper and sees their exit codes;
* zero last: the last command on the wire after the signal is all zeros;
* stop s: seconds from the signal until the last node is gone;
* exit: the launcher's exit codes (negative: ended by that signal).

Every process runs with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a
private ROS_DOMAIN_ID. Bounded: bring-up 60 s and stop 10 s per cycle;
nodes left over are SIGKILLed (and counted as survivors).
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MODEL = "planar8_picor"
READY_TIMEOUT = 60.0
STOP_DEADLINE = 2.0
STOP_TIMEOUT = 10.0
SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM, "HUP": signal.SIGHUP, "KILL": signal.SIGKILL}
_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


@dataclass
class Row:
    """Outcomes of the cycles of one launcher and signal."""

    cycles: int = 0
    failed_bringups: int = 0
    survivors: int = 0
    tracebacks: int = 0
    zero_last: int = 0
    stop_s: list[float] = field(default_factory=list)
    exits: collections.Counter = field(default_factory=collections.Counter)


def adopt_orphans() -> None:
    """Become the child subreaper: nodes whose launcher dies are re-parented here, so their exit codes are seen."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def one_cycle(launcher: str, cmd: list[str], env: dict[str, str], sig: int, monitor, goals: np.ndarray,  # noqa: ANN001
              row: Row) -> None:
    from mtpolicy.launch_runner import ManagedProcess
    from mtpolicy.launchers import node_pids, running, stop_and_watch, wait_until_moving

    proc = ManagedProcess(launcher, cmd, env=env, echo=None)
    pids: dict[str, int] = {}
    try:
        moving = wait_until_moving(proc, monitor, goals, READY_TIMEOUT)
        pids = node_pids(launcher, proc.output())
        if not moving or len(pids) != 2:
            row.failed_bringups += 1
            print(f"bring-up failed (exit {proc.returncode}):\n{proc.output()[-2000:]}", file=sys.stderr)
            return
        out = stop_and_watch(proc, pids, sig, monitor, STOP_DEADLINE, STOP_TIMEOUT)
        row.cycles += 1
        row.survivors += len(out.survivors)
        row.zero_last += out.zero_last
        row.stop_s.append(out.stop_s)
        row.exits[out.exit_code] += 1
        row.tracebacks += ("Traceback" in proc.output()) + sum(code != 0 for code in out.node_exits.values())
    finally:
        if proc.returncode is None:
            proc.stop(grace=2.0)
        for pid in pids.values():
            if running(pid):
                os.kill(pid, signal.SIGKILL)
                while running(pid):  # reaps it if it was adopted
                    time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=20, help="start/stop cycles per launcher and signal")
    parser.add_argument("--launchers", nargs="+", choices=["ros2", "mtpolicy"], default=["ros2", "mtpolicy"])
    parser.add_argument("--signals", nargs="+", choices=list(SIGNALS), default=list(SIGNALS))
    parser.add_argument("--hog", action="store_true", help="run a busy-loop process per core meanwhile")
    ns = parser.parse_args(argv)

    import rclpy

    from mtpolicy import launchers
    from mtpolicy.kinematics import Kinematics
    from mtpolicy.nodes.common import ros_env, unique_domain_id
    from mtpolicy.nodes.monitor import ReachMonitor
    from mtpolicy.robots import load_robot

    if "ros2" in ns.launchers and launchers.missing():
        parser.error(launchers.missing())
    adopt_orphans()
    tmp = Path(tempfile.mkdtemp(prefix="mtpolicy-lifecycle-"))
    env = ros_env(domain_id=unique_domain_id())
    env["ROS_LOG_DIR"] = str(tmp / "ros_log")
    envs = {"mtpolicy": env}
    if "ros2" in ns.launchers:
        envs["ros2"] = launchers.install_env(launchers.colcon_build(tmp), env)

    spec = load_robot("planar8")
    goals = Kinematics(spec).ee_positions(np.full(spec.n_joints, 0.15))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    monitor = ReachMonitor(spec, name="lifecycle_bench", context=context)
    hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(os.cpu_count() or 1)] \
        if ns.hog else []
    rows: dict[tuple[str, str], Row] = {}
    started, load_before = time.monotonic(), os.getloadavg()[0]
    try:
        for launcher in ns.launchers:
            cmd = launchers.command(launcher, "sim_controller", {"model": MODEL})
            for name in ns.signals:
                row = rows[launcher, name] = Row()
                for _ in range(ns.cycles):
                    one_cycle(launcher, cmd, envs[launcher], SIGNALS[name], monitor, goals, row)
                print(f"{launcher} {name}: {row.cycles} cycles, {row.survivors} survivors, {row.tracebacks} "
                      f"tracebacks/unclean, zero last {row.zero_last}", flush=True)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        monitor.destroy_node()
        rclpy.shutdown(context=context)

    hog = f"a busy-loop process on each of {os.cpu_count()} cores" if ns.hog else "no busy loops"
    print(f"\n{MODEL}, sim + controller; {hog}; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after; {time.monotonic() - started:.0f} s")
    print("| launcher | signal | cycles | survivors after 2 s | tracebacks / unclean exits | zero command last "
          "| stop s (median / max) | launcher exit codes |")
    print("|---|---|---|---|---|---|---|---|")
    for (launcher, name), row in rows.items():
        stop = f"{np.median(row.stop_s):.2f} / {max(row.stop_s):.2f}" if row.stop_s else "-"
        exits = ", ".join(f"{code} x{n}" for code, n in sorted(row.exits.items(), key=str))
        failed = f" ({row.failed_bringups} failed bring-ups)" if row.failed_bringups else ""
        print(f"| {launcher} launch | {name} | {row.cycles}{failed} | {row.survivors} | {row.tracebacks} | "
              f"{row.zero_last}/{row.cycles} | {stop} | {exits} |")
    clean = all(r.cycles == ns.cycles and r.survivors == r.tracebacks == 0 and r.zero_last == r.cycles
                for r in rows.values())
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
