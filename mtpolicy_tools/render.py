"""``mtpolicy render``: a picture of a robot driven to one random reachable goal set in MuJoCo (no ROS), labeled.

The drawing itself (camera, goal spheres, traces, PNG) is the runtime's ``mtpolicy.offscreen``; here are the
captions and legends the tools' pictures and videos share, and the command:

    MUJOCO_GL=egl mtpolicy render                                   # planar8 driven by its default model
    MUJOCO_GL=egl mtpolicy render --robot humanoid --model humanoid_digrad --out reach.png
    MUJOCO_GL=egl mtpolicy render --robot humanoid --model dls --seed 3 --out docs/humanoid_reach.png
    MUJOCO_GL=egl mtpolicy render --robot own.xml --end-effectors left_tip right_tip --out own.png

The robot and model default as in every command (``mtpolicy_tools.model_choice``): planar8, and the robot's
default model. ``--model dls`` is the damped-least-squares baseline, which also drives a robot without a
default model (saying so in a line). A planner-conditioned policy's goal configuration is planned once from
the start, as the controller node plans a goal set when it arrives (and becomes its finish once every end
effector is within the reach tolerance, where the contract's planner says so).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import mujoco
import numpy as np

from mtpolicy.offscreen import SceneRenderer, base_to_world, fit_camera, geom_corners, robot_geoms, write_png
from mtpolicy.vocabulary import Parser

if TYPE_CHECKING:
    from mtpolicy.policy import OnnxPolicy

DLS = "dls"
"""The ``--model`` of the damped-least-squares baseline (the anchor's name in every command)."""


def caption(rgb: np.ndarray, title: str, lines: Sequence[str] = (),
            legend: Sequence[tuple[str, np.ndarray]] = ()) -> np.ndarray:
    """``rgb`` under a white band with ``title`` and ``lines``, and a legend (label, RGBA swatch) bottom left."""
    from PIL import Image, ImageDraw, ImageFont

    width = rgb.shape[1]
    size = max(12, width // 40)
    title_font, font = ImageFont.load_default(size=int(size * 1.15)), ImageFont.load_default(size=size)
    band = int(size * 1.6) * (1 + len(lines)) + size // 2
    band += -(rgb.shape[0] + band) % 16  # video codecs want sizes in multiples of 16
    image = Image.new("RGB", (width, rgb.shape[0] + band), "white")
    image.paste(Image.fromarray(np.ascontiguousarray(rgb[..., :3])), (0, band))
    draw = ImageDraw.Draw(image)
    draw.text((size // 2, size // 3), title, fill="black", font=title_font)
    for i, line in enumerate(lines):
        draw.text((size // 2, size // 3 + int(size * 1.6) * (i + 1)), line, fill=(60, 60, 60), font=font)
    y = image.height - int(size * 1.5) * len(legend) - size // 2
    if legend:  # on a white box: the scene behind may be dark
        right = 2 * size + max(int(draw.textlength(label, font=font)) for label, _ in legend) + size // 2
        draw.rectangle((size // 4, y - size // 3, right, image.height - size // 4), fill="white", outline=(150,) * 3)
    for i, (label, rgba) in enumerate(legend):
        top = y + int(size * 1.5) * i
        color = tuple(int(255 * c) for c in rgba[:3])
        draw.ellipse((size // 2, top, size // 2 + size, top + size), fill=color, outline="black")
        draw.text((2 * size, top - size // 8), label, fill="black", font=font)
    return np.asarray(image)


def goal_legend(end_effectors: Sequence[str], colors: np.ndarray, traces: bool = False
                ) -> list[tuple[str, np.ndarray]]:
    """Legend entries: each end effector's colour names its goal sphere (and its trace)."""
    what = "goal (sphere), path (line)" if traces else "goal (sphere)"
    return [(f"{ee}: {what}", rgba) for ee, rgba in zip(end_effectors, colors)]


def render_choice(model: str | None, robot: str | None, prog: str) -> tuple["OnnxPolicy | None", str]:
    """The policy (None: the DLS baseline) and robot ``render`` drives: ``model_and_robot``'s rule, ``dls`` for the
    baseline, which a robot without a default model gets too (a line on stderr says so)."""
    from mtpolicy.robots import DEFAULT_ROBOT, find_robot
    from mtpolicy_tools.model_choice import model_and_robot

    if model is None and find_robot(robot or DEFAULT_ROBOT).default_model is None:
        print(f"{prog}: robot {robot} has no default_model (robot.yaml): driving it with {DLS} (--model for a "
              "policy)", file=sys.stderr)
        model = DLS
    if model == DLS:
        return None, robot or DEFAULT_ROBOT
    return model_and_robot(model, robot)


def reach_and_render(robot: str, path: str | Path, seed: int = 0, policy: "OnnxPolicy | None" = None,
                     seconds: float = 3.0, control_period: float = 0.05, size: int = 720, goal_radius: float = 0.06,
                     end_effectors: list[str] | None = None) -> np.ndarray:
    """Drive ``robot`` from its home keyframe to goal set ``seed`` and render the end; returns the errors (m).

    Goals are translucent spheres of ``goal_radius`` (m), so a reached goal
    shows as a halo around its end effector; the picture is titled with the
    robot, the controller and the errors.

    The goal set is the first of ``sample_goal_sets(seed)`` (what ``mtpolicy goals --seed`` publishes
    first). The controller is ``policy`` (a planner-conditioned one follows the goal configuration planned once
    from the start, and its finish once the contract's planner says so), or the damped-least-squares baseline
    when it is None; its velocities pass the controller node's clamp, joint-limit stop, collision guard and ramp
    (``safety.limited_command``, ``safety.rate_limit``) and are applied every ``control_period`` s for ``seconds`` s
    of simulated time. ``end_effectors`` defaults to the policy's, else
    the robot's (its robot.yaml's, else every site).
    """
    from mtpolicy import safety
    from mtpolicy.dls import DampedLeastSquares
    from mtpolicy.kinematics import Kinematics
    from mtpolicy.reach_task import sample_goal_sets
    from mtpolicy.observation import ObservationLayout, observe
    from mtpolicy.planner import GoalConfigurationPlanner, PlannerConfig
    from mtpolicy.robots import load_robot

    spec = load_robot(robot, end_effectors or (list(policy.contract.end_effectors) if policy else None))
    mj_model = spec.load_model()
    data = mujoco.MjData(mj_model)
    spec.reset_to_home(mj_model, data)
    kin = Kinematics(spec, mj_model)
    if policy is None:
        controller, name = DampedLeastSquares(kin, ObservationLayout.for_robot(spec.n_joints, spec.n_tasks)).velocity, \
            "damped least squares (DLS)"
    else:
        policy.check(spec)
        controller, name = policy, f"{policy.path.stem} ({policy.contract.method})"
    goals = sample_goal_sets(kin, np.random.default_rng(seed), 1)[0]
    planner, goal_config, finished = None, None, False
    if policy is not None and policy.contract.planner:
        planner = GoalConfigurationPlanner(kin, PlannerConfig(**policy.contract.planner))
        q0 = data.qpos[kin.qpos_adr].copy()
        goal_config, worst = planner.plan(q0, goals)
        if not np.isfinite(worst):
            raise ValueError(f"the planner of {policy.path.name} rejects goal set {seed}: {planner.config.rejection}")
    actuators = spec.actuator_ids(mj_model)
    guard = safety.CollisionGuard(kin, control_period, spec.acceleration_limits)
    sent = np.zeros(spec.n_joints)  # the command of the period before, ramped as the controller node ramps it
    observes_command = policy is not None and policy.contract.observation_layout.previous_command
    substeps = max(1, int(round(control_period / mj_model.opt.timestep)))
    for _ in range(int(round(seconds / control_period))):
        q = data.qpos[kin.qpos_adr]
        if planner is not None and not finished and planner.config.finishes(
                np.linalg.norm(kin.ee_positions(q) - goals, axis=-1),
                np.max(np.abs(goal_config - q) / spec.velocity_limits)):
            goal_config, finished = planner.finish(q0, goals)[0], True
        obs, _ = observe(kin, q, goals, goal_config, sent if observes_command else None)
        command = safety.limited_command(q, np.asarray(controller(obs), np.float64), spec.velocity_limits,
                                         spec.joint_limits, collision_guard=guard)[0]
        sent = data.ctrl[actuators] = safety.rate_limit(command, sent, spec.acceleration_limits, control_period)[0]
        mujoco.mj_step(mj_model, data, nstep=substeps)
    errors = np.linalg.norm(kin.ee_positions(data.qpos[kin.qpos_adr]) - goals, axis=-1)
    colors = np.array([mj_model.site_rgba[mj_model.site(s).id] for s in spec.end_effectors])
    mujoco.mj_forward(mj_model, data)
    world_goals = base_to_world(data, mj_model.body(spec.base_body).id, goals)
    camera = fit_camera(mj_model, np.concatenate([geom_corners(mj_model, data, robot_geoms(mj_model, spec.base_body)),
                                                  world_goals - goal_radius, world_goals + goal_radius]))
    with SceneRenderer(mj_model, camera, size, size) as renderer:
        frame = renderer.render(data, world_goals, colors, goal_radius)
    write_png(path, caption(frame, f"{spec.name} driven by {name}: goal set {seed}, after {seconds:g} s",
                            ["end-effector error: " + ", ".join(f"{ee} {1e3 * e:.1f} mm"
                                                                for ee, e in zip(spec.end_effectors, errors))],
                            goal_legend(spec.end_effectors, colors)))
    return errors


def end_effectors_from_params(path: str | Path) -> list[str] | None:
    """The ``end_effectors`` of the ``sim`` (else ``goals``) node in a ROS parameters YAML, if it names any."""
    import yaml

    text = yaml.safe_load(Path(path).read_text()) or {}
    for node in ("sim", "goals"):
        ees = ((text.get(node) or {}).get("ros__parameters") or {}).get("end_effectors")
        if ees:
            return [str(e) for e in ees]
    return None


def add_render_arguments(parser: Parser) -> None:
    """The options of ``mtpolicy render`` (and ``python -m mtpolicy_tools.render``), in the commands' words."""
    from mtpolicy.robots import DEFAULT_ROBOT

    parser.add_word("robot", help="shipped robot name, robot folder or MJCF/URDF path (default: the model's robot; "
                    f"without --model, {DEFAULT_ROBOT})")
    parser.add_word("end effectors", nargs="+", help="end-effector sites, in task (goal) order (default: the "
                    "model's; with --model dls, the robot.yaml's, else every site)")
    parser.add_argument("--params", help="ROS parameters YAML whose sim.end_effectors name the end effectors "
                        "(instead of --end-effectors)")
    parser.add_word("seeds", type=int, default=0, help="seed of the goal set")
    parser.add_word("model", help=f"ONNX policy, a path or a shipped name, or {DLS}: the damped-least-squares "
                        "baseline (default: the robot's default_model, in its robot.yaml; a robot without one: "
                        f"{DLS})")
    parser.add_argument("--seconds", type=float, default=3.0, help="simulated seconds before the picture")
    parser.add_argument("--size", type=int, default=720, help="image width and height (pixels)")
    parser.add_argument("--goal-radius", type=float, default=0.06, help="radius of the goal spheres (m)")
    parser.add_argument("--out", default="reach.png", help="PNG to write")


def render_cli(ns: argparse.Namespace, prog: str) -> int:
    """Run the parsed options; a mistake in them is a one-line error (exit code 2)."""
    from mtpolicy.policy import ModelMismatch
    from mtpolicy.robots import RobotSpecError

    problems = [f"{name} must be > 0, got {value}" for name, value in (("--size", ns.size),
                ("--goal-radius", ns.goal_radius)) if value <= 0]
    problems += [f"--seconds must be >= 0, got {ns.seconds}"] if ns.seconds < 0 else []
    problems += ["give the end effectors once: --end-effectors or --params"] if ns.end_effectors and ns.params \
        else []
    try:
        if problems:
            raise ValueError("; ".join(problems))
        end_effectors = ns.end_effectors or (end_effectors_from_params(ns.params) if ns.params else None)
        policy, robot = render_choice(ns.model, ns.robot, prog)
        errors = reach_and_render(robot, ns.out, ns.seed, policy, ns.seconds, size=ns.size,
                                  goal_radius=ns.goal_radius, end_effectors=end_effectors)
    except (ValueError, RobotSpecError, ModelMismatch, OSError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    print(f"wrote {ns.out}: end-effector errors " + ", ".join(f"{1e3 * e:.1f} mm" for e in errors))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m mtpolicy_tools.render", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    add_render_arguments(parser)
    return render_cli(parser.parse_args(argv), parser.prog)


if __name__ == "__main__":
    raise SystemExit(main())
