"""Soak benchmark: the sim + controller stack running for a long time at a high rate, a new goal set every 3 s.

The sim publishes joint states and the controller ticks at ``--rate`` Hz
(default 250); this process publishes a new goal set every ``--goal-period``
s (default 3) and watches the stack over DDS for ``--minutes`` (default 30).
Each goal set is the end effectors of a configuration drawn within 1 rad per
joint of the robot's configuration when it is published
(``sample_goal_sets``): reachable, and a local move from where the robot is,
the distribution the policies train on. It reports:

* watchdog misses: ticks on which the controller held the robot at zero
  (its ``zero_ticks_total`` in /diagnostics, counted from its first message
  after the first moving command: stale or implausible joint states, a
  non-finite policy output; no e-stop here, goals always set), plus the sim's
  command-timeout trips (its log); all-zero commands are counted apart
  (``zero_commands``), since a policy that commands exactly zero at its goal
  sends them too;
* command gaps: intervals between two commands arriving here longer than 2
  tick periods, and the longest one;
* RSS growth of the controller and the sim: resident memory at the end minus
  after the first minute (and its slope over the samples, MB/min);
* reach rate: goal sets with every end effector within the reach tolerance
  at some point of their ``--goal-period`` s, and the median time to reach;
* what the controller's fault checks rejected (goals, joint states).

Loopback discovery in a private ROS domain. A JSON record of the run goes to
``--out``.

    python benchmarks/soak.py --minutes 30 [--rate 250] [--goal-period 3] [--realtime 50] [--out out/soak.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import mtpolicy.nodes  # noqa: F401 - MUJOCO_GL before mujoco
from mtpolicy.integrity import strict_json
from mtpolicy_tools.environment import ros_env

RSS_WARMUP = 60.0
"""s after the first goal set before the reference RSS is read (imports, caches and DDS buffers settle)."""
RSS_EVERY = 30.0
"""s between two RSS samples."""


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class SoakResult:
    """What one soak run measured."""

    minutes: float
    rate_hz: float
    goal_period_s: float
    realtime_priority: int = 0
    """SCHED_FIFO priority of the sim and the controller (0: the default scheduler)."""
    goal_sets: int = 0
    reached: int = 0
    reach_seconds_median: float = float("nan")
    commands: int = 0
    command_gaps: int = 0
    """Intervals between two commands longer than 2 tick periods."""
    command_gap_max_ms: float = 0.0
    command_interval_p99_ms: float = float("nan")
    late_commands: int = 0
    """The controller's own count of commands more than 2 periods after the previous one (``late_commands_total``
    in /diagnostics: by its steady clock, so a descheduled watcher does not count)."""
    late_commands_busy: int = 0
    """Of those, the ones where the control thread itself computed for more than 2 periods
    (``late_commands_busy_total``)."""
    controller_hold_ticks: int = 0
    """Ticks the controller held at zero for a fault after it first moved the robot (its diagnostics)."""
    zero_commands: int = 0
    """All-zero commands after the first non-zero one (holds and exact-zero policy outputs)."""
    zero_command_error_mm_max: float = 0.0
    """The largest end-effector error (as seen here) when an all-zero command arrived, mm."""
    sim_command_timeouts: int = 0
    hold_reasons: dict[str, int] = field(default_factory=dict)
    """The controller's logged hold reasons ("publishing zeros: ..."), start-up ones included, by count."""
    rejected_goals: int = 0
    rejected_states: int = 0
    achieved_rate_hz_min: float = float("nan")
    tick_latency_p99_ms_max: float = float("nan")
    final_errors_mm: list[list[float]] = field(default_factory=list)
    """Per goal set: each end effector's error at the end of its period, mm."""
    rss_mb: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """Per process: (minutes into the soak, RSS MB) samples."""

    @property
    def watchdog_misses(self) -> int:
        return self.controller_hold_ticks + self.sim_command_timeouts

    def rss_growth(self, name: str) -> tuple[float, float]:
        """MB from the first sample after warm-up to the last, and the least-squares slope in MB/min."""
        samples = np.array(self.rss_mb[name])
        if len(samples) < 2:
            return float("nan"), float("nan")
        return float(samples[-1, 1] - samples[0, 1]), float(np.polyfit(samples[:, 0], samples[:, 1], 1)[0])


