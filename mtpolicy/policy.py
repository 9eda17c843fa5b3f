"""OnnxPolicy: load an exported policy, check its contract, run it.

The contract travels inside the ``.onnx`` file as ``metadata_props`` (string
keys, JSON values), written by ``mtpolicy_training.ship.export``:

| key                 | value                                                    |
|---------------------|----------------------------------------------------------|
| format_version      | "2" (version 1 lacks the keys marked 2; still read)      |
| robot               | robot name                                               |
| robot_mjcf          | 2: the MJCF file: a path inside this package for shipped |
|                     | robots (mtpolicy/robots/<robot>/robot.xml), else its name |
| robot_mjcf_sha256   | SHA-256 of that MJCF file                                |
| joints              | JSON list: joint names, the order of the output          |
| end_effectors       | JSON list: end-effector MuJoCo *site* names, goal order  |
| base_frame          | MuJoCo *body* whose frame every position is in           |
| observation_layout  | JSON [[segment, size], ...] (see observation.py)         |
| observation_doc     | 2: JSON {segment: definition, sign, units}               |
| io_doc              | 2: the graph's input and output, in words                |
| control_period      | seconds between two policy steps in training             |
| velocity_limits     | JSON list, rad/s, in joint order                         |
| acceleration_limits | JSON list, rad/s^2, in joint order, null: unlimited;     |
|                     | absent: all unlimited (commands are ramped at them)      |
| reach_tolerance     | 2: metres; success = every end effector within it        |
| goal_distribution   | 2: "local" or "workspace" (see envs/reach.py)            |
| planner             | 2: JSON PlannerConfig of ``mtpolicy.planner`` ({} if the |
|                     | layout has no goal_config_error)                         |
| task_names          | JSON list                                                |
| method              | training method name                                     |
| training_config     | JSON object                                              |
| metrics             | JSON object (evaluation figures)                         |
| model_sha256        | SHA-256 of the file with this value blanked (integrity)  |

Graph: input ``observation`` float32 [batch, obs_size], output
``joint_velocity`` float32 [batch, n_joints] in rad/s; observation
normalization and action scaling are inside the graph (feed the raw
observation, command the output as it is).
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from mtpolicy.integrity import verify_model
from mtpolicy.observation import ObservationLayout
from mtpolicy.reach_task import reach_tolerance
from mtpolicy.robots import ROBOTS_DIR, RobotManifest, RobotSpec, find_robot, robot_folder, shipped_robots

FORMAT_VERSION = "2"
READ_VERSIONS = ("1", "2")
"""Contract versions this runtime reads (version 1 models get the version 2 keys' defaults)."""
INPUT_NAME = "observation"
OUTPUT_NAME = "joint_velocity"
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
"""Shipped models in a source checkout (or editable install)."""
JSON_KEYS = ("joints", "end_effectors", "observation_layout", "velocity_limits", "acceleration_limits", "task_names",
             "training_config", "metrics", "observation_doc", "planner")
OBSERVATION_DOC = {
    "joint_pos": "q: joint angles in `joints` order (rad)",
    "ee_pos": "end-effector site positions in the base frame, x y z per end effector in `end_effectors` order (m)",
    "goal_pos": "goal positions in the base frame, same order (m)",
    "goal_error": "goal_pos - ee_pos (m)",
    "joint_error": "per end effector i in order: J_i(q)^T (goal_i - ee_i), J_i the 3 x n_joints positional "
                   "Jacobian of site i in the base frame (mj_jacSite rotated into it; zero columns off the chain)",
    "goal_config_error": "q* - q (rad), q* the goal configuration of the goal set, planned once when the goal set "
                         "arrives from the q0 of that time by the `planner` (its `algorithm`, below; its "
                         "finish_at_goal may change it once, when the end effectors enter the tolerance)",
    "previous_command": "the joint velocities sent to the robot in the previous control period, in `joints` order "
                        "(rad/s): this policy's output of then, after the acceleration ramp (each joint within "
                        "acceleration_limits * control_period of the command before it) and the velocity limits; "
                        "zero while the robot is at rest before its first command",
}
"""Definitions of the observation segments, written into every contract."""
PLANNER_DOC = {
    "ik": "multi-start IK with the `planner` settings (restarts R, local_restarts L (0 where absent), local_range r, "
          "iterations K, damping lambda, tolerance eps, seed s, margin m): low = max(lower limit + m, -pi), high = "
          "min(upper limit - m, pi); rng = numpy.random.default_rng(s); candidates q0, rng.uniform(low, high, "
          "size=(R, n_joints)) and q0 + rng.uniform(-r, r, size=(L, n_joints)) (drawn in that order); each clipped "
          "into [low, high] and "
          "refined by up to K damped Newton steps q <- clip(q + J^T (J J^T + lambda^2 I)^-1 e, low, high) (J, e: the "
          "stacked positional Jacobians and goal errors of all end effectors, base frame), stopping once the "
          "largest end-effector error is below eps; q* is, of the candidates that stopped so, the one with the "
          "least max_j |q_j - q0_j| / v_j (v: velocity_limits; with avoid_collisions true, of those free of "
          "self-collision: no contact of negative distance between two geoms of the robot, or one of it and the "
          "world, that the robot does not have at its home keyframe, by MuJoCo's mj_collision on the MJCF, the "
          "robot's other joints at home); if none, the one with the least largest error that is free of "
          "self-collision, as are q0 + s (q - q0) and q0 + sign(q - q0) min(|q - q0|, s T v) at s = k / N, "
          "k = 1..N (T = max_j |q_j - q0_j| / v_j, N = max(1, ceil(T max_j v_j / 0.1))); if none, the goal set is "
          "rejected: q* = q0 with an infinite largest error, and the controller keeps its previous plan "
          "(mtpolicy/planner.py)",
    "time_optimal": "the time-optimal program with the `planner` settings (reach_tolerance tol, control_period dt, "
                    "solver): T* = min over (q, t) of t s.t. |q_j - q0_j| <= D_j(t), ||g_i - p_i(q)|| <= tol for every "
                    "end effector i, q within the joint limits (v: velocity_limits, a: acceleration_limits, p_i: site "
                    "positions in the base frame; D_j(t) = v_j t without a_j, else with K_j = floor(v_j / (a_j dt)): "
                    "a_j t (t + dt) / 2 for t < K_j dt, v_j t - K_j dt v_j + a_j dt^2 K_j (K_j + 1) / 2 after: the "
                    "travel of commands ramped from rest by a_j dt per period; with solver.rest_to_rest true (false "
                    "where absent): a_j t^2 / 4 for t < 2 v_j / a_j, v_j t - v_j^2 / a_j after, from rest to rest); "
                    "N* = ceil(T* / dt); B = the box "
                    "|q_j - q0_j| <= D_j(N* dt) within the limits; w* = min "
                    "over q in B of max_i ||g_i - p_i(q)||; L = max(w*, solver.target_depth tol); "
                    "q* = argmin over q in "
                    "B of sum_j ((q_j - q0_j) / v_j)^2 s.t. ||g_i - p_i(q)|| <= L; q* = q0 when every end effector is "
                    "within tol at q0. With finish_at_goal true (false where absent), once every end effector is "
                    "within tol (at the joint angles of a control step) q* is the finish for the rest of the goal "
                    "set: that target clipped into [low, high] and refined by the `ik` damped Newton steps "
                    "(iterations K, damping lambda, tolerance eps, margin m, low and high as there; each step "
                    "q <- clip(q + W J^T (J W J^T + lambda^2 I)^-1 e, low, high), W = diag(v / max_j v_j)^2); where "
                    "that misses eps or a point of its line from the target leaves tol (target + s (finish - "
                    "target) at the s of ik's moves), and finish_restarts F > 0 (0 where absent), the finish is, of "
                    "the refinements of target + d for d in rng.uniform(-r, r, size=(F, n_joints)) (drawn after the "
                    "ik candidates, same rng) within eps on a line within tol, the one with the least "
                    "max_j |q_j - target_j| / v_j; failing that, the first refinement if that lowers "
                    "its largest end-effector error (else the target). Solved locally by SLSQP from the "
                    "damped-Newton IK solutions of q0 and of "
                    "solver.local_starts configurations q0 + d (d uniform in +-solver.local_range) and "
                    "solver.global_starts uniform in the limits (numpy.random.default_rng(solver.seed), offsets drawn "
                    "first), the solver.refine_starts nearest in time; a global optimum is not guaranteed, so any "
                    "solver that finds a lower T* serves the policy at least as well. The goal set is rejected (q* = "
                    "q0 with an infinite largest error; the controller keeps its previous plan) where no start gives "
                    "a feasible point, and, with avoid_collisions true, where q* is in self-collision (as for ik) "
                    "(mtpolicy/planner.py)",
}
"""What the planner of a planner-conditioned policy computes, by ``PlannerConfig.algorithm``."""
IO_DOC = ("input `observation`: float32 [batch, size of observation_layout], the raw segments of observation_doc "
          "concatenated in layout order (base-frame positions: p_base = R_base^T (p_world - x_base) for the world "
          "pose x_base, R_base of body `base_frame`); output `joint_velocity`: float32 [batch, len(joints)] in rad/s, "
          "in `joints` order, within velocity_limits; the robot in training and evaluation sent each joint's "
          "command within a_j control_period of the previous one (acceleration_limits; zero before the first). "
          "Observation normalization and output saturation are inside "
          "the graph: feed the raw observation, command the output as it is, every control_period seconds.")
"""What the graph takes and gives, written into every contract."""


class ModelMismatch(ValueError):
    """The model's contract does not match the robot or joints it is asked to drive."""


@dataclass(frozen=True)
class PolicyContract:
    """The metadata of an exported policy, parsed."""

    robot: str
    robot_mjcf: str
    robot_mjcf_sha256: str
    joints: tuple[str, ...]
    end_effectors: tuple[str, ...]
    base_frame: str
    observation_layout: ObservationLayout
    control_period: float
    velocity_limits: tuple[float, ...]
    acceleration_limits: tuple[float, ...]
    """inf where unlimited (null in the metadata)."""
    reach_tolerance: float
    goal_distribution: str
    planner: dict
    task_names: tuple[str, ...]
    method: str
    training_config: dict
    metrics: dict

    def to_metadata(self) -> dict[str, str]:
        """String key/values for onnx ``metadata_props``."""
        return {
            "format_version": FORMAT_VERSION, "robot": self.robot, "robot_mjcf": self.robot_mjcf,
            "robot_mjcf_sha256": self.robot_mjcf_sha256,
            "joints": json.dumps(list(self.joints)), "end_effectors": json.dumps(list(self.end_effectors)),
            "base_frame": self.base_frame, "observation_layout": json.dumps(self.observation_layout.to_json()),
            "observation_doc": json.dumps(self.observation_doc()),
            "io_doc": IO_DOC,
            "control_period": repr(float(self.control_period)),
            "velocity_limits": json.dumps([float(v) for v in self.velocity_limits]),
            "acceleration_limits": json.dumps([float(a) if np.isfinite(a) else None for a in self.acceleration_limits]),
            "reach_tolerance": repr(float(self.reach_tolerance)), "goal_distribution": self.goal_distribution,
            "planner": json.dumps(self.planner),
            "task_names": json.dumps(list(self.task_names)), "method": self.method,
            "training_config": json.dumps(self.training_config), "metrics": json.dumps(self.metrics),
        }

    def observation_doc(self) -> dict[str, str]:
        """The definition of each observation segment; the planned one says what its planner computes."""
        doc = {s: OBSERVATION_DOC[s] for s in self.observation_layout.names}
        if "goal_config_error" in doc:
            algorithm = self.planner.get("algorithm", "ik")
            doc["goal_config_error"] += f": {algorithm}, {PLANNER_DOC[algorithm]}"
        return doc

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str = "model") -> "PolicyContract":
        version = meta.get("format_version")
        if version not in READ_VERSIONS:
            raise ModelMismatch(f"{source}: format_version {version!r}, this runtime reads {list(READ_VERSIONS)}")
        required: tuple[str, ...] = ("robot", "robot_mjcf_sha256", "base_frame", "control_period", "method", "joints",
                                     "end_effectors", "observation_layout", "velocity_limits", "task_names",
                                     "training_config", "metrics")
        if version != "1":
            required += ("robot_mjcf", "reach_tolerance", "goal_distribution", "planner")
        try:
            v: dict[str, Any] = {k: json.loads(meta[k]) if k in JSON_KEYS else meta[k] for k in required}
        except KeyError as e:
            raise ModelMismatch(f"{source}: metadata lacks {e.args[0]!r}") from None
        accelerations = json.loads(meta.get("acceleration_limits", "null")) or [None] * len(v["joints"])
        if version == "1":  # what version 1 left to the training config or to the robot's defaults
            env = v["training_config"].get("env", {})
            shipped = v["robot"] in shipped_robots()
            mjcf = find_robot(v["robot"]).mjcf_path.relative_to(ROBOTS_DIR.parent.parent) if shipped else v["robot"]
            v |= {"robot_mjcf": str(mjcf),
                  "reach_tolerance": env.get("reach_tolerance") or reach_tolerance(v["robot"]),
                  "goal_distribution": "local", "planner": {}}
        return cls(robot=v["robot"], robot_mjcf=v["robot_mjcf"], robot_mjcf_sha256=v["robot_mjcf_sha256"],
                   joints=tuple(v["joints"]), end_effectors=tuple(v["end_effectors"]), base_frame=v["base_frame"],
                   observation_layout=ObservationLayout.from_json(v["observation_layout"]),
                   control_period=float(v["control_period"]), velocity_limits=tuple(v["velocity_limits"]),
                   acceleration_limits=tuple(math.inf if a is None else float(a) for a in accelerations),
                   reach_tolerance=float(v["reach_tolerance"]), goal_distribution=v["goal_distribution"],
                   planner=v["planner"], task_names=tuple(v["task_names"]), method=v["method"],
                   training_config=v["training_config"], metrics=v["metrics"])

    @classmethod
    def for_robot(cls, spec: RobotSpec, control_period: float, method: str, training_config: dict,
                  metrics: dict | None = None, reach_tolerance: float = 0.0, goal_distribution: str = "local",
                  planner: dict | None = None, previous_command: bool = False) -> "PolicyContract":
        """The contract of a policy for ``spec``; a non-empty ``planner`` makes the layout planned,
        ``previous_command`` appends the command sent the period before."""
        return cls(robot=spec.name, robot_mjcf=spec.robot_file, robot_mjcf_sha256=spec.mjcf_sha256,
                   joints=spec.joint_names, end_effectors=spec.end_effectors, base_frame=spec.base_body,
                   observation_layout=ObservationLayout.for_robot(spec.n_joints, spec.n_tasks, bool(planner),
                                                                 previous_command),
                   control_period=control_period, velocity_limits=tuple(spec.velocity_limits.tolist()),
                   acceleration_limits=tuple(spec.acceleration_limits.tolist()), reach_tolerance=reach_tolerance,
                   goal_distribution=goal_distribution, planner=planner or {},
                   task_names=tuple(f"reach_{ee}" for ee in spec.end_effectors), method=method,
                   training_config=training_config, metrics=metrics or {})

    def mismatches(self, spec: RobotSpec, joints: list[str] | tuple[str, ...] | None = None) -> list[str]:
        """Every way this contract disagrees with a robot (and a commanded joint order)."""
        out = []
        if self.robot != spec.name:
            out.append(f"model is for robot {self.robot!r}, not {spec.name!r}")
        if self.robot_mjcf_sha256 != spec.mjcf_sha256:
            out.append(f"model was trained on MJCF sha256 {self.robot_mjcf_sha256[:12]}..., "
                       f"robot {spec.name!r} has {spec.mjcf_sha256[:12]}...")
        if tuple(self.joints) != tuple(spec.joint_names):
            out.append(f"model joints {list(self.joints)} != robot joints {list(spec.joint_names)}")
        if joints is not None and sorted(joints) != sorted(self.joints):
            out.append(f"'joints' parameter {list(joints)} is not a permutation of the model joints "
                       f"{list(self.joints)}")
        if tuple(self.end_effectors) != tuple(spec.end_effectors):
            out.append(f"model end effectors {list(self.end_effectors)} != robot {list(spec.end_effectors)}")
        if self.base_frame != spec.base_body:
            out.append(f"model base frame {self.base_frame!r} != robot base {spec.base_body!r}")
        expected = ObservationLayout.for_robot(spec.n_joints, spec.n_tasks, bool(self.planner),
                                               self.observation_layout.previous_command)
        if self.observation_layout != expected:
            out.append(f"model observation layout {self.observation_layout.to_json()} != "
                       f"this runtime's {expected.to_json()}")
        if len(self.velocity_limits) != spec.n_joints or not np.allclose(self.velocity_limits, spec.velocity_limits):
            out.append(f"model velocity limits {list(self.velocity_limits)} != robot "
                       f"{spec.velocity_limits.tolist()}")
        if len(self.acceleration_limits) != spec.n_joints or not np.allclose(self.acceleration_limits,
                                                                             spec.acceleration_limits):
            out.append(f"model acceleration limits {list(self.acceleration_limits)} != robot "
                       f"{spec.acceleration_limits.tolist()}")
        return out


