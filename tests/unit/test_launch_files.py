"""The launch runner's parsing: the shipped launch files resolve to their nodes, and the subset of the launch
XML the runner reads, with its errors (the launch files run under both launchers: tests/ros/test_launch.py)."""

from __future__ import annotations

import os

import pytest

from mtpolicy_tools.launch_runner import LaunchError, find_executable, parse_cli_args, parse_launch


def test_shipped_launch_files_resolve(tmp_path):
    demo = parse_launch("demo", {"seed": "7", "episodes": "3", "model": "/m.onnx"})
    assert [n.name for n in demo.nodes] == ["sim", "controller", "goals"]
    assert all(n.shutdown_on_exit for n in demo.nodes)
    sim, ctrl, goals = demo.nodes
    assert ctrl.executable == "mtpolicy_controller" and "model:=/m.onnx" in ctrl.ros_args
    assert "--params-file" in ctrl.ros_args and ctrl.ros_args[ctrl.ros_args.index("--params-file") + 1] \
        .endswith("config/params.yaml")
    assert "seed:=7" in goals.ros_args and "episodes:=3" in goals.ros_args
    assert ctrl.ros_args[:2] == ["-r", "__node:=controller"]
    for name in ("controller", "sim_controller", "demo"):
        assert parse_launch(f"{name}.launch.xml").nodes
    assert [n.name for n in parse_launch("controller").nodes] == ["controller"]
    cmd = ctrl.command()
    assert cmd[0] == str(find_executable("mtpolicy", "mtpolicy_controller")) and cmd[1] == "--ros-args"


def test_the_launch_files_leave_the_command_topic_to_the_nodes():
    """command_topic is passed empty unless given, so each node picks its interface's topic
    (tests/ros/test_launch.py runs it; the robot argument: tests/unit/test_robot_manifest.py)."""
    for node in parse_launch("sim_controller", {"command_interface": "trajectory"}).nodes:
        assert "command_interface:=trajectory" in node.ros_args and "command_topic:=''" in node.ros_args, node
    assert "command_topic:=/x" in parse_launch("controller", {"command_topic": "/x"}).nodes[0].ros_args


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