def run(minutes: float, rate: float, goal_period: float, model: str, seed: int, out: Path,
        realtime: int = 0) -> SoakResult:
    os.environ.update(ros_env(isolate=True))
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    from mtpolicy.kinematics import Kinematics
    from mtpolicy.reach_task import reach_tolerance, sample_goal_sets
    from mtpolicy_tools.launch_runner import ManagedProcess, find_executable
    from mtpolicy.nodes.interfaces import DIAGNOSTICS_QOS
    from mtpolicy_tools.monitor import ReachMonitor
    from mtpolicy.policy import OnnxPolicy, resolve_model_path
    from mtpolicy.robots import load_robot

    model_path = resolve_model_path(model).resolve()
    spec = load_robot(OnnxPolicy(model_path).contract.robot)
    tolerance = reach_tolerance(spec.name)
    n_sets = int(minutes * 60 / goal_period)
    kin, rng = Kinematics(spec), np.random.default_rng(seed)
    result = SoakResult(minutes=minutes, rate_hz=rate, goal_period_s=goal_period, realtime_priority=realtime)
    env = dict(os.environ)
    scheduling = ["chrt", "--fifo", str(realtime)] if realtime else []
    sim, controller = (str(find_executable("mtpolicy", name)) for name in ("mtpolicy_sim", "mtpolicy_controller"))
    procs = {
        "sim": ManagedProcess("sim", [*scheduling, sim, "--ros-args",
                                      "-p", f"robot:={spec.name}", "-p", f"publish_rate_hz:={rate}"],
                              env=env, echo=None),
        "controller": ManagedProcess("controller", [*scheduling, controller,
                                                    "--ros-args", "-p", f"model:={model_path}",
                                                    "-p", f"rate_hz:={rate}"], env=env, echo=None),
    }
    rclpy.init()
    monitor = ReachMonitor(spec, name="soak")
    diagnostics: list[dict[str, str]] = []
    intervals: list[float] = []
    last: list[float | None] = [None]
    moved = [False]
    holds_before_moving: list[int | None] = [None]
    goals_now = [None]

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            diagnostics.append(values := {kv.key: kv.value for kv in status.values})
            if holds_before_moving[0] is None and moved[0]:
                holds_before_moving[0] = int(values["zero_ticks_total"])
    monitor.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, DIAGNOSTICS_QOS)

    def on_command(now: float, command: np.ndarray) -> None:
        if last[0] is not None:
            intervals.append(now - last[0])
        last[0] = now
        if np.any(command):
            moved[0] = True
        elif moved[0]:
            result.zero_commands += 1
            if goals_now[0] is not None:
                result.zero_command_error_mm_max = max(result.zero_command_error_mm_max,
                                                       float(monitor.errors(goals_now[0]).max()) * 1e3)
        monitor.commands.clear()  # the monitor keeps every command otherwise
    monitor.on_command = on_command
    reach_seconds: list[float] = []
    try:
        if not monitor.wait_until(lambda: monitor.states > 0 and last[0] is not None, 60.0):
            raise RuntimeError("the stack did not come up:\n" + "\n".join(p.output() for p in procs.values()))
        start = time.monotonic()
        next_rss = start + RSS_WARMUP
        for k in range(n_sets):
            goals = sample_goal_sets(kin, rng, 1, start=monitor.q)[0]  # a local move from where the robot is
            set_start = time.monotonic()
            monitor.publish_goals(goals)
            goals_now[0] = goals
            reached_at = None
            while (now := time.monotonic()) < set_start + goal_period:
                monitor.wait_until(lambda: False, 0.02)
                if reached_at is None and np.all(monitor.errors(goals) < tolerance):
                    reached_at = now - set_start
                if now >= next_rss:
                    for name, proc in procs.items():
                        result.rss_mb.setdefault(name, []).append(((now - start) / 60, rss_mb(proc.pid)))
                    next_rss += RSS_EVERY
            result.goal_sets += 1
            result.final_errors_mm.append([round(float(e) * 1e3, 1) for e in monitor.errors(goals)])
            if reached_at is not None:
                result.reached += 1
                reach_seconds.append(reached_at)
            if k % 20 == 19:
                print(f"{(time.monotonic() - start) / 60:5.1f} min: {result.reached}/{result.goal_sets} goal sets "
                      f"reached; last final errors {result.final_errors_mm[-1]} mm", flush=True)
        monitor.wait_until(lambda: False, 1.5)  # one more diagnostics message
    finally:
        monitor.destroy_node()
        rclpy.shutdown()
        for proc in procs.values():
            proc.stop()
    gaps = np.array(intervals)
    result.commands = len(gaps) + 1
    result.command_gaps = int(np.count_nonzero(gaps > 2.0 / rate))
    result.command_gap_max_ms = float(gaps.max() * 1e3)
    result.command_interval_p99_ms = float(np.percentile(gaps, 99) * 1e3)
    result.reach_seconds_median = float(np.median(reach_seconds)) if reach_seconds else float("nan")
    final = diagnostics[-1]
    result.controller_hold_ticks = int(final["zero_ticks_total"]) - (holds_before_moving[0] or 0)
    result.late_commands = int(final.get("late_commands_total", -1))
    result.late_commands_busy = int(final.get("late_commands_busy_total", -1))
    result.rejected_goals = int(final["rejected_goals_total"])
    result.rejected_states = int(final["rejected_states_total"])
    result.achieved_rate_hz_min = min(float(d["achieved_rate_hz"]) for d in diagnostics[1:-1] or diagnostics)
    result.tick_latency_p99_ms_max = max(float(d["tick_latency_p99_ms"]) for d in diagnostics)
    result.sim_command_timeouts = procs["sim"].output().count("no command for")
    result.hold_reasons = dict(Counter(line.split("publishing zeros: ", 1)[1].strip()
                                       for line in procs["controller"].output().splitlines()
                                       if "publishing zeros: " in line))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(strict_json({**asdict(result), "watchdog_misses": result.watchdog_misses,
                                "rss_growth_mb": {n: result.rss_growth(n) for n in result.rss_mb},
                                "command": " ".join(sys.argv), "model": model_path.name}, indent=2))
    return result


