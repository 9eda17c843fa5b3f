"""``mtpolicy demo``: a policy reaches N goal sets over real DDS, with a table, pictures, a video and a bag.

Brings up ``launch/sim_controller.launch.xml`` through the launch runner (its
output goes to ``<out>/stack.log``), then publishes seeded reachable goal sets
one after another, each drawn from where the robot is (a ``local`` move, or
anywhere in the ``workspace``), each until every end effector is within ``tolerance`` and
has stayed there for ``SETTLE`` s (held), or ``timeout`` s pass (``mtpolicy_tools.demo_runs``). Writes to ``<out>``
(``mtpolicy_tools.demo_media``):

* ``demo.mp4``: the run replayed from the recorded joint states (MuJoCo
  offscreen), goals as spheres of the tolerance's radius, end-effector paths;
* ``summary.png``: error of each end effector over time, per goal set, with the tolerance;
* ``reached.png``: the robot at the moment the last held goal set was reached;
* ``ee_paths.png``: end-effector paths in the base x-y plane;
* ``goal_sets.json``: each goal set's start, goals and outcome, which ``benchmarks/demo_replay.py`` replays in the env;
* ``bag/`` with ``record``: every topic of the run, a rosbag2 folder with MCAP storage;
* ``params.yaml`` when the robot is an MJCF path and no params file is given.

Exit code 0 iff at least 90 % of the goal sets were held, 1 if not, if the
stack did not come up or another ROS process published joint states or
commands in the demo's domain, 2 for a mistake in the arguments.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mtpolicy.integrity import strict_json
from mtpolicy.nodes.interfaces import DEFAULT_COMMAND_TOPIC
from mtpolicy_tools.demo_media import write_media
from mtpolicy_tools.demo_runs import drive_goal_sets, format_table, goal_sampler, goal_sets_record
from mtpolicy_tools.environment import DEMO_REALTIME_PRIORITY, ros_env

if TYPE_CHECKING:
    from mtpolicy.robots import RobotSpec
    from mtpolicy_tools.monitor import ReachMonitor

DISCOVERY_SETTLE = 3.0
"""Seconds the demo gives DDS discovery to show another process's publishers before it starts, from when it joined
the domain (the stack comes up meanwhile)."""
READY_TIMEOUT = 60.0
"""Seconds allowed for the stack to come up (imports, model load, discovery)."""
SIM_STARTED = "simulating '"
"""What the simulator node logs once its publishers exist."""


class DemoError(ValueError):
    """A mistake in the demo's arguments: the message says which and what to do."""


def params_yaml(spec: "RobotSpec", model_name: str) -> str:
    """A ROS parameters file for the launch files' nodes on ``spec`` (end effectors and command order)."""
    ees = "[" + ", ".join(spec.end_effectors) + "]"
    return (f"# Node parameters for robot {spec.scene_path} driven by {model_name}; docs/own_robot.md step 3\n"
            f"controller:\n  ros__parameters:\n    joints: [{', '.join(spec.joint_names)}]\n"
            f"sim:\n  ros__parameters:\n    end_effectors: {ees}\n"
            f"goals:\n  ros__parameters:\n    end_effectors: {ees}\n")


@dataclass(frozen=True)
class DemoSetup:
    """What the demo runs, checked before anything starts."""

    model_path: Path
    robot: str
    """Shipped robot name, or the absolute path of a robot folder or MJCF."""
    spec: "RobotSpec"
    params_file: Path | None
    """Node parameters (None: the launch files' default for a shipped robot)."""
    tolerance: float
    title: str
    """Robot and model, for every picture."""


