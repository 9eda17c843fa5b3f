"""The launch files and the pip-only launch runner: parsing, and real stacks over DDS."""

from __future__ import annotations

import os
import re
import signal
import time

import numpy as np
import pytest

from conftest import SHIPPED_MODEL
from mtpolicy.kinematics import Kinematics, sample_goal_sets
from mtpolicy.launch_runner import LaunchError, find_executable, parse_cli_args, parse_launch

pytestmark = pytest.mark.timeout(120)


def test_shipped_launch_files_resolve(tmp_path):
    demo = parse_launch("demo", {"seed": "7", "goal_count": "3", "model": "/m.onnx"})
    assert [n.name for n in demo.nodes] == ["sim", "controller", "goals"]
    assert all(n.shutdown_on_exit for n in demo.nodes)
    sim, ctrl, goals = demo.nodes
    assert ctrl.executable == "mtpolicy_controller" and "model:=/m.onnx" in ctrl.ros_args
    assert "--params-file" in ctrl.ros_args and ctrl.ros_args[ctrl.ros_args.index("--params-file") + 1] \
        .endswith("config/planar8.yaml")
    assert "seed:=7" in goals.ros_args and "count:=3" in goals.ros_args
    assert ctrl.ros_args[:2] == ["-r", "__node:=controller"]
    for name in ("controller", "sim_controller", "demo"):
        assert parse_launch(f"{name}.launch.xml").nodes
    assert [n.name for n in parse_launch("controller").nodes] == ["controller"]
    cmd = ctrl.command()
    assert cmd[0] == str(find_executable("mtpolicy", "mtpolicy_controller")) and cmd[1] == "--ros-args"


def test_runner_subset(tmp_path):
    inner = tmp_path / "inner.launch.xml"
    inner.write_text("""<launch>
      <arg name="who" default="nobody"/>
      <node pkg="mtpolicy" exec="mtpolicy_sim" name="$(var who)" namespace="ns">
        <remap from="/joint_states" to="/robot/joint_states"/>
        <env name="NODE_ONLY" value="1"/>
      </node>
    </launch>""")
    outer = tmp_path / "outer.launch.xml"
    outer.write_text("""<launch>
      <arg name="rate" default="50.0" description="a rate"/>
      <arg name="with_goals" default="false"/>
      <let name="params" value="$(dirname)/p.yaml"/>
      <set_env name="SHARED" value="$(env HOME)"/>
      <node pkg="mtpolicy" exec="mtpolicy_controller" name="ctrl" args="--flag" required="true">
        <param from="$(var params)"/>
        <param name="rate_hz" value="$(var rate)"/>
        <param name="robot" value=""/>
      </node>
      <node pkg="mtpolicy" exec="mtpolicy_goals" if="$(var with_goals)"/>
      <node pkg="mtpolicy" exec="mtpolicy_goals" name="no_goals" unless="true"/>
      <include file="inner.launch.xml"><arg name="who" value="sim_$(var rate)"/></include>
    </launch>""")
    desc = parse_launch(outer, parse_cli_args(["rate:=100"]))
    ctrl, sim = desc.nodes
    assert ctrl.ros_args == ["-r", "__node:=ctrl", "--params-file", str(tmp_path / "p.yaml"),
                             "-p", "rate_hz:=100", "-p", "robot:=''"]
    assert ctrl.extra_args == ["--flag"] and ctrl.shutdown_on_exit and ctrl.env["SHARED"] == os.environ["HOME"]
    assert sim.ros_args == ["-r", "__node:=sim_100", "-r", "__ns:=/ns", "-r", "/joint_states:=/robot/joint_states"]
    assert sim.env == {"SHARED": os.environ["HOME"], "NODE_ONLY": "1"} and not sim.shutdown_on_exit
    assert [n.executable for n in parse_launch(outer, {"with_goals": "true"}).nodes].count("mtpolicy_goals") == 1
    assert desc.arguments["rate"] == ("50.0", "a rate")

    with pytest.raises(LaunchError, match=r"unknown launch argument\(s\) \['nope'\]"):
        parse_launch(outer, {"nope": "1"})
    with pytest.raises(LaunchError, match="name:=value"):
        parse_cli_args(["rate=1"])
    bad = tmp_path / "bad.launch.xml"
    for body, error in [('<group/>', "unsupported element"), ('<let name="x" value="$(eval 1)"/>', "unsupported "
                        "substitution"), ('<arg name="must"/>', "argument 'must' is required"),
                        ('<let name="x" value="$(var undefined)"/>', "'undefined' is not set")]:
        bad.write_text(f"<launch>{body}</launch>")
        with pytest.raises(LaunchError, match=error):
            parse_launch(bad)