def report(r: SoakResult) -> str:
    lines = [f"soak: {r.minutes:g} min at {r.rate_hz:g} Hz, a goal set every {r.goal_period_s:g} s"
             + (f", sim and controller at SCHED_FIFO {r.realtime_priority}" if r.realtime_priority else ""),
             f"watchdog misses: {r.watchdog_misses} ({r.controller_hold_ticks} controller hold ticks, "
             f"{r.sim_command_timeouts} sim command timeouts); all-zero commands: {r.zero_commands} "
             f"(largest end-effector error at one: {r.zero_command_error_mm_max:.1f} mm)",
             f"commands: {r.commands}; late by the controller's clock: {r.late_commands} ({r.late_commands_busy} "
             f"busy); gaps > {2e3 / r.rate_hz:.0f} ms here: {r.command_gaps}; longest "
             f"{r.command_gap_max_ms:.1f} ms; interval p99 {r.command_interval_p99_ms:.2f} ms",
             f"achieved rate (lowest 1 s window): {r.achieved_rate_hz_min:.1f} Hz; tick p99 (highest window): "
             f"{r.tick_latency_p99_ms_max:.3f} ms",
             f"reach: {r.reached}/{r.goal_sets} goal sets ({r.reached / max(r.goal_sets, 1):.1%}), median "
             f"{r.reach_seconds_median:.2f} s",
             f"rejected: {r.rejected_goals} goals, {r.rejected_states} joint states",
             f"hold reasons logged by the controller: {r.hold_reasons}"]
    for name in r.rss_mb:
        growth, slope = r.rss_growth(name)
        first = r.rss_mb[name][0][1]
        lines.append(f"RSS {name}: {first:.1f} MB after warm-up, growth {growth:+.2f} MB ({slope:+.3f} MB/min)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="soak duration")
    parser.add_argument("--rate", type=float, default=250.0, help="controller tick and sim state rate, Hz")
    parser.add_argument("--goal-period", type=float, default=3.0, help="seconds each goal set is held")
    parser.add_argument("--model", default="planar8_digrad", help="ONNX policy (path or shipped name)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the goal sets")
    parser.add_argument("--realtime", type=int, default=0, metavar="PRIORITY",
                        help="run the sim and the controller under SCHED_FIFO at this priority (1-99; chrt, needs "
                             "CAP_SYS_NICE), as a robot computer runs its control loop; 0: the default scheduler")
    parser.add_argument("--out", type=Path, default=Path("out/soak.json"), help="JSON record of the run")
    args = parser.parse_args(argv)
    if args.minutes * 60 < RSS_WARMUP + 2 * RSS_EVERY or args.rate <= 0 or args.goal_period <= 0:
        parser.error(f"--minutes must be at least {(RSS_WARMUP + 2 * RSS_EVERY) / 60:g}; --rate and --goal-period > 0")
    if not 0 <= args.realtime <= 99:
        parser.error(f"--realtime {args.realtime}: a SCHED_FIFO priority is 1-99 (0: the default scheduler)")
    print(report(run(args.minutes, args.rate, args.goal_period, args.model, args.seed, args.out, args.realtime)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
