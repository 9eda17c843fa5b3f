"""Unit tests of the pure safety filters (mtpolicy.safety)."""

import math

import numpy as np
import pytest

from mtpolicy import safety


def test_finite_or_zero_passes_finite_and_zeroes_nan_inf():
    v = np.array([0.1, -0.2, 0.3])
    out, ok = safety.finite_or_zero(v)
    assert ok and np.array_equal(out, v)
    for bad in (np.nan, np.inf, -np.inf):
        out, ok = safety.finite_or_zero(np.array([0.1, bad, 0.3]))
        assert not ok and np.array_equal(out, np.zeros(3))


def test_clamp_velocity_clips_to_symmetric_limits_and_counts():
    out, n = safety.clamp_velocity(np.array([3.0, -3.0, 0.5]), np.array([2.0, 1.0, 1.0]))
    assert np.array_equal(out, [2.0, -1.0, 0.5]) and n == 2
    out, n = safety.clamp_velocity(np.array([0.1, -0.1]), np.array([1.0, 1.0]))
    assert n == 0 and np.array_equal(out, [0.1, -0.1])


def test_joint_limit_guard_stops_only_outward_motion():
    limits = np.array([[-1.0, 1.0]] * 4)
    q = np.array([1.0, 1.0, -1.0, 0.0])
    v = np.array([0.5, -0.5, -0.5, 0.5])
    out, n = safety.joint_limit_guard(q, v, limits)
    assert np.array_equal(out, [0.0, -0.5, 0.0, 0.5]) and n == 2


def test_joint_limit_guard_margin_and_past_the_limit():
    limits = np.array([[-1.0, 1.0]] * 2)
    out, n = safety.joint_limit_guard(np.array([0.95, 1.2]), np.array([0.3, 0.3]), limits, margin=0.1)
    assert np.array_equal(out, [0.0, 0.0]) and n == 2
    out, _ = safety.joint_limit_guard(np.array([1.2]), np.array([-0.3]), limits[:1])
    assert np.array_equal(out, [-0.3])  # may always move back inside


@pytest.mark.parametrize("last, now, timeout, stale", [
    (None, 5.0, 1.0, True), (4.5, 5.0, 1.0, False), (3.9, 5.0, 1.0, True), (4.0, 5.0, 1.0, False)])
def test_is_stale(last, now, timeout, stale):
    assert safety.is_stale(last, now, timeout) is stale


def test_goal_rejection_reasons():
    assert safety.goal_rejection((0.1, 0.2, 0.0), "base", "base") is None
    assert "non-finite" in safety.goal_rejection((math.nan, 0.2, 0.0), "base", "base")
    assert "non-finite" in safety.goal_rejection((0.1, math.inf, 0.0), "base", "base")
    reason = safety.goal_rejection((0.1, 0.2, 0.0), "world", "base")
    assert "'world'" in reason and "'base'" in reason


def test_command_rejection_reasons():
    assert safety.command_rejection([0.0] * 8, 8) is None
    assert "3 values" in safety.command_rejection([0.0] * 3, 8)
    assert "non-finite" in safety.command_rejection([0.0, math.nan], 2)
    assert "non-finite" in safety.command_rejection(np.array([math.inf]), 1)


def test_duplicated_joint_names_are_named_once():
    assert safety.duplicated_names(["a", "b", "c"]) is None
    assert safety.duplicated_names(["a", "b", "a", "a", "b"]) == "joint name(s) ['a', 'b'] appear more than once"


def test_outside_limits_allows_the_margin_and_names_the_first_joint():
    limits = np.array([[-2.0, 2.0], [-1.0, 1.0], [-1.0, 1.0]])
    assert safety.outside_limits(["a", "b", "c"], np.array([2.05, -1.05, 0.0]), limits, 0.1) is None
    reason = safety.outside_limits(["a", "b", "c"], np.array([0.0, 7.0, -1.2]), limits, 0.1)
    assert reason == "joint 'b' at 7.000 rad is outside its limits [-1.000, 1.000] by more than 0.1 rad (and 1 more)"