def _runner(spawn, *args: str):  # noqa: ANN001, ANN202
    return spawn("launch", [str(find_executable("mtpolicy", "mtpolicy")), "launch", *args])


def _child_pids(runner) -> dict[str, int]:  # noqa: ANN001
    return {m[0]: int(m[1]) for m in re.findall(r"started (\w+) \(pid (\d+)\)", runner.output())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_runner_sigint_stops_all_nodes(spawn, fixture_model):
    runner = _runner(spawn, "sim_controller", f"model:={fixture_model}")
    assert runner.wait_for_output("[controller] ", 30.0) and runner.wait_for_output("[sim] ", 30.0), runner.output()
    pids = _child_pids(runner)
    assert set(pids) == {"sim", "controller"}
    runner.signal(signal.SIGINT)
    assert runner.wait(20) == 0, runner.output()
    assert not any(_alive(p) for p in pids.values())
    assert "Traceback" not in runner.output(), runner.output()


def test_runner_required_node_death_stops_all(spawn, fixture_model):
    runner = _runner(spawn, "sim_controller", f"model:={fixture_model}")
    assert runner.wait_for_output("[controller] ", 30.0), runner.output()
    pids = _child_pids(runner)
    os.kill(pids["sim"], signal.SIGKILL)
    runner.wait(20)
    assert "sim has on_exit=shutdown: stopping all nodes" in runner.output()
    assert not _alive(pids["controller"])


def test_runner_refusing_controller_stops_the_launch(spawn, tmp_path):
    runner = _runner(spawn, "sim_controller", f"model:={tmp_path / 'missing.onnx'}")
    assert runner.wait(40) != 0
    out = runner.output()
    assert "refusing to start" in out and "controller has on_exit=shutdown" in out and "Traceback" not in out, out


@pytest.mark.skipif(not SHIPPED_MODEL.is_file(), reason=f"needs the trained shipped model {SHIPPED_MODEL}")
@pytest.mark.timeout(150)
def test_demo_launch_reaches_ten_goal_sets(spawn, monitor, planar8):
    """demo.launch.xml (sim + controller + goal tool) brought up by the runner: >= 9 of 10 sets reached."""
    count, period, seed = 10, 5.0, 5
    expected = sample_goal_sets(Kinematics(planar8), np.random.default_rng(seed), count)
    runner = _runner(spawn, "demo", f"seed:={seed}", f"goal_count:={count}", f"goal_period:={period}")
    best = np.full(count, np.inf)  # per goal set: the smallest max-over-end-effectors error seen while it is held
    deadline = time.monotonic() + 40.0 + count * period
    seen = -1
    while runner.returncode is None and time.monotonic() < deadline:
        monitor.wait_until(lambda: monitor.states != seen, 0.1)
        seen = monitor.states
        held = [i for i, goals in enumerate(expected) if np.allclose(goals, monitor.goals)]
        if held:
            best[held[0]] = min(best[held[0]], float(np.max(monitor.errors(expected[held[0]]))))
    assert runner.wait(30) == 0, runner.output()[-3000:]
    assert np.all(np.isfinite(best)), (best, runner.output()[-3000:])  # every set was published and held
    assert np.sum(best < 0.02) >= 9, best
