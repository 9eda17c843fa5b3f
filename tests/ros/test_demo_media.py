"""What ``mtpolicy demo`` leaves behind: the MP4, the summary figure, the picture at the reach, the bag.

The end-to-end test runs the demo over real DDS with ``--record`` and reads
everything back: the video's frames and length, the PNGs, and the rosbag2
MCAP folder (topics, types, counts, message contents decoded both from the
bag's own schemas and by rclpy). The other tests are units of the pieces and
the one-line errors of the CLI.
"""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import mujoco
import numpy as np
import pytest

from helpers import REPO
from mtpolicy.demo import GoalRun, SETTLE, reached_picture_sample
from mtpolicy.kinematics import Kinematics, sample_goal_sets
from mtpolicy.launch_runner import find_executable
from mtpolicy.render import fit_camera, geom_corners, render_png, robot_geoms
from mtpolicy.robots import load_robot


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


@pytest.mark.timeout(400)
def test_demo_writes_video_figures_and_a_bag_that_reads_back(ros_env, tmp_path):
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import JointState

    from mtpolicy.record import installed_typestore

    out = tmp_path / "demo"
    demo = subprocess.run([str(find_executable("mtpolicy", "mtpolicy")), "demo", "--goals", "2", "--seed", "4",
                           "--record", "--out", str(out)], env=ros_env, capture_output=True, text=True, timeout=380)
    assert demo.returncode in (0, 1) and "Traceback" not in demo.stderr, demo.stdout + demo.stderr
    held = re.search(r"held (\d)/2 goal sets", demo.stdout)
    assert held, demo.stdout + demo.stderr

    # the video: real time at the stated frame rate, every frame captioned
    import imageio.v2 as imageio

    seconds = float(re.search(r"demo\.mp4: ([\d.]+) s at (\d+) fps", demo.stdout).group(1))
    reader = imageio.get_reader(out / "demo.mp4")
    frames = [f for f in reader]
    fps = reader.get_meta_data()["fps"]
    assert abs(len(frames) / fps - seconds) < 0.1, (len(frames), fps, seconds)
    assert len(frames) >= fps * SETTLE  # at least one goal set's hold window
    width, height = frames[0].shape[1], frames[0].shape[0]
    assert width == 640 and height > 640 and height % 16 == 0
    assert frames[0][5:40].mean() > 200 and np.std(frames[-1][height - 640:]) > 10  # white caption band; a scene

    # the pictures
    assert png_size(out / "reached.png")[0] == 720
    w, h = png_size(out / "summary.png")
    assert w > 600 and h > 300
    assert png_size(out / "ee_paths.png")[0] > 600

    # the bag: what the demo said it wrote, read back through the bag's schemas and by rclpy
    counts = dict(re.findall(r"(/[\w/]+) (\d+)", demo.stdout.split("(rosbag2, MCAP): ")[1].splitlines()[0]))
    assert "mcap" in (out / "bag" / "metadata.yaml").read_text()
    spec = load_robot("planar8")
    types = {"/joint_states": "sensor_msgs/msg/JointState",
             "/velocity_controller/commands": "std_msgs/msg/Float64MultiArray",
             **{f"/goals/{ee}": "geometry_msgs/msg/PointStamped" for ee in spec.end_effectors},
             "/controller/markers": "visualization_msgs/msg/MarkerArray",
             "/sim/markers": "visualization_msgs/msg/MarkerArray", "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray"}
    store = installed_typestore(list(types.values()))
    first = sample_goal_sets(Kinematics(spec), np.random.default_rng(4), 1)  # drawn around home, where it starts
    with Reader(out / "bag") as bag:
        assert {c.topic: c.msgtype for c in bag.connections} == types
        assert {c.topic: c.msgcount for c in bag.connections} == {t: int(n) for t, n in counts.items()}
        for topic in ("/joint_states", "/velocity_controller/commands", "/controller/markers", "/sim/markers"):
            assert int(counts[topic]) > 10, counts
        assert all(int(counts[f"/goals/{ee}"]) >= 2 for ee in spec.end_effectors), counts  # both goal sets
        stamps, states, goal_points = [], 0, []
        for connection, stamp, raw in bag.messages():
            stamps.append(stamp)
            message = store.deserialize_cdr(raw, connection.msgtype)  # the MCAP schema decodes the bytes
            if connection.topic == "/joint_states":
                by_rclpy = deserialize_message(raw, JointState)
                assert list(by_rclpy.name) == list(message.name) and tuple(spec.joint_names) == tuple(message.name)
                np.testing.assert_array_equal(by_rclpy.position, message.position)
                states += 1
            elif connection.topic == "/goals/ee_1":
                assert message.header.frame_id == spec.base_body
                goal_points.append([message.point.x, message.point.y, message.point.z])
            elif connection.topic == "/velocity_controller/commands":
                assert len(message.data) == spec.n_joints and np.all(np.isfinite(message.data))
        assert stamps == sorted(stamps) and states == int(counts["/joint_states"])
        assert len(np.unique(np.round(goal_points, 9), axis=0)) == 2  # ee_1 of the two goal sets
        assert np.any(np.all(np.abs(np.asarray(goal_points) - first[0, 0]) < 1e-9, axis=1))

    # Foxglove's own reader (mcap + mcap-ros2-support) decodes every message from the file's ros2msg schemas
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(out / "bag" / "bag.mcap", "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == "ros2"
        decoded: dict[str, int] = {}
        for schema, channel, _, message in reader.iter_decoded_messages():
            assert schema.encoding == "ros2msg" and channel.message_encoding == "cdr"
            decoded[channel.topic] = decoded.get(channel.topic, 0) + 1
            if channel.topic == "/sim/markers":
                assert message.markers[0].header.frame_id == spec.base_body
    assert decoded == {t: int(n) for t, n in counts.items()}


@pytest.mark.timeout(200)
def test_demo_refuses_to_share_its_domain_with_another_robot(start_node, monitor, ros_env, tmp_path):
    """A second simulator on the demo's ROS_DOMAIN_ID would mix two robots' joint states: the demo says so."""
    start_node("mtpolicy_sim", robot="planar8")
    assert monitor.wait_until(lambda: monitor.states > 0, 30.0)
    demo = subprocess.run([str(find_executable("mtpolicy", "mtpolicy")), "demo", "--goals", "1", "--timeout", "2",
                           "--no-video", "--out", str(tmp_path)], env=ros_env, capture_output=True, text=True,
                          timeout=180)
    assert demo.returncode == 1, demo.stdout + demo.stderr
    assert f"another process on ROS_DOMAIN_ID={ros_env['ROS_DOMAIN_ID']} publishes /joint_states (2 publishers)" \
        in demo.stdout, demo.stdout + demo.stderr


def _run(goals: np.ndarray, errors: list[float], reach_at: int | None, tolerance: float = 0.02) -> GoalRun:
    """A GoalRun whose single end effector has the given error (m) at each sample, 0.05 s apart."""
    run = GoalRun(goals)
    for k, e in enumerate(errors):
        run.times.append(0.05 * k)
        run.qs.append(np.full(2, float(k)))
        run.path.append(goals + np.array([[e, 0.0, 0.0]]))
    if reach_at is not None:
        run.reached, run.seconds, run.reached_sample = True, 0.05 * reach_at, reach_at
        run.held = all(e < tolerance for e in errors[reach_at:])
    return run


def test_reached_picture_is_the_moment_of_reaching_the_last_held_goal_set():
    goal = np.zeros((1, 3))
    held = _run(goal, [0.3, 0.1, 0.01, 0.012, 0.015], reach_at=2)
    left = _run(goal, [0.3, 0.01, 0.2, 0.3], reach_at=1)  # reached, then left: not held
    never = _run(goal, [0.3, 0.3], reach_at=None)
    assert reached_picture_sample([held, left, never]) == (0, 2)
    assert held.error_trace()[2, 0] == pytest.approx(0.01)
    assert reached_picture_sample([never, left]) == (1, 1)  # no held set: the last reached, at its reach
    assert reached_picture_sample([never]) == (0, 1)


@pytest.mark.parametrize("robot", ["planar8", "tests/fixtures/twoarm/robot.xml"])
def test_camera_fits_the_robot_and_the_framebuffer_grows(robot, tmp_path):
    spec = load_robot(REPO / robot if robot.endswith(".xml") else robot)
    model = spec.load_model()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    points = geom_corners(model, data, robot_geoms(model, spec.base_body))
    camera = fit_camera(model, points)
    # project the points with MuJoCo's own camera frame: all inside the view, the extent fills most of it
    scene, option = mujoco.MjvScene(model, maxgeom=100), mujoco.MjvOption()
    mujoco.mjv_updateScene(model, data, option, None, camera, mujoco.mjtCatBit.mjCAT_ALL, scene)
    eye = scene.camera[0]  # mono rendering looks from between the two stereo eyes
    forward, up = np.array(eye.forward), np.array(eye.up)
    right = np.cross(forward, up)
    rel = points - (np.array(scene.camera[0].pos) + np.array(scene.camera[1].pos)) / 2
    tan = np.tan(np.radians(model.vis.global_.fovy) / 2)
    x, y = (rel @ right) / (rel @ forward) / tan, (rel @ up) / (rel @ forward) / tan
    assert np.abs(x).max() <= 1 and np.abs(y).max() <= 1
    assert max(np.ptp(x), np.ptp(y)) > 1.6  # more than 80 % of the frame's width or height
    # at a size beyond the MJCF's offscreen framebuffer (the default is 640)
    size = model.vis.global_.offwidth + 80
    render_png(model, data, tmp_path / "big.png", spec.base_body, np.zeros((spec.n_tasks, 3)),
               np.ones((spec.n_tasks, 4)), size, size)
    assert png_size(tmp_path / "big.png") == (size, size)


def _cli(*args: str) -> tuple[int, str]:
    done = subprocess.run([str(find_executable("mtpolicy", "mtpolicy")), *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("args, message", [
    (["demo", "--goals", "-3"], "--goals must be >= 1, got -3"),
    (["demo", "--goal", "3"], "unrecognized arguments: --goal 3"),
    (["demo", "--robot", "nope"], "unknown robot 'nope'"),
    (["demo", "--model", "nope"], "model 'nope' is neither a file nor a shipped model"),
    (["demo", "--robot", "humanoid"], "is for robot 'planar8', not 'humanoid'"),
    (["demo", "--robot", "tests/fixtures/twoarm/robot.xml"], "does not fit"),
    (["demo", "--params", "nope.yaml"], "params file nope.yaml not found"),
    (["render", "--robot", "nope"], "unknown robot 'nope'"),
    (["render", "--size", "0"], "--size must be > 0"),
    (["render", "--rob", "planar8"], "unrecognized arguments: --rob"),
    (["launch", "sim_controller", "robot:=nope.xml"], "unknown robot 'nope.xml'"),
    (["launch", "sim_controller", "robot:=tests/fixtures/twoarm/robot.xml"], "give its policy too, model:="),
])
def test_user_mistakes_get_one_line_errors(args, message):
    code, output = _cli(*args)
    assert code == 2 and message in output and "Traceback" not in output, output
    assert len(output.strip().splitlines()) == 1, output