def test_implausible_jump_bounds_a_move_by_the_velocity_limit_with_slack():
    limit, dt = np.array([2.0]), np.array([0.01])
    fastest = safety.JUMP_VELOCITY_FACTOR * 2.0 * (0.01 + safety.JUMP_DELAY)
    assert safety.implausible_jump(["a"], np.zeros(1), np.array([fastest * 0.99]), dt, limit) is None
    reason = safety.implausible_jump(["a"], np.zeros(1), np.array([-0.3]), dt, limit)
    assert reason == "joint 'a' jumped 0.300 rad in 0.010 s (velocity limit 2 rad/s)"
    assert safety.implausible_jump(["a"], np.zeros(1), np.array([3.0]), np.array([2.0]), limit) is None  # slow


@pytest.mark.parametrize("age, forgiven", [(0.3, 0.25), (0.04, 0.0), (0.0, 0.0), (-0.04, 0.0), (-0.2, -0.15)])
def test_stamp_age_forgives_the_tolerance_either_way(age, forgiven):
    assert safety.stamp_age(age, 0.05) == pytest.approx(forgiven)


def test_sample_intervals_use_stamps_where_both_samples_have_one():
    previous_stamps, previous_times = np.array([4.99, math.nan, 4.0]), np.array([100.0, 100.0, -math.inf])
    assert np.allclose(safety.sample_intervals(5.0, previous_stamps, 102.0, previous_times), [0.01, 2.0, 1.0])
    assert np.allclose(safety.sample_intervals(math.nan, previous_stamps, 102.0, previous_times)[:2], [2.0, 2.0])


def test_the_collision_guard_slides_a_command_along_the_contacts_its_move_would_make():
    """Tiago, whose arms reach each other: random commands from random free configurations. A command whose move
    (2 periods at it, then braking at Franka-like limits) is free passes; any other is changed to one whose move is
    free, within the velocity limits, moving no joint the command leaves at rest, raising no fixed joint's command
    (the supervisor's joints at a limit), and not approaching the contacts the command's move would make."""
    from mtpolicy.kinematics import Kinematics, first_collision, path_collides, self_collisions, separation_rates
    from mtpolicy.reach_task import sample_free_configurations
    from mtpolicy.robots import load_robot

    kin = Kinematics(load_robot("tiago"))
    rng = np.random.default_rng(0)
    accelerations = np.full(len(kin.home), 10.0)
    guard = safety.CollisionGuard(kin, 0.05, accelerations)
    changed_count = 0
    for q in sample_free_configurations(kin, rng, 60):
        v = rng.uniform(-1.0, 1.0, len(q)) * kin.spec.velocity_limits  # clamped before the guard (Supervisor)
        v[rng.integers(len(q))] = 0.0
        fixed = rng.random(len(q)) < 0.2
        allowed, changed = guard(q, v, fixed)
        step = allowed * 0.1 + allowed * np.abs(allowed) / 20.0
        assert not path_collides(guard.kin, q, step, 20) and not self_collisions(kin, q + step)[0]
        assert (np.abs(allowed) <= kin.spec.velocity_limits + 1e-12).all() and not allowed[v == 0].any()
        assert (allowed[fixed] * v[fixed] >= 0).all() and (np.abs(allowed[fixed]) <= np.abs(v[fixed]) + 1e-12).all()
        collision = first_collision(guard.kin, q, guard.move(v))
        assert changed == (collision is not None) and (changed or allowed is v)
        if collision is not None:
            changed_count += 1
            direction = allowed / max(float(np.abs(allowed).max()), 1e-12)
            assert (separation_rates(guard.kin, *collision) @ direction >= -1e-9).all() or \
                np.allclose(direction * np.abs(v).max(), v)  # the slide, or the command itself scaled down
    assert 0 < changed_count < 60  # some moves were free, some not
    allowed, changed = guard(kin.home, np.zeros(len(kin.home)))
    assert not allowed.any() and not changed
    planar8 = Kinematics(load_robot("planar8"))  # no two of its geoms can touch: every command passes
    free = safety.CollisionGuard(planar8, 0.05, np.full(len(planar8.home), np.inf))
    v = np.full(len(planar8.home), 50.0)
    assert guard.active and not free.active and free(planar8.home, v)[0] is v


