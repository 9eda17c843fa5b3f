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

    python benchmarks/latency.py [--model planar8_digrad] [--rates 100 250 500] [--samples 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from mtpolicy.nodes.common import ros_env

ECHO_STATS = "echo callback stats: "


def echo_main() -> int:
    """The bare echo node: JointState in, its positions out as Float64MultiArray; callback times at exit."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from mtpolicy.nodes.common import (COMMAND_QOS, DEFAULT_COMMAND_TOPIC, JOINT_STATES_TOPIC, STATE_SUB_QOS,
                                       LatencyStats)

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

    from mtpolicy.nodes.common import JOINT_STATES_TOPIC, STATE_PUB_QOS

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


def controller_tick_stats(monitor) -> tuple[float, float]:  # noqa: ANN001
    """Tick p50/p99 (ms) from the controller's next /diagnostics message."""
    from diagnostic_msgs.msg import DiagnosticArray

    from mtpolicy.nodes.common import DIAGNOSTICS_QOS

    box: list[dict[str, str]] = []
    sub = monitor.create_subscription(DiagnosticArray, "/diagnostics",
                                      lambda m: box.append({kv.key: kv.value for kv in m.status[0].values}),
                                      DIAGNOSTICS_QOS)
    monitor.wait_until(lambda: bool(box), 3.0)
    monitor.destroy_subscription(sub)
    return (float(box[-1]["tick_latency_p50_ms"]), float(box[-1]["tick_latency_p99_ms"])) if box else (np.nan, np.nan)


def run(model: str, rates: list[float], samples: int, seconds: float) -> int:
    os.environ.update(ros_env(isolate=True))
    import rclpy

    from mtpolicy.kinematics import Kinematics, sample_goal_sets
    from mtpolicy.launch_runner import ManagedProcess, find_executable
    from mtpolicy.nodes.monitor import ReachMonitor
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
            ctrl = ManagedProcess("controller", [str(find_executable("mtpolicy", "mtpolicy_controller")), "--ros-args",
                                                 "-p", f"model:={model_path}", "-p", f"rate_hz:={rate}",
                                                 "-p", "tick_on_state:=true", "-p", "state_timeout:=1.0"],
                                  env=env, echo=None)
            try:
                if not ctrl.wait_for_output("commands on", 30.0):
                    raise RuntimeError(f"controller did not start:\n{ctrl.output()}")
                ctrl_s2c = ping_pong(monitor, spec, rate, samples, seconds, goals)
                ctrl_tick = controller_tick_stats(monitor)
            finally:
                ctrl.stop()
            echo = ManagedProcess("echo", [sys.executable, __file__, "--echo"], env=env, echo=None)
            try:
                time.sleep(1.0)
                echo_s2c = ping_pong(monitor, spec, rate, samples, seconds, goals)
            finally:
                echo.stop()
            line = next((ln for ln in echo.lines if ln.startswith(ECHO_STATS)), None)
            echo_tick = tuple(json.loads(line[len(ECHO_STATS):]).values()) if line else (np.nan, np.nan)
            rows.append((rate, ctrl_tick, echo_tick, ctrl_s2c, echo_s2c))
            print(f"{rate:g} Hz: {len(ctrl_s2c)} controller and {len(echo_s2c)} echo samples", flush=True)
    finally:
        monitor.destroy_node()
        rclpy.shutdown()

    def ms(x: np.ndarray, q: float) -> float:
        return float(np.percentile(x, q) * 1e3) if len(x) else float("nan")

    print(f"\nmodel {model_path.name}; latencies in ms (p50 / p99); ratio = controller / echo")
    head = (f"{'rate':>6}  {'ctrl tick':>15}  {'echo callback':>15}  {'tick p99 ratio':>14}  "
            f"{'ctrl state->cmd':>15}  {'echo state->cmd':>15}  {'s->c p99 ratio':>14}")
    print(head)
    print("-" * len(head))
    for rate, ct, et, cs, es in rows:
        print(f"{rate:>4g}Hz  {ct[0]:>6.3f} / {ct[1]:>6.3f}  {et[0]:>6.3f} / {et[1]:>6.3f}  {ct[1] / et[1]:>14.1f}  "
              f"{ms(cs, 50):>6.3f} / {ms(cs, 99):>6.3f}  {ms(es, 50):>6.3f} / {ms(es, 99):>6.3f}  "
              f"{ms(cs, 99) / ms(es, 99):>14.2f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="planar8_digrad", help="ONNX policy (path or shipped name)")
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 250.0, 500.0])
    parser.add_argument("--samples", type=int, default=1000, help="measured states per run")
    parser.add_argument("--seconds", type=float, default=8.0, help="time limit per run")
    args = parser.parse_args()
    if args.echo:
        return echo_main()
    return run(args.model, args.rates, args.samples, args.seconds)


if __name__ == "__main__":
    raise SystemExit(main())
