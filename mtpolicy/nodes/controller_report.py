"""The controller's /diagnostics: one DiagnosticStatus a second, its level the worst of what is wrong.

Beside the supervisor's hold (at its severity), a rejected goal and a stalled end effector (WARN), it says when the
commands stop (none for ``COMMANDS_STOPPED`` periods) or come at under half the configured rate, when a callback
raised (``PolicyController.on_fault``, for ``FAULT_REPORT`` s) and when the command topic has another publisher
(ERROR); when the joint states come slower than the control rate or later after their stamps than one control
period, a missing or paused /clock, goals dropped for their topic or type (WARN). Its values are the tick's latency,
the achieved and configured rates, the state rate and latency and every counter.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

from mtpolicy.nodes.interfaces import DIAGNOSTICS_QOS
from mtpolicy.supervisor import Severity

if TYPE_CHECKING:
    from mtpolicy.nodes.controller import PolicyController

COMMANDS_STOPPED = 2.0
"""Tick periods without a command after which /diagnostics goes ERROR."""
FAULT_REPORT = 5.0
"""Seconds /diagnostics stays ERROR after an error in a callback."""


class ControllerReport:
    """Publishes the controller's /diagnostics (``publish``, every second) from its state and these notes."""

    def __init__(self, controller: PolicyController):
        self.c = controller
        self._pub = controller.create_publisher(DiagnosticArray, "/diagnostics", DIAGNOSTICS_QOS)
        self._rate_mark = (time.monotonic(), 0)  # (time, ticks) of the last report
        self.fault: tuple[str, float] = ("", -math.inf)
        """The last error in a callback (one line) and when it came."""

    def status(self, since: float, achieved: float) -> tuple[Severity, str]:
        """Level and message of /diagnostics: the last tick's hold, at its severity; else a goal rejected since
        ``since`` or a stalled end effector (WARN); else OK. What else is wrong is added: commands stopped or at
        under half the rate (``achieved`` Hz since ``since``), an error in a callback, another publisher of the
        command topic (ERROR); degraded joint states (``_state_problems``), a missing or paused /clock, goals
        dropped for their topic or type (WARN)."""
        c = self.c
        now = time.monotonic()
        if c.hold is not None:
            level, messages = c.hold.severity, [str(c.hold)]
        elif c.goals.rejection_time > since:
            level, messages = Severity.WARN, [c.goals.rejection]
        elif c.progress.stalled:
            distances = c.progress.errors(c.goals.positions)
            level, messages = Severity.WARN, ["no progress towards the goal of " + ", ".join(
                f"{c.spec.end_effectors[i]!r} (error {distances[i]:.3f} m)" for i in c.progress.stalled)]
        else:
            level, messages = Severity.OK, ["running"]
        errors = [m for m in (self._command_problem(since, achieved),
                              f"internal error: {self.fault[0]}" if now - self.fault[1] < FAULT_REPORT else None,
                              f"{c.output.topic} has another publisher" if c.graph_watch.rivals > 0 else None) if m]
        if errors:
            level = Severity.ERROR
            messages += errors
        states = self._state_problems(now) if c.hold is None else []
        extra = [m for m in (*states, c.clock_watch.problem, *c.graph_watch.dropped.values()) if m]
        if extra:
            level = max(level, Severity.WARN)
        return level, "; ".join(messages + extra)

    def _command_problem(self, since: float, achieved: float) -> str | None:
        """Why the commands are not coming at the configured rate: none for ``COMMANDS_STOPPED`` periods, or under
        half the rate since ``since`` (judged over 4 periods or more); None if they are."""
        c, timing = self.c, self.c.timing
        now, period = time.monotonic(), timing.period()
        if c.counts["ticks"] and now - timing.last > COMMANDS_STOPPED * period:
            return f"commands stopped: none for {now - timing.last:.2f} s at {1 / period:.2f} Hz"
        if (now - since) >= 4 * period and achieved < 0.5 / period:
            return f"commands at {achieved:.2f} Hz, under half the configured {1 / period:.2f} Hz"
        return None

    def _state_problems(self, now: float) -> list[str]:
        """The joint states' degradations: slower than the control rate; arriving more than a control period after
        their stamps (stamp_tolerance forgiven), beyond what ``predict_state`` covers."""
        c = self.c
        period, flow, problems = c.timing.period(), c.states.flow, []
        if (rate := flow.rate(now)) < 0.9 / period:
            problems.append(f"joint states at {rate:.1f} Hz, slower than the control rate {1 / period:.1f} Hz: "
                            "commands act on old states")
        if (latency := flow.latency(now)) > period:
            problems.append(f"joint states arrive {latency * 1e3:.0f} ms after their stamps (median), over one control "
                            f"period ({period * 1e3:.0f} ms): commands act on old states")
        return problems

    def publish(self) -> None:
        """One DiagnosticArray on /diagnostics: the status, the values, since the last report."""
        c, timing = self.c, self.c.timing
        now = time.monotonic()
        p50, p99 = timing.latency.percentiles_ms(50, 99)
        goal_age = now - c.goals.stamps.min()
        (since, ticks), self._rate_mark = self._rate_mark, (now, c.counts["ticks"])
        achieved = (c.counts["ticks"] - ticks) / (now - since)
        planning = {} if c.planned is None else c.planned.diagnostics()
        gap_max = timing.take_gap_max()
        values = {**planning, "tick_latency_p50_ms": f"{p50:.4f}", "tick_latency_p99_ms": f"{p99:.4f}",
                  "tick_latency_samples": str(len(timing.latency.samples)),
                  "command_gap_max_ms": f"{gap_max * 1e3:.2f}", "rate_hz": f"{1 / timing.period():.2f}",
                  "achieved_rate_hz": f"{achieved:.2f}", "state_age_s": f"{c.states.times.age(now):.3f}",
                  "state_rate_hz": f"{c.states.flow.rate(now):.1f}",
                  "state_latency_ms": f"{c.states.flow.latency(now) * 1e3:.1f}", "goal_age_s": f"{goal_age:.3f}",
                  "enabled": str(c.inputs.enabled),
                  **{f"{k}_total": str(v) for k, v in {**c.counts, **c.goals.counts, **timing.counts,
                                                       **c.supervisor.counts, **c.output.ramp.counts,
                                                       **c.states.counts}.items()}}
        level, message = self.status(since, achieved)
        status = DiagnosticStatus(name=f"{c.get_name()}: policy {c.policy.path.name}",
                                  hardware_id=c.spec.name, message=message, level=bytes([level]),
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        self._pub.publish(DiagnosticArray(header=Header(stamp=c.get_clock().now().to_msg()), status=[status]))

