"""Controller latency benchmark, side by side with a bare rclpy echo node, on loopback.

For each rate (default 100, 250, 500 Hz) this script publishes
``/joint_states`` at that rate and, for every state, waits for the next
command on ``/velocity_controller/commands``:

* state-to-command latency: publish of a JointState -> arrival of the command
  computed from it (ping-pong, one state in flight);
* tick latency: the controller's own per-tick compute time (its
  ``/diagnostics``), against the echo node's callback time.

The controller runs with ``tick_on_state:=true`` (it computes as soon as a state
arrives, as a ros2_control update loop would); the echo node subscribes
joint states and publishes their positions as a Float64MultiArray, with the
same QoS. Both are separate processes. Runs are bounded (``--samples``,
``--seconds``) and use loopback discovery in a private ROS domain.

    python benchmarks/latency.py [--model planar8_digrad] [--rates 100 250 500] [--samples 1000] [--repeat 3]
                                 [--sustain 5] [--realtime 50]

A state not answered within one period is not counted (the next one is sent): on a loaded machine the
slowest answers drop out, more of the controller's than of the echo's, so compare the sample counts too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from mtpolicy_tools.environment import ros_env

ECHO_STATS = "echo callback stats: "


def echo_main() -> int:
    """The bare echo node: JointState in, its positions out as Float64MultiArray; callback times at exit."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from mtpolicy.nodes.interfaces import COMMAND_QOS, DEFAULT_COMMAND_TOPIC, JOINT_STATES_TOPIC, STATE_SUB_QOS
    from mtpolicy.nodes.reporting import LatencyStats

    stats = LatencyStats(window=100_000)
    try:
        with rclpy.init():
            node = rclpy.create_node("echo")
            pub = node.create_publisher(Float64MultiArray, DEFAULT_COMMAND_TOPIC, COMMAND_QOS)
            out = Float64MultiArray()

            def on_state(msg: JointState) -> None:
                start = time.perf_counter()
                out.data = list(msg.position)
                pub.publish(out)
                stats.add(time.perf_counter() - start)

            node.create_subscription(JointState, JOINT_STATES_TOPIC, on_state, STATE_SUB_QOS)
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    p50, p99 = stats.percentiles_ms(50, 99)
    print(ECHO_STATS + json.dumps({"p50_ms": p50, "p99_ms": p99}), flush=True)
    return 0


