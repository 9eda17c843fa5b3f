"""What ``mtpolicy demo`` leaves behind: the MP4, the summary figure, the picture at the reach, the bag.

The end-to-end test runs the demo over real DDS with ``--record`` and reads
everything back: the video's frames and length, the PNGs, and the rosbag2
MCAP folder (topics, types, counts, message contents decoded both from the
bag's own schemas and by rclpy). The units of the pieces and the one-line
errors of the CLI: tests/unit/test_demo_pieces.py.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from helpers import png_size
from mtpolicy.kinematics import Kinematics
from mtpolicy.reach_task import SETTLE, sample_goal_sets
from mtpolicy.robots import load_robot
from mtpolicy_tools.launch_runner import find_executable


@pytest.mark.timeout(400)
def test_demo_writes_video_figures_and_a_bag_that_reads_back(ros_env, tmp_path):
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import JointState

    from mtpolicy_tools.record import installed_typestore

    out = tmp_path / "demo"
    # planar8_reach (no planner: its first goal set does not wait for a planning process to start, which made the
    # video, rendered at about 3 frames/s here, seconds longer)
    demo = subprocess.run([str(find_executable("mtpolicy", "mtpolicy")), "demo", "--model", "planar8_reach",
                           "--episodes", "2", "--seed", "4", "--record", "--out-dir", str(out)], env=ros_env,
                          capture_output=True, text=True, timeout=380)
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
             "/sim/markers": "visualization_msgs/msg/MarkerArray",
             "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray"}
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
    demo = subprocess.run([str(find_executable("mtpolicy", "mtpolicy")), "demo", "--episodes", "1", "--timeout", "2",
                           "--no-video", "--out-dir", str(tmp_path)], env=ros_env, capture_output=True, text=True,
                          timeout=180)
    assert demo.returncode == 1, demo.stdout + demo.stderr
    assert f"another process on ROS_DOMAIN_ID={ros_env['ROS_DOMAIN_ID']} publishes /joint_states (2 publishers)" \
        in demo.stdout, demo.stdout + demo.stderr
