"""Does a reach controller hold? Exported policies, DLS and constant Jacobian-transpose gains on validation goal sets.

For each controller: held success, reached-once rate, median time to reach (s), sign changes per joint in the final
second (dithering), the share of goal sets that left the tolerance after entering it, and the median final error per
end effector (``evaluate_reach``). ``dls`` is the DLS baseline, ``jt:K`` the error-gain structure's constant start
``tanh(K sum_i J_i^T e_i)`` and ``dls:K`` the dls-gain structure's ``tanh(K d)`` (``core/holding.py``,
``--algo.gain-init K``), all on the first policy's reach task (or ``--robot``'s local goals). ``--scales``: each
controller's command also multiplied by these factors (a lower loop gain about the goal, the same zero).

    python -m benchmarks.holding_screen models/planar8_digrad.onnx runs/planar8/digrad-eg-hold/policy.onnx dls jt:20
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mtpolicy_training.core.holding import ErrorGain
from mtpolicy_training.envs.reach import ReachConfig, ReachVectorEnv
from mtpolicy_training.envs.reach_evaluation import Controller, dls_controller, evaluate_reach, onnx_controller
from mtpolicy_training.envs.seeds import VALIDATION_SEED, VALIDATION_SEEDS

SHOWN = ("success_rate", "reached_rate", "time_to_reach_median", "dither_sign_changes", "left_after_entering_rate")


def constant_gain(env: ReachConfig, actor: str, gain: float) -> Controller:
    """``tanh(M z)`` with the constant start of ``actor`` (``ErrorGain.constant_gain``)."""
    probe = ReachVectorEnv(1, env)
    holding = ErrorGain.of(actor, probe.layout, probe.spec.n_joints, probe.kin)
    if holding is None:
        raise ValueError(f"actor {actor!r} has no constant gain: one of error-gain, dls-gain")
    m = holding.constant_gain(gain).numpy()
    return lambda obs: np.tanh(holding.numpy_forward(np.tile(m, (len(obs), 1)), obs))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     prog="python -m benchmarks.holding_screen")
    parser.add_argument("controllers", nargs="+", help="exported policies (.onnx), dls, jt:GAIN or dls:GAIN")
    parser.add_argument("--robot", default="planar8",
                        help="the task of dls, jt:GAIN and dls:GAIN without a policy before them")
    parser.add_argument("--seed", type=int, default=VALIDATION_SEED, choices=VALIDATION_SEEDS,
                        help="a validation seed (the test seeds only report)")
    parser.add_argument("--episodes", type=int, default=500, help="goal sets")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0], help="factors on each command")
    args = parser.parse_args(argv)
    env = ReachConfig(args.robot)
    for name in args.controllers:
        if name == "dls":
            controller = dls_controller(env)
        elif name.startswith(("jt:", "dls:")):
            kind, gain = name.split(":")
            controller = constant_gain(env, "error-gain" if kind == "jt" else "dls-gain", float(gain))
        else:
            controller, env = onnx_controller(Path(name))
        for scale in args.scales:
            m = evaluate_reach(lambda obs: scale * controller(obs), env, args.episodes, args.seed)
            errors = {k: round(v, 4) for k, v in m.items() if k.startswith("error_median_")}
            print(json.dumps({"controller": name, "scale": scale, **{k: round(m[k], 4) for k in SHOWN}, **errors}),
                  flush=True)


if __name__ == "__main__":
    main()