def model_dirs() -> list[Path]:
    """Where shipped model names are looked up, in order: the checkout's models/, then share/mtpolicy/models
    of each prefix on ``AMENT_PREFIX_PATH`` (a colcon install, a ROS 2 install) and of this Python (pip)."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    return list(dict.fromkeys([MODELS_DIR, *(Path(p) / "share" / "mtpolicy" / "models" for p in prefixes)]))


def resolve_model_path(model: str | Path) -> Path:
    """A path; the name of a shipped model (``planar8_digrad``) in one of ``model_dirs()``; or a robot with a
    manifest (a shipped robot's name, a robot folder): the ``default_model`` its manifest names."""
    path = Path(model)
    if path.is_file():
        return path
    folders = model_dirs()
    for folder in folders:
        if (folder / f"{model}.onnx").is_file():
            return folder / f"{model}.onnx"
    robot = robot_folder(model)
    if robot is not None:
        return resolve_model_path(RobotManifest.read(robot).default_model_reference())
    names = sorted({p.stem for folder in folders for p in folder.glob("*.onnx")})
    raise FileNotFoundError(f"model {str(model)!r} is neither a file nor a shipped model {names} (looked in "
                            f"{[str(f) for f in folders]}), nor a robot {shipped_robots()} or robot folder")


class OnnxPolicy:
    """An exported policy: observation (B, obs) float32 -> joint velocity (B, n) rad/s."""

    def __init__(self, model: str | Path, intra_op_threads: int = 1):
        self.path = resolve_model_path(model)
        data = self.path.read_bytes()
        self.sealed = verify_model(data, str(self.path))
        """True if the file carries its checksum (and matched it); False for a model exported without one."""
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.contract = PolicyContract.from_metadata(meta, source=str(self.path))
        inputs = {i.name: i for i in self.session.get_inputs()}
        if INPUT_NAME not in inputs or inputs[INPUT_NAME].shape[-1] != self.contract.observation_layout.size:
            raise ModelMismatch(f"{self.path}: input {INPUT_NAME!r} of size "
                                f"{self.contract.observation_layout.size} expected, graph has "
                                f"{[(i.name, i.shape) for i in inputs.values()]}")

    def check(self, spec: RobotSpec, joints: list[str] | tuple[str, ...] | None = None) -> None:
        """Raise ModelMismatch naming every disagreement with the robot."""
        problems = self.contract.mismatches(spec, joints)
        if problems:
            raise ModelMismatch(f"{self.path.name} does not fit robot {spec.name!r}: " + "; ".join(problems))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim == 1
        out = self.session.run([OUTPUT_NAME], {INPUT_NAME: obs[None] if single else obs})[0]
        return out[0] if single else out