def ping_pong(monitor, spec, rate: float, samples: int, seconds: float, goals: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Publish states at ``rate``; the latency (s) of the command answering each one."""
    from sensor_msgs.msg import JointState

    from mtpolicy.nodes.interfaces import JOINT_STATES_TOPIC, STATE_PUB_QOS

    pub = monitor.create_publisher(JointState, JOINT_STATES_TOPIC, STATE_PUB_QOS)
    state = JointState(name=list(spec.joint_names))
    rng = np.random.default_rng(0)
    q = np.zeros(spec.n_joints)
    latencies: list[float] = []
    period = 1.0 / rate
    end = time.monotonic() + seconds
    warmup = int(rate)  # one second of discovery and warm-up, not counted
    next_send = time.monotonic()
    for i in range(samples + warmup):
        if time.monotonic() > end:
            break
        if i % int(rate / 2) == 0:
            monitor.publish_goals(goals)
        time.sleep(max(0.0, next_send - time.monotonic()))
        # a random walk: every state a new input, and moves the controller's plausibility checks accept
        q = np.clip(q + 0.002 * rng.standard_normal(spec.n_joints), -0.3, 0.3)
        state.position = q.tolist()
        state.header.stamp = monitor.get_clock().now().to_msg()
        got = len(monitor.commands)
        sent = time.monotonic()
        pub.publish(state)
        if monitor.wait_until(lambda: len(monitor.commands) > got, period, poll=period) and i >= warmup:
            latencies.append(monitor.commands[got][0] - sent)
        next_send = max(next_send + period, time.monotonic())
        del monitor.commands[:-1]
    monitor.destroy_publisher(pub)
    return np.array(latencies)


def sustain(monitor, spec, rate: float, seconds: float, goals: np.ndarray) -> tuple[float, float]:  # noqa: ANN001
    """Publish states at ``rate`` for ``seconds`` without waiting for answers; (states sent per second, the
    controller's median achieved tick rate in its /diagnostics meanwhile), after a second of warm-up. Its own
    count: this process, busy publishing, receives only some of the commands."""
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState

    from mtpolicy.nodes.interfaces import DIAGNOSTICS_QOS, JOINT_STATES_TOPIC, STATE_PUB_QOS

    rates: list[float] = []
    counting = [False]
    sub = monitor.create_subscription(DiagnosticArray, "/diagnostics", lambda m: rates.extend(
        float(kv.value) for kv in m.status[0].values if kv.key == "achieved_rate_hz" and counting[0]),
                                      DIAGNOSTICS_QOS)
    pub = monitor.create_publisher(JointState, JOINT_STATES_TOPIC, STATE_PUB_QOS)
    state = JointState(name=list(spec.joint_names), position=[0.0] * spec.n_joints)
    period, sent, start = 1.0 / rate, 0, time.monotonic()
    sent_before = 0
    while (now := time.monotonic()) < start + 2.0 + seconds:  # 1 s of warm-up, 1 s for the last diagnostics
        if not counting[0] and now >= start + 1.0:
            counting[0], sent_before = True, sent
        if sent % max(1, int(rate / 2)) == 0:
            monitor.publish_goals(goals)
        state.header.stamp = monitor.get_clock().now().to_msg()
        pub.publish(state)
        sent += 1
        monitor.spin_for(max(0.0, start + sent * period - time.monotonic()))
    monitor.destroy_publisher(pub)
    monitor.destroy_subscription(sub)
    return (sent - sent_before) / (seconds + 1.0), float(np.median(rates)) if rates else float("nan")


def controller_tick_stats(monitor) -> tuple[float, float]:  # noqa: ANN001
    """Tick p50/p99 (ms) from the controller's next /diagnostics message."""
    from diagnostic_msgs.msg import DiagnosticArray

    from mtpolicy.nodes.interfaces import DIAGNOSTICS_QOS

    box: list[dict[str, str]] = []
    sub = monitor.create_subscription(DiagnosticArray, "/diagnostics",
                                      lambda m: box.append({kv.key: kv.value for kv in m.status[0].values}),
                                      DIAGNOSTICS_QOS)
    monitor.wait_until(lambda: bool(box), 3.0)
    monitor.destroy_subscription(sub)
    return (float(box[-1]["tick_latency_p50_ms"]), float(box[-1]["tick_latency_p99_ms"])) if box else (np.nan, np.nan)


def run(model: str, rates: list[float], samples: int, seconds: float, repeat: int, sustained_seconds: float,
        realtime: int) -> int:
    os.environ.update(ros_env(isolate=True))
    scheduling = ["chrt", "--fifo", str(realtime)] if realtime else []
    if realtime:  # this process too, before rclpy starts its DDS threads (they inherit it)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(realtime))
    import rclpy

    from mtpolicy.kinematics import Kinematics
    from mtpolicy.reach_task import sample_goal_sets
    from mtpolicy_tools.launch_runner import ManagedProcess, find_executable
    from mtpolicy_tools.monitor import ReachMonitor
    from mtpolicy.policy import resolve_model_path
    from mtpolicy.robots import load_robot

    model_path = resolve_model_path(model).resolve()
    spec = load_robot("planar8")
    goals = sample_goal_sets(Kinematics(spec), np.random.default_rng(1), 1)[0]
    env = dict(os.environ)
    rclpy.init()
    monitor = ReachMonitor(spec, name="latency_bench")
    rows = []
    try:
        for rate in rates:
            ctrl_s2c, echo_s2c, ctrl_ticks, echo_ticks = [], [], [], []
            for _ in range(repeat):  # alternating, so that a change of the machine's load hits both alike
                controller = str(find_executable("mtpolicy", "mtpolicy_controller"))
                ctrl = ManagedProcess("controller", [*scheduling, controller, "--ros-args", "-p",
                                                     f"model:={model_path}", "-p", f"rate_hz:={rate}", "-p",
                                                     "tick_on_state:=true", "-p", "state_timeout:=1.0"],
                                      env=env, echo=None)
                try:
                    if not ctrl.wait_for_output("commands on", 30.0):
                        raise RuntimeError(f"controller did not start:\n{ctrl.output()}")
                    ctrl_s2c.append(ping_pong(monitor, spec, rate, samples, seconds, goals))
                    ctrl_ticks.append(controller_tick_stats(monitor))
                    if sustained_seconds:
                        sent, ticks = sustain(monitor, spec, rate, sustained_seconds, goals)
                        print(f"{rate:g} Hz sustained for {sustained_seconds:g} s: {sent:.0f} states/s sent, "
                              f"the controller ticked {ticks:.0f} times/s (median of its /diagnostics)", flush=True)
                finally:
                    ctrl.stop()
                echo = ManagedProcess("echo", [*scheduling, sys.executable, __file__, "--echo"], env=env, echo=None)
                try:
                    time.sleep(1.0)
                    echo_s2c.append(ping_pong(monitor, spec, rate, samples, seconds, goals))
                finally:
                    echo.stop()
                line = next((ln for ln in echo.lines if ln.startswith(ECHO_STATS)), None)
                echo_ticks.append(tuple(json.loads(line[len(ECHO_STATS):]).values()) if line else (np.nan, np.nan))
                p50s = [float(np.median(x[-1])) * 1e3 for x in (ctrl_s2c, echo_s2c)]
                print(f"{rate:g} Hz: {len(ctrl_s2c[-1])} controller and {len(echo_s2c[-1])} echo samples, "
                      f"state->command p50 {p50s[0]:.3f} / {p50s[1]:.3f} ms", flush=True)
            rows.append((rate, tuple(np.median(ctrl_ticks, axis=0)), tuple(np.median(echo_ticks, axis=0)),
                         np.concatenate(ctrl_s2c), np.concatenate(echo_s2c)))
    finally:
        monitor.destroy_node()
        rclpy.shutdown()

    def ms(x: np.ndarray, q: float) -> float:
        return float(np.percentile(x, q) * 1e3) if len(x) else float("nan")

    print(f"\nmodel {model_path.name}; latencies in ms (p50 / p99); ratio = controller / echo")
    head = (f"{'rate':>6}  {'ctrl tick':>15}  {'echo callback':>15}  {'tick p99 ratio':>14}  "
            f"{'ctrl state->cmd':>15}  {'echo state->cmd':>15}  {'s->c p50 ratio':>14}  {'s->c p99 ratio':>14}")
    print(head)
    print("-" * len(head))
    for rate, ct, et, cs, es in rows:
        print(f"{rate:>4g}Hz  {ct[0]:>6.3f} / {ct[1]:>6.3f}  {et[0]:>6.3f} / {et[1]:>6.3f}  {ct[1] / et[1]:>14.1f}  "
              f"{ms(cs, 50):>6.3f} / {ms(cs, 99):>6.3f}  {ms(es, 50):>6.3f} / {ms(es, 99):>6.3f}  "
              f"{ms(cs, 50) / ms(es, 50):>14.2f}  {ms(cs, 99) / ms(es, 99):>14.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="planar8_digrad", help="ONNX policy (path or shipped name)")
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 250.0, 500.0])
    parser.add_argument("--samples", type=int, default=1000, help="measured states per run")
    parser.add_argument("--seconds", type=float, default=8.0, help="time limit per run")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each node per rate, alternating (pooled)")
    parser.add_argument("--realtime", type=int, default=0, metavar="PRIORITY",
                        help="run the controller, the echo node and this process under SCHED_FIFO at this priority "
                             "(1-99; needs CAP_SYS_NICE): figures a loaded machine's scheduler does not blur; 0: off")
    parser.add_argument("--sustain", type=float, default=0.0, help="s of states at the rate, unanswered, after each "
                        "controller ping-pong: the states sent and commands received per second")
    args = parser.parse_args(argv)
    if args.echo:
        return echo_main()
    return run(args.model, args.rates, args.samples, args.seconds, args.repeat, args.sustain, args.realtime)


if __name__ == "__main__":
    raise SystemExit(main())
