"""Unit tests of mtpolicy.workspace: reach regions from the kinematic tree, the progress monitor and the stall
warning that names the guards (``mtpolicy.nodes.progress_watch``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from helpers import REPO
from mtpolicy.kinematics import Kinematics
from mtpolicy.nodes import progress_watch
from mtpolicy.reach_task import sample_configurations
from mtpolicy.robots import load_robot
from mtpolicy.workspace import MIN_PROGRESS, CounterWindow, ProgressMonitor, Workspace

ROBOTS = [("planar8", None), ("humanoid", None),
          (str(REPO / "tests" / "fixtures" / "yarm" / "robot.xml"), ["left_tip", "right_tip"])]


@pytest.mark.parametrize("robot,end_effectors", ROBOTS)
def test_every_reachable_position_is_inside_its_region(robot, end_effectors):
    """Sampled over the joint limits, no end effector leaves its region (the regions are outer bounds)."""
    spec = load_robot(robot, end_effectors)
    kin = Kinematics(spec)
    workspace = Workspace(kin)
    q = sample_configurations(spec, np.random.default_rng(0), 2000, margin=0.0)
    ee = kin.ee_positions_batch(q)
    for i, region in enumerate(workspace.regions):
        distance = np.linalg.norm(ee[:, i] - region.anchor, axis=1)
        assert distance.max() <= region.radius + 1e-9
        assert distance.max() > 0.9 * region.radius  # and not loose: the arm stretches nearly that far
        assert all(workspace.goal_rejection(i, p, margin=1e-9) is None for p in ee[:200, i])


def test_planar8_regions_and_reasons():
    kin = Kinematics(load_robot("planar8"))
    workspace = Workspace(kin)
    assert [r.radius for r in workspace.regions] == pytest.approx([0.3, 0.4, 0.5])
    assert all(np.allclose(np.abs(r.plane_normal), [0, 0, 1]) for r in workspace.regions)
    assert workspace.goal_rejection(0, np.array([-10.0, 0, 0]), 0.01) == \
        "'ee_1' reaches at most 0.300 m from (0.0, 0.0, 0.0); the goal is 10.000 m away"
    assert workspace.goal_rejection(2, np.array([0.3, 0.1, 0.5]), 0.01) == \
        "'ee_3' moves in the plane z = 0.000 m of the base frame; the goal is +0.500 m off it"
    assert workspace.goal_rejection(2, np.array([0.3, 0.1, 0.005]), 0.01) is None  # within the margin
    assert workspace.goal_rejection(1, np.array([0.405, 0.0, 0.0]), 0.01) is None


def test_a_spatial_robot_has_no_plane():
    workspace = Workspace(Kinematics(load_robot("humanoid")))
    assert all(r.plane_normal is None for r in workspace.regions)
    assert workspace.goal_rejection(0, np.array([0.3, 0.3, 0.5]), 0.01) is None


def test_progress_monitor_reports_only_errors_that_stop_shrinking():
    monitor = ProgressMonitor(2, tolerance=0.02)
    errors = np.array([0.5, 0.5])
    for t in range(10):  # end effector 0 closes in, 1 is stuck
        errors = np.array([0.5 - 0.02 * t, 0.5])
        monitor.update(errors, float(t))
    assert monitor.stalled(errors, 9.0, timeout=5.0) == [1]
    monitor.restart(1, 9.0)  # a new goal
    monitor.update(errors, 9.0)
    assert monitor.stalled(errors, 12.0, timeout=5.0) == []
    monitor.pause(20.0)  # held still: the clock restarts
    assert monitor.stalled(errors, 24.0, timeout=5.0) == []
    monitor.update(errors - MIN_PROGRESS / 2, 26.0)  # less than MIN_PROGRESS is no progress
    assert monitor.stalled(errors, 26.0, timeout=5.0) == [0, 1]
    assert monitor.stalled(np.array([0.01, 0.01]), 26.0, timeout=5.0) == []  # within tolerance: reached



def test_counter_window_gives_each_counters_rise_over_the_window():
    window = CounterWindow()
    assert window.update(0.0, {"a": 3, "b": 0}, 5.0) == {"a": 0, "b": 0}
    assert window.update(2.0, {"a": 5, "b": 1}, 5.0) == {"a": 2, "b": 1}  # younger than the window: since the first
    assert window.update(6.0, {"a": 9, "b": 1}, 5.0) == {"a": 6, "b": 1}  # the record of 0.0 is the latest 5 s old
    assert window.update(8.0, {"a": 9, "b": 4}, 5.0) == {"a": 4, "b": 3}  # now since 2.0
    window.clear()
    assert window.update(9.0, {"a": 10, "b": 4, "c": 1}, 5.0) == {"a": 0, "b": 0, "c": 0}


def test_a_stall_warning_names_the_guards_that_held_the_robot_back(monkeypatch):
    """An end effector held still by the collision guard is warned with the guard's count over the timeout; one
    stalled with no guard acting says so."""
    kin = Kinematics(load_robot("planar8"))
    clock, counts, warnings = [0.0], {"collision_guarded": 0, "clamped": 0}, []
    monkeypatch.setattr(progress_watch, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    watch = progress_watch.ProgressWatch(kin, SimpleNamespace(q=np.zeros(kin.spec.n_joints)),
                                         SimpleNamespace(progress_timeout=5.0),
                                         lambda key, text: warnings.append(text), 0.02, lambda: counts)
    goals = kin.ee_positions(np.zeros(kin.spec.n_joints)) + 0.3
    for t in range(8):  # the guard scales down 10 commands a second, the error does not shrink
        clock[0], counts["collision_guarded"] = float(t), 10 * t
        watch.check(goals, running=True)
    assert watch.stalled == list(range(kin.spec.n_tasks)) and len(warnings) == 2 * kin.spec.n_tasks
    assert ("over that time the guards acted: 50 commands slid along or scaled down before a self-collision ("
            in warnings[-1])
    watch.check(goals, running=False)  # held: no stall, and the guards' window starts again
    clock[0] += 6.0
    watch.check(goals, running=True)
    clock[0] += 6.0
    watch.check(goals, running=True)
    assert "over that time no guard acted on the commands (" in warnings[-1]

SLIDER = """<mujoco><worldbody><body name="base"><body name="carriage">
  <joint name="slide" type="slide" axis="1 0 0" range="-0.3 0.3"/><geom size="0.02"/>
  <body name="arm" pos="0 0 0.1"><joint name="hinge" axis="0 0 1" range="-3 3"/>
    <geom type="capsule" size="0.02" fromto="0 0 0 0.4 0 0"/><site name="tip" pos="0.4 0 0"/></body>
</body></body></worldbody>
<actuator><velocity joint="slide" ctrlrange="-1 1" kv="10"/><velocity joint="hinge" ctrlrange="-1 1" kv="10"/>
</actuator></mujoco>"""


def test_a_slide_joint_adds_its_travel_and_makes_the_chain_non_planar(tmp_path):
    (tmp_path / "slider.xml").write_text(SLIDER)
    spec = load_robot(tmp_path / "slider.xml")
    kin = Kinematics(spec)
    (region,) = Workspace(kin).regions
    assert region.radius == pytest.approx(0.1 + 0.4 + 0.6) and region.plane_normal is None
    q = sample_configurations(spec, np.random.default_rng(0), 500, margin=0.0)
    assert np.linalg.norm(kin.ee_positions_batch(q)[:, 0] - region.anchor, axis=1).max() <= region.radius
