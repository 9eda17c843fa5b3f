"""Export a DAgger run's time-optimal student with its target refined in the graph (``RefinedTargetActor``).

    python -m mtpolicy_training.ship.refine runs/planar8/dagger-time-optimal-1it --seed 20240517 --episodes 500
    python -m mtpolicy_training.ship.refine models/humanoid_reach.onnx --refinement.servo-lag 0.01 \
        --out runs/candidates/humanoid_reach-lag0.01.onnx

A student trained on the time-optimal teacher's labels (q_T - q) / (dt v) predicts the teacher's target q_T. The
exported graph computes the end effectors' forward kinematics and Jacobians at that prediction and places the
target as the time-optimal program does: in the box of the least number of periods in which damped Gauss-Newton
steps land every end effector within tolerance. The student chooses among the program's local solutions (what a
local method cannot), the steps make the choice exact (what the fit alone is not). The student's weights are the
run's last (its checkpoint's); the graph's input and output and the contract are those of any reach policy of
the run's robot, its training config extended by ``refine``. Validated on ``episodes`` goal sets of ``seed``
against the time-optimal bound, written beside the model as ``<out>.json`` with the time of one call of it and of
the run's student alone. A model this command exported serves as the run: its student's weights are read from its
graph, so a shipped model is refined again without its run's checkpoint.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import torch
import tyro
from onnx import numpy_helper

from mtpolicy.integrity import sha256_file, strict_json
from mtpolicy.policy import OnnxPolicy
from mtpolicy_training.algos.dagger import DaggerConfig, Student
from mtpolicy_training.algos.refined_target import RefinedTargetActor, TargetRefinement
from mtpolicy_training.core.options import parse_config
from mtpolicy_training.core.run_record import RunRefused, load_checkpoint, read_run_config
from mtpolicy_training.core.torch_kinematics import TorchKinematics
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import evaluate_reach
from mtpolicy_training.envs.seeds import VALIDATION_SEED
from mtpolicy_training.envs.time_optimal import bound_table
from mtpolicy_training.ship.export import export_policy


@dataclass
class RefineConfig:
    """Which DAgger run, how many refinement steps, where the model goes."""

    run: tyro.conf.Positional[Path]
    """A DAgger run with the ``time_optimal`` teacher (config.json, checkpoint.pt), or a model refined from one
    (``.onnx``: its student is the one in its graph)."""
    refinement: TargetRefinement = TargetRefinement()
    """How the target is refined."""
    out: Path | None = None
    """The ONNX file written (default: ``<run>/refined_policy.onnx``; required for a model)."""
    episodes: int = 200
    """Validation goal sets."""
    seed: int = VALIDATION_SEED
    """Their seed (a validation seed: this is a choice)."""

    def __post_init__(self):
        bad = [name for name, ok in (("episodes", self.episodes > 0),
                                     ("out (required when the run is a model)", self.out or not self.from_model))
               if not ok]
        if bad:
            raise ValueError("invalid config value(s): " + ", ".join(bad))

    @property
    def from_model(self) -> bool:
        """Whether ``run`` is a refined model rather than a run."""
        return is_model(self.run)


def is_model(run: Path) -> bool:
    """Whether ``run`` names an exported model (``.onnx``) rather than a run's folder."""
    return run.suffix == ".onnx"


def refined_student(run: Path, refinement: TargetRefinement) -> tuple[RefinedTargetActor, ReachVectorEnv, dict]:
    """The run's last student (or a refined model's) with its target refined, an env of the graph's task and the
    training config (as recorded; with ``deadbeat`` its env observes ``previous_command``)."""
    if is_model(run):
        config, weights = student_of_model(run)
    else:
        config, weights = read_run_config(run), load_checkpoint(run / "checkpoint.pt")["student"]["policy"]
    algo_record = config.get("algo", {})
    if config.get("command", "train dagger") != "train dagger" or algo_record.get("teacher") != "time_optimal":
        raise RunRefused(f"{run}: not a DAgger run with the time_optimal teacher (its labels are no target)")
    algo = DaggerConfig.from_record(algo_record)
    env_config = ReachConfig(**config["env"])
    if env_config.planned:
        raise RunRefused(f"{run}: a planner-conditioned run (its teacher is the servo to q*, not a target)")
    env = ReachVectorEnv(1, env_config, time_limit=False)
    student = Student(algo, env.layout, env.spec.n_joints, *env.observation_statistics())
    student.policy.load_state_dict(weights)
    if refinement.command == "deadbeat":  # the graph also observes the command of the period before
        env_config = replace(env_config, previous_command=True)
        env = ReachVectorEnv(1, env_config, time_limit=False)
        config = {**config, "env": {**config["env"], "previous_command": True}}
    actor = RefinedTargetActor(student.policy, TorchKinematics(env.kin), env.layout, env.spec.velocity_limits,
                               env.spec.joint_limits, env_config.control_period, env_config.tolerance,
                               refinement, env.spec.acceleration_limits).eval()
    return actor, env, config