def test_a_command_into_a_contact_that_scaling_stops_slides_on():
    """Panda at the last free state of a joint-space line into a self-collision, commanded along the line at its
    velocity limits: no scale of the command is free (the guard used to stop the arm there), and the slide moves
    on, free, from most of them (a head-on contact leaves it nothing to move along)."""
    from mtpolicy.kinematics import Kinematics, path_collides
    from mtpolicy.reach_task import sample_free_configurations
    from mtpolicy.robots import load_robot

    kin = Kinematics(load_robot("panda"))
    rng = np.random.default_rng(0)
    guard = safety.CollisionGuard(kin, 0.05, np.full(len(kin.home), 10.0))
    low, high = kin.spec.search_limits.T
    stopped, moving = 0, 0
    for q in sample_free_configurations(kin, rng, 200):
        line = low + rng.random(len(q)) * (high - low) - q
        if not path_collides(kin, q, line, 200):
            continue
        free, touching = 0.0, 1.0
        for _ in range(30):  # bisect for the last free state on the line
            mid = (free + touching) / 2
            free, touching = (free, mid) if path_collides(kin, q, line * mid, 50) else (mid, touching)
        start, v = q + line * free, line / np.abs(line / kin.spec.velocity_limits).max()
        if not all(path_collides(guard.kin, start, guard.move(s * v)) for s in guard.scales):
            continue
        allowed, changed = guard(start, v)
        assert changed and not path_collides(guard.kin, start, guard.move(allowed))
        stopped, moving = stopped + 1, moving + bool(allowed.any())
        if stopped == 12:
            break
    assert stopped == 12 and moving >= 6


def test_the_guard_keeps_its_clearance_from_every_pair_but_neighbours():
    """Tiago, lines from free configurations into a self-collision: with a clearance, the guard's collision query
    flags the line where a pair not neighbours in the kinematic tree comes within it, before it touches; from a
    state already within it, the move back out is free and the move further in is not. The guard keeps the larger
    of its clearance and the robot's (GR1's robot.yaml). GR1's waist pitching the torso towards the pelvis (two
    joints apart: neighbours) is held to no penetration only."""
    from mtpolicy.kinematics import Kinematics, _contact_distances, first_collision, path_collides
    from mtpolicy.reach_task import sample_free_configurations
    from mtpolicy.robots import load_robot

    spec = load_robot("tiago")
    kin, clear = Kinematics(spec), Kinematics(spec, clearance=0.02)
    rng = np.random.default_rng(1)
    low, high = spec.search_limits.T
    lines = 0
    for q in sample_free_configurations(kin, rng, 100):
        line = low + rng.random(len(q)) * (high - low) - q
        if _contact_distances(clear, q) or not path_collides(kin, q, line, 200):
            continue  # from beyond the clearance, into a contact
        state, pairs = first_collision(clear, q, line, 200)
        assert all(0.0 <= _contact_distances(clear, state)[p] < 0.02 for p in pairs)
        assert all(clear.pair_clearance(p) == 0.02 for p in pairs)
        assert not path_collides(clear, state, q - state, 50)  # back out
        assert path_collides(clear, state, line / 200, 2)  # further in
        lines += 1
        if lines == 5:
            break
    assert lines == 5
    guard = safety.CollisionGuard(kin, 0.05, np.full(len(kin.home), 10.0), clearance=0.02)
    assert guard.kin.clearance == 0.02 and guard.kin.model is not kin.model and not kin.model.geom_margin.any()
    gr1_spec = load_robot("gr1")  # its robot.yaml's clearance is the least the guard keeps
    assert gr1_spec.collision_clearance == 0.01 and spec.collision_clearance == 0.0
    accelerations = np.full(gr1_spec.n_joints, 10.0)
    assert [safety.CollisionGuard(Kinematics(gr1_spec), 0.05, accelerations, clearance=c).kin.clearance
            for c in (0.0, 0.02)] == [0.01, 0.02]
    gr1 = Kinematics(gr1_spec, clearance=0.02)
    pitch = np.zeros(len(gr1.home))
    pitch[gr1.spec.joint_names.index("torso_waist_pitch")] = 0.5
    near = {p for p, d in _contact_distances(gr1, gr1.home + pitch).items() if d < 0.02}
    assert near and all(gr1.pair_clearance(p) == 0.0 for p in near) and not path_collides(gr1, gr1.home, pitch)
