"""``mtpolicy``: run launch files without ``ros2 launch``, publish goals, run the demo.

    mtpolicy launch sim_controller robot:=planar8      # any launch/*.launch.xml, or a path
    mtpolicy launch demo --show-args
    mtpolicy goals --robot planar8 --seed 3 --episodes 5 --period 4 --until-held
    mtpolicy goals --xyz 0.25 0.1 0.1  0.3 0 0.1  0.25 -0.1 0.1
    mtpolicy demo --episodes 10 --seed 0 --out-dir out/demo --record
    mtpolicy demo --robot own.xml --model runs/own/policy.onnx       # writes out/demo/params.yaml
    mtpolicy render --robot humanoid --model humanoid_digrad --out reach.png
    mtpolicy import-robot vendor.urdf --out-dir my_robot --end-effectors tool --acceleration 10   # docs/own_robot.md

Every command takes the same words (``mtpolicy.vocabulary.VOCABULARY``, docs/options.md).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from mtpolicy.vocabulary import Parser


def _robot_path_args(args: dict[str, str], declared: dict, folder: Path) -> dict[str, str]:
    """Launch arguments for a robot given by path (a robot folder or an MJCF/URDF file): absolute paths, the
    robot's default model, and a params file written from the model.

    The params file names the model's end effectors and joints, which an MJCF/URDF path has no manifest to give
    (the launch files' default, config/params.yaml, holds what is the same for every robot).
    """
    from mtpolicy.policy import OnnxPolicy, resolve_model_path
    from mtpolicy.robots import find_robot, load_robot, shipped_robots
    from mtpolicy_tools.demo import params_yaml
    from mtpolicy_tools.model_choice import robot_for_model
    from mtpolicy_tools.launch_runner import LaunchError

    robot = args.get("robot")
    if robot is None or robot in shipped_robots():
        return args
    manifest = find_robot(robot)
    args = {**args, "robot": str(Path(robot).resolve())}
    if "model" in declared and "model" not in args:
        if manifest.default_model is None:
            raise LaunchError(f"robot:={robot} names no default_model (in a robot.yaml): give its policy too, "
                              "model:=POLICY.onnx")
        args["model"] = manifest.default_model_reference()
    if "model" in args:
        args["model"] = str(resolve_model_path(args["model"]).resolve())
    if "params_file" in declared and "params_file" not in args:
        model = OnnxPolicy(args["model"]) if "model" in args else None
        spec = robot_for_model(args["robot"], model) if model else load_robot(args["robot"])
        params = folder / "params.yaml"
        params.write_text(params_yaml(spec, model.path.name if model else "any policy"))
        print(f"mtpolicy launch: robot:= is a path and no params_file:= was given; using {params} (end effectors "
              f"{list(spec.end_effectors)}); write your own from it (docs/own_robot.md)", file=sys.stderr)
        args["params_file"] = str(params)
    elif "params_file" in args:
        if not Path(args["params_file"]).is_file():
            raise LaunchError(f"params_file {args['params_file']!r} not found")
        args["params_file"] = str(Path(args["params_file"]).resolve())
    return args


def _launch(ns: argparse.Namespace) -> int:
    from xml.etree.ElementTree import ParseError

    from mtpolicy.policy import ModelMismatch
    from mtpolicy.robots import RobotSpecError
    from mtpolicy_tools.launch_runner import LaunchError, parse_cli_args, parse_launch, run

    try:
        args = parse_cli_args(ns.args)
        if ns.show_args:
            for name, (default, doc) in parse_launch(ns.file, args).arguments.items():
                print(f"{name}:={default if default is not None else '<required>'}\n    {doc}")
            return 0
        with tempfile.TemporaryDirectory(prefix="mtpolicy-launch-") as folder:
            args = _robot_path_args(args, parse_launch(ns.file, args).arguments, Path(folder))
            return run(ns.file, args)
    except (LaunchError, RobotSpecError, ModelMismatch, FileNotFoundError) as e:
        print(f"mtpolicy launch: {e}", file=sys.stderr)
        return 2
    except ParseError as e:  # the runner parses the file and the files it includes
        print(f"mtpolicy launch: {ns.file} (or a file it includes): malformed XML: {e}", file=sys.stderr)
        return 2


def _goals(ns: argparse.Namespace) -> int:
    import os

    from mtpolicy.nodes import goals
    from mtpolicy_tools.environment import ros_env

    os.environ.update(ros_env())
    params = {"robot": ns.robot, "seed": ns.seed, "episodes": ns.episodes, "period": ns.period,
              "until_held": str(ns.until_held).lower(), "wait_for_subscribers": ns.wait}
    if ns.xyz:
        params["xyz"] = "[" + ",".join(repr(float(v)) for v in ns.xyz) + "]"
    if ns.end_effectors:
        params["end_effectors"] = "[" + ",".join(f"'{e}'" for e in ns.end_effectors) + "]"
    ros_args = [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
    return goals.main(["mtpolicy_goals", "--ros-args", *ros_args])


def _demo(ns: argparse.Namespace) -> int:
    from mtpolicy_tools.demo import DemoError, run_demo

    try:
        if ns.episodes < 1:
            raise DemoError(f"--episodes must be >= 1, got {ns.episodes}")
        if ns.reach_tolerance is not None and ns.reach_tolerance <= 0:
            raise DemoError(f"--reach-tolerance must be > 0 m, got {ns.reach_tolerance}")
        return run_demo(goal_sets=ns.episodes, seed=ns.seed, out=ns.out_dir, robot=ns.robot, timeout=ns.timeout,
                        tolerance=ns.reach_tolerance, real_time_factor=ns.real_time_factor, params=ns.params,
                        record=ns.record, video=ns.video, goal_distribution=ns.goal_distribution, model=ns.model,
                        realtime_priority=ns.realtime_priority)
    except DemoError as e:
        print(f"mtpolicy demo: {e}", file=sys.stderr)
        return 2


def _render(ns: argparse.Namespace) -> int:
    from mtpolicy_tools.render import render_cli

    return render_cli(ns, "mtpolicy render")


def _per_joint(tokens: list[str] | None, what: str) -> str | dict[str, float] | None:
    """``V`` (every joint), ``JOINT=V`` ... (``*=V``: the others), or ``none``."""
    if not tokens:
        return None
    if tokens == ["none"]:
        return "none"
    out = {}
    for token in tokens:
        joint, _, value = token.rpartition("=")
        try:
            out[joint or "*"] = float(value)
        except ValueError:
            raise SystemExit(f"mtpolicy import-robot: --{what} {token!r}: expected V or JOINT=V") from None
    return out


def _import_robot(ns: argparse.Namespace) -> int:
    from mtpolicy.robots import RobotSpecError
    from mtpolicy.robots import packages
    from mtpolicy.robots.importer import import_robot

    home = _per_joint(ns.home, "home") or {}
    if isinstance(home, str):
        raise SystemExit(f"mtpolicy import-robot: --home {home}: expected JOINT=V ...")
    source = packages.uri_for(ns.source) if Path(ns.source).is_file() else None
    command = shlex.join(["mtpolicy", "import-robot", *((source or a) if a == ns.source else a for a in ns.argv)])
    try:
        robot = import_robot(ns.source, ns.out_dir, ns.end_effectors, joints=ns.joints,
                             velocity=_per_joint(ns.velocity, "velocity"),
                             acceleration=_per_joint(ns.acceleration, "acceleration"),
                             effort=_per_joint(ns.effort, "effort"), home=home, home_keyframe=ns.home_keyframe,
                             reach_tolerance=ns.reach_tolerance, gravcomp=ns.gravcomp, command=command,
                             remove=ns.remove or ())
    except RobotSpecError as e:
        print(f"mtpolicy import-robot: {e}", file=sys.stderr)
        return 2
    for note in robot.notes:
        print(f"  {note}")
    print(f"wrote {robot.folder} ({len(robot.servos)} velocity servos) in {robot.seconds:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering (the demo's picture), before mujoco is imported
    from mtpolicy.robots import DEFAULT_ROBOT
    from mtpolicy_tools.environment import DEMO_REALTIME_PRIORITY
    from mtpolicy_tools.render import __doc__ as render_doc, add_render_arguments

    parser = Parser(prog="mtpolicy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("launch", help="run a .launch.xml without ros2 launch (the pip-only fallback; the subset "
                       "documented in mtpolicy_tools.launch_runner)")
    p.add_argument("file", help="a launch file path, or a name in share/mtpolicy/launch (demo, sim_controller, ...)")
    p.add_argument("args", nargs="*", help="launch arguments, name:=value")
    p.add_argument("--show-args", "-s", action="store_true", help="list the file's arguments and exit")
    p.set_defaults(func=_launch)

    p = sub.add_parser("goals", help="publish reach goal sets (random reachable ones, or --xyz)")
    p.add_word("robot", default=DEFAULT_ROBOT)
    p.add_word("end effectors", nargs="+")
    p.add_word("seeds", type=int, default=0, help="seed of the goal sets")
    p.add_word("episode count", type=int, default=1, help="goal sets to publish (0: cycle forever)")
    p.add_argument("--period", type=float, default=5.0, help="seconds each goal set is held")
    p.add_argument("--until-held", action=argparse.BooleanOptionalAction, default=False,
                   help="the next goal set as soon as the robot held this one (every end effector within the robot's "
                   "reach tolerance for 1 s, as the demo counts it), --period s at most")
    p.add_argument("--xyz", type=float, nargs="+", help="one goal set: x y z per end effector, base frame")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for subscribers")
    p.set_defaults(func=_goals)

    p = sub.add_parser("demo", help="sim + controller + N goal sets: table, picture, path plot")
    p.add_word("episode count", type=int, default=10, help="goal sets to reach one after another")
    p.add_word("seeds", type=int, default=0, help="seed of the goal sets")
    p.add_word("output folder", default="out/demo", help="folder for the pictures, the video, the bag and the log")
    p.add_word("model")
    p.add_word("goal distribution", choices=("local", "workspace"), default="local",
               help="each goal set a local move from where the robot is, or anywhere in the workspace")
    p.add_word("robot", default=None, help="shipped robot name, robot folder or MJCF/URDF path (default: the "
               f"model's robot; without --model, {DEFAULT_ROBOT})")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds allowed per goal set")
    p.add_word("tolerance", type=float, default=None)
    p.add_argument("--real-time-factor", type=float, default=1.0)
    p.add_argument("--realtime-priority", type=int, default=DEMO_REALTIME_PRIORITY, metavar="PRIORITY",
                   help="SCHED_FIFO priority of the sim and the controller, as a robot computer runs its control "
                   "loop (without the right to it: a warning and the default scheduler); 0: the default scheduler")
    p.add_argument("--params", help="ROS parameters YAML for the nodes (default: config/params.yaml for a shipped "
                   "robot; for a robot folder or file, <out-dir>/params.yaml written from the model)")
    p.add_argument("--record", action=argparse.BooleanOptionalAction, default=False,
                   help="record every topic to <out>/bag (rosbag2, MCAP storage)")
    p.add_argument("--video", action=argparse.BooleanOptionalAction, default=True,
                   help="write <out>/demo.mp4 (the run replayed offscreen)")
    p.set_defaults(func=_demo)

    p = sub.add_parser("render", help="picture of a robot driven to one goal set (no ROS)",
                       description=render_doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_render_arguments(p)
    p.set_defaults(func=_render)

    p = sub.add_parser("import-robot", help="a vendor MJCF or URDF -> a robot folder this stack serves",
                       description="Velocity servos with the vendor's limits, floating base fixed, home keyframe, "
                       "end-effector sites, package:// meshes: mtpolicy/robots/importer.py. Limits: V (every "
                       "actuated joint) or JOINT=V ... (*=V: the others).")
    p.add_argument("source", help="the vendor's MJCF or URDF")
    p.add_argument("--out-dir", required=True, help="the robot folder to write (robot.xml, scene.xml, robot.yaml)")
    p.add_argument("--end-effectors", nargs="+", required=True, help="sites or bodies (a body gets a site)")
    p.add_argument("--joints", nargs="+", help="the joints a reach policy serves (default: the actuated ones on an "
                   "end effector's chain; the others are held)")
    p.add_argument("--velocity", nargs="+", help="velocity limits, rad/s or m/s (default: the URDF's)")
    p.add_argument("--acceleration", nargs="+", help="acceleration limits, rad/s^2 or m/s^2")
    p.add_argument("--effort", nargs="+", help="effort limits, N m or N (default: the URDF's or the vendor "
                   "actuators' force range; none: record none)")
    p.add_argument("--home", nargs="+", help="home positions JOINT=V (default: the vendor keyframe, else zero "
                   "moved inside the limits)")
    p.add_argument("--home-keyframe", help="the vendor keyframe to start the home pose from")
    p.add_argument("--remove", nargs="+", help="bodies (with what hangs from them) and geoms to leave out: a "
                   "task's props, legs")
    p.add_argument("--reach-tolerance", type=float, default=0.02, help="m (the manifest's)")
    p.add_argument("--gravcomp", action=argparse.BooleanOptionalAction, default=True,
                   help="gravity compensation on every body (as a real arm's joint controllers do)")
    p.set_defaults(func=_import_robot)

    argv = sys.argv[1:] if argv is None else list(argv)
    ns = parser.parse_args(argv)
    ns.argv = argv[argv.index(ns.command) + 1:] if ns.command in argv else argv  # the command's own arguments
    return ns.func(ns)


if __name__ == "__main__":
    raise SystemExit(main())