def recorded_refinement(model: Path) -> TargetRefinement:
    """The refinement a model this command exported records (the defaults where it records none)."""
    recorded = OnnxPolicy(model).contract.training_config.get("refine") or {}
    return TargetRefinement(**{k: v for k, v in recorded.items() if k in TargetRefinement.__dataclass_fields__})


def student_of_model(model: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The training config and the student's weights of a model this command exported: the config as recorded
    without ``refine`` (nor the ``previous_command`` that ``deadbeat`` adds), the normalizer's buffers by name and
    each layer ``net.<i>`` from its Gemm node (y = x B + C)."""
    config = dict(OnnxPolicy(model).contract.training_config)  # its checksum verified
    refine = config.pop("refine", None)
    if refine is None:
        raise RunRefused(f"{model}: not a refined model (its training config has no 'refine')")
    if refine.get("command") == "deadbeat":
        config["env"] = {**config["env"], "previous_command": False}
    graph = onnx.load(model).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights = {f"normalizer.{name}": arrays.get(f"actor.actor.normalizer.{name}") for name in ("mean", "std")}
    for node in graph.node:
        if (layer := re.fullmatch(r"/actor/net/(net\.\d+)/Gemm", node.name)) is not None:
            flags = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if flags.get("transA", 0) or flags.get("alpha", 1.0) != 1.0 or flags.get("beta", 1.0) != 1.0:
                raise RunRefused(f"{model}: layer {layer[1]} is not y = x B + C ({flags})")
            b = arrays[node.input[1]].T if flags.get("transB", 0) else arrays[node.input[1]]
            weights[f"{layer[1]}.weight"] = b[None]
            weights[f"{layer[1]}.bias"] = arrays[node.input[2]].reshape(1, 1, -1)
    if any(w is None for w in weights.values()) or len(weights) < 4:
        raise RunRefused(f"{model}: no student's weights in its graph (normalizer and Gemm layers of /actor/net)")
    return config, {name: torch.as_tensor(np.array(w)) for name, w in weights.items()}


def main(argv: list[str] | None = None) -> None:
    prog = "python -m mtpolicy_training.ship.refine"
    cfg = parse_config(RefineConfig, argv, prog=prog)
    start = time.perf_counter()
    try:
        if cfg.from_model:  # its own refinement is the default: an option changes only what it names
            cfg = parse_config(RefineConfig, argv, prog=prog,
                               default=replace(cfg, refinement=recorded_refinement(cfg.run)))
        actor, env, config = refined_student(cfg.run, cfg.refinement)
    except (OSError, KeyError, ValueError) as e:  # a missing file; RunRefused, CorruptFile, a bad value
        sys.exit(f"error: {e}")
    env_config = env.config
    out = cfg.out or cfg.run / "refined_policy.onnx"
    bound = bound_table(env_config, cfg.episodes, cfg.seed,
                        cache_dir=(out.parent if cfg.from_model else cfg.run) / "bound").bound_seconds
    with torch.no_grad():
        metrics = evaluate_reach(lambda obs: actor(torch.as_tensor(obs, dtype=torch.float32)).numpy(), env_config,
                                 cfg.episodes, cfg.seed, bound=bound)
    weights = f"the student of {cfg.run.name} (sha256 {sha256_file(cfg.run)})" if cfg.from_model else "last"
    refine = {**asdict(cfg.refinement), "weights": weights, "validation_seed": cfg.seed}
    export_policy(actor, env.spec, env_config,
                  method=f"dagger-{config['algo']['teacher']}-refined", training_config={**config, "refine": refine},
                  metrics=metrics, path=out)
    obs, _ = env.reset(seed=cfg.seed)
    record = {**refine, "seconds": time.perf_counter() - start, **metrics, "call_ms": call_milliseconds(out, obs)}
    if not cfg.from_model:
        record["student_call_ms"] = call_milliseconds(cfg.run / "policy.onnx", obs[:, actor.student_input])
    out.with_suffix(".json").write_text(strict_json(record, indent=2))
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in record.items()
                      if k in ("success_rate", "time_to_reach_median", "time_ratio_median", "time_ratio_p90",
                               "dither_sign_changes", "left_after_entering_rate", "settle_ratio_median",
                               "settle_ratio_p90", "call_ms", "student_call_ms")}))
    print(f"wrote {out}")


def call_milliseconds(model: Path, obs: np.ndarray, calls: int = 200) -> float:
    """Median wall time (ms) of one call of the ONNX ``model`` on one observation (one intra-op thread, as the
    controller node runs it)."""
    policy = OnnxPolicy(model)
    policy(obs)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        policy(obs)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


if __name__ == "__main__":
    main()
