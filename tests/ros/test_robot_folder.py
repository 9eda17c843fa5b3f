"""A robot is one folder: tests/fixtures/robots/arm3 (an MJCF and its robot.yaml), never named in a code file, is
trained, evaluated, launched over DDS and demoed by path alone.

Each step runs as a user types it, in its own process. The manifest is what
makes the folder a robot: without it the path names no robot at all, and its
facts show in every step -- one end effector (``tool``, not the
``camera_mount`` site), a 5 cm reach tolerance, the ``ready`` home keyframe
and the elbow's 1.5 rad/s velocity limit.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO
from mtpolicy.policy import OnnxPolicy
from mtpolicy.robots import load_robot
from mtpolicy_tools.launch_runner import find_executable

ARM3 = REPO / "tests" / "fixtures" / "robots" / "arm3"
"""The fixture robot folder."""
TINY_DAGGER = ["--iterations", "1", "--num-envs", "8", "--periodic-eval-episodes", "4", "--final-eval-episodes", "4",
               "--algo.updates-per-iteration", "50", "--algo.hidden", "32", "32", "--no-progress"]
"""The smallest DAgger run (DLS teacher): one iteration of 8 episodes, 50 regression steps."""


def _run(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(list(args), cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.timeout(180)
def test_a_robot_folder_is_trained_evaluated_launched_and_demoed(spawn, robot_monitor, ros_env, tmp_path):
    pytest.importorskip("torch", reason="the first step trains: needs the training extra")
    spec = load_robot(ARM3)
    assert (spec.name, spec.end_effectors, spec.velocity_limits.tolist()) == ("arm3", ("tool",), [2.0, 2.0, 1.5])
    run = tmp_path / "run"
    # train
    _run(sys.executable, "-m", "mtpolicy_training.train", "dagger", "--robot", str(ARM3), "--out-dir", str(run),
         *TINY_DAGGER)
    contract = OnnxPolicy(run / "policy.onnx").contract
    assert (contract.robot, contract.end_effectors, contract.reach_tolerance) == ("arm3", ("tool",), 0.05)
    # evaluate, next to DLS, on the same goal sets
    results = json.loads(_run(sys.executable, "-m", "mtpolicy_training.ship.evaluate", str(run / "policy.onnx"),
                              "--episodes", "4", "--anchors", "dls"))
    assert set(results) == {"policy", "dls"} and results["dls"]["20240518"]["success_rate"] == 1.0, results
    # launch sim + controller by the folder's path (params written from the model), goals from the goal tool
    mtpolicy = str(find_executable("mtpolicy", "mtpolicy"))
    launch = spawn("launch", [mtpolicy, "launch", "sim_controller", f"robot:={ARM3}", f"model:={run / 'policy.onnx'}"])
    monitor = robot_monitor(spec)
    spawn("goals", [mtpolicy, "goals", "--robot", str(ARM3), "--episodes", "1", "--period", "20"])
    assert monitor.wait_until(lambda: monitor.states > 0 and len(monitor.commands) > 3, 40.0), launch.output()[-3000:]
    assert all(len(c) == 3 and np.all(np.isfinite(c)) for _, c in monitor.commands)
    out = launch.output()
    assert "end effectors ['tool']" in out and "on robot 'arm3'" in out, out[-3000:]
    assert "refusing" not in out and "Traceback" not in out, out[-3000:]
    launch.stop(grace=3.0)
    # the demo: two goal sets at the manifest's tolerance
    demo = subprocess.run([mtpolicy, "demo", "--robot", str(ARM3), "--model", str(run / "policy.onnx"), "--episodes",
                           "2", "--timeout", "3", "--out-dir", str(tmp_path / "demo"), "--no-video"],
                          env=ros_env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert demo.returncode in (0, 1) and "Traceback" not in demo.stdout + demo.stderr, demo.stdout + demo.stderr
    assert re.search(r"held \d/2 goal sets \(all end effectors within 50 mm", demo.stdout), demo.stdout
    assert "arm3 driven by policy (dagger-dls)" in demo.stdout, demo.stdout