def prepare(model: str | None, robot: str | None, params: str | None, tolerance: float | None,
            out: Path) -> DemoSetup:
    """Resolve and check the model (default: the default model of the robot, default ``DEFAULT_ROBOT``), robot,
    params file and tolerance; raise DemoError naming the mistake."""
    import yaml

    from mtpolicy.reach_task import reach_tolerance
    from mtpolicy.policy import ModelMismatch
    from mtpolicy.robots import RobotSpecError, shipped_robots
    from mtpolicy_tools.model_choice import model_and_robot, robot_for_model
    from mtpolicy_tools.render import end_effectors_from_params

    try:
        policy, robot = model_and_robot(model, robot)
    except (FileNotFoundError, ModelMismatch, RobotSpecError) as e:
        raise DemoError(str(e)) from None
    contract = policy.contract
    try:
        spec = robot_for_model(robot, policy)
    except (RobotSpecError, ModelMismatch) as e:
        raise DemoError(str(e)) from None
    robot = robot if robot in shipped_robots() else str(Path(robot).resolve())
    params_file = None
    if params is not None:
        params_file = Path(params).resolve()
        if not params_file.is_file():
            raise DemoError(f"params file {params} not found")
        try:
            listed = end_effectors_from_params(params_file)
        except (yaml.YAMLError, AttributeError) as e:
            raise DemoError(f"params file {params} is not a ROS parameters YAML: {e}") from None
        if listed and tuple(listed) != spec.end_effectors:
            raise DemoError(f"{params}: end_effectors {listed} differ from the model's {list(spec.end_effectors)}")
    elif robot not in shipped_robots():
        params_file = out.resolve() / "params.yaml"
        out.mkdir(parents=True, exist_ok=True)
        params_file.write_text(params_yaml(spec, policy.path.name))
    if tolerance is None:  # the model's, else (a model made without one) the robot's
        tolerance = contract.reach_tolerance or reach_tolerance(robot)
    elif tolerance <= 0:
        raise DemoError(f"--reach-tolerance must be > 0 m, got {tolerance}")
    return DemoSetup(policy.path, robot, spec, params_file, tolerance,
                     f"{spec.name} driven by {policy.path.stem} ({contract.method})")


def demo_topics(spec: "RobotSpec", command_topic: str = DEFAULT_COMMAND_TOPIC) -> list[tuple[str, type]]:
    """The topics of a demo run, for the bag: states, goals, commands, markers, diagnostics."""
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PointStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray
    from visualization_msgs.msg import MarkerArray

    from mtpolicy.nodes.interfaces import JOINT_STATES_TOPIC, goal_topic

    return ([(JOINT_STATES_TOPIC, JointState), (command_topic, Float64MultiArray)]
            + [(goal_topic(ee), PointStamped) for ee in spec.end_effectors]
            + [("/controller/markers", MarkerArray), ("/sim/markers", MarkerArray), ("/diagnostics", DiagnosticArray)])


def foreign_publishers(monitor: "ReachMonitor") -> str | None:
    """Why another ROS process shares the demo's domain (a second publisher of joint states or commands), or None."""
    from mtpolicy.nodes.interfaces import JOINT_STATES_TOPIC

    counts = {topic: monitor.count_publishers(topic) for topic in (JOINT_STATES_TOPIC, DEFAULT_COMMAND_TOPIC)}
    extra = {topic: n for topic, n in counts.items() if n > 1}
    if not extra:
        return None
    return (f"another process on ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} publishes "
            + ", ".join(f"{topic} ({n} publishers)" for topic, n in extra.items())
            + "; run the demo with a free ROS_DOMAIN_ID")


def run_demo(goal_sets: int = 10, seed: int = 0, out: str | Path = "out/demo", model: str | None = None,
             robot: str | None = None, timeout: float = 10.0, tolerance: float | None = None,
             real_time_factor: float = 1.0, params: str | None = None, record: bool = False,
             video: bool = True, goal_distribution: str = "local",
             realtime_priority: int = DEMO_REALTIME_PRIORITY) -> int:
    """The one-command demo; returns the exit code. Raises DemoError for a mistake in the arguments.

    ``model`` defaults to the default model of ``robot`` (its manifest's
    ``default_model``; robot default ``DEFAULT_ROBOT``), ``robot`` to the
    model's robot (a shipped one, or the MJCF path its contract records: a
    robot folder's when its manifest names it) and ``tolerance`` to the reach
    tolerance the model was trained for. ``params`` is a ROS parameters file for the nodes; a robot
    given by path without one gets ``<out>/params.yaml``, written from the model.
    """
    if goal_sets < 1:
        raise DemoError(f"--episodes must be >= 1, got {goal_sets}")
    if goal_distribution not in ("local", "workspace"):
        raise DemoError(f"--goal-distribution must be local or workspace, got {goal_distribution!r}")
    for name, value in (("--timeout", timeout), ("--real-time-factor", real_time_factor)):
        if not value > 0:
            raise DemoError(f"{name} must be > 0, got {value}")
    from mtpolicy.nodes.params import PRIORITIES

    if (reason := PRIORITIES(realtime_priority)) is not None:  # the nodes' own rule, before they start
        raise DemoError(f"--realtime-priority {reason}, got {realtime_priority}")
    out = Path(out)
    setup = prepare(model, robot, params, tolerance, out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.update(ros_env(isolate=True))  # this process and the stack share one private domain
    import rclpy

    from mtpolicy.kinematics import Kinematics
    from mtpolicy_tools.launch_runner import LaunchRunner, parse_launch
    from mtpolicy_tools.monitor import ReachMonitor
    from mtpolicy_tools.record import BagRecorder

    spec, tolerance = setup.spec, setup.tolerance
    next_goals = goal_sampler(Kinematics(spec), np.random.default_rng(seed), goal_distribution)
    print(f"mtpolicy demo: {setup.title} over ROS 2 (ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, loopback); "
          f"{goal_sets} {goal_distribution} goal sets, seed {seed}; stack log: {out / 'stack.log'}")
    if setup.params_file is not None:
        print(f"node parameters: {setup.params_file}")
    launch_args = {"robot": setup.robot, "model": str(setup.model_path.resolve()),
                   "real_time_factor": str(real_time_factor), "realtime_priority": str(realtime_priority)}
    if setup.params_file is not None:
        launch_args["params_file"] = str(setup.params_file)
    description = parse_launch("sim_controller", launch_args)
    bag = out / "bag"
    if record and bag.exists():
        shutil.rmtree(bag)
    with open(out / "stack.log", "w") as log, LaunchRunner(description, dict(os.environ), echo=log) as runner:
        rclpy.init()
        monitor = ReachMonitor(spec, name="demo")
        joined = time.monotonic()
        recorder = BagRecorder(bag, demo_topics(spec)) if record else None
        try:
            sims = [p for n, p in runner.processes if n.name == "sim"]

            def stack_up() -> bool:  # our own simulator logged its start (another one may also publish states)
                return (monitor.states > 0 and len(monitor.commands) > 0
                        and all(SIM_STARTED in sim.output() for sim in sims))
            ready = monitor.wait_until(stack_up, READY_TIMEOUT)
            dead = [n.name for n, p in runner.processes if p.returncode is not None]
            if not ready or dead:
                print(f"mtpolicy demo: the stack did not come up (exited: {dead}); see {out / 'stack.log'}")
                return 1
            monitor.wait_until(lambda: foreign_publishers(monitor) is not None,
                               DISCOVERY_SETTLE - (time.monotonic() - joined))
            if crowded := foreign_publishers(monitor):
                print(f"mtpolicy demo: {crowded}")
                return 1
            runs = drive_goal_sets(monitor, next_goals, goal_sets, timeout / real_time_factor, tolerance)
            crowded = foreign_publishers(monitor)
        finally:
            if recorder is not None:
                recorder.close()
            monitor.destroy_node()
            rclpy.shutdown()
    print(format_table(runs, spec.end_effectors, tolerance))
    if crowded:
        print(f"WARNING: {crowded}: the results above may mix two robots")
    if recorder is not None:
        print(f"wrote {bag} (rosbag2, MCAP): " + ", ".join(f"{t} {n}" for t, n in recorder.counts.items()))
    (out / "goal_sets.json").write_text(strict_json(goal_sets_record(runs, tolerance, str(setup.model_path)),
                                                    indent=1))
    print(f"wrote {out / 'goal_sets.json'} (replay in the env: python -m benchmarks.demo_replay "
          f"{out / 'goal_sets.json'})")
    write_media(runs, spec, tolerance, setup.title, out, video)
    return 0 if not crowded and sum(r.held for r in runs) >= math.ceil(0.9 * len(runs)) else 1
