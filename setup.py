"""One distribution for pip and colcon (ament_python): the runtime (``mtpolicy``: what a robot computer runs, nodes
included), the tools beside it (``mtpolicy_tools``: the ``mtpolicy`` command, demo, render, record, the pip-only
launch runner) and training (``mtpolicy_training``)."""

from glob import glob

from setuptools import find_packages, setup

RUNTIME = ["numpy>=1.26", "scipy>=1.11", "mujoco==3.3.0", "onnxruntime>=1.18", "pyyaml>=6", "matplotlib>=3.8"]
ROS = ["ros-rclpy", "ros-rmw-fastrtps-cpp", "ros-std-msgs", "ros-sensor-msgs", "ros-geometry-msgs",
       "ros-visualization-msgs", "ros-std-srvs", "ros-diagnostic-msgs", "ros-trajectory-msgs",
       "rosbags>=0.10", "imageio[ffmpeg]>=2.34"]  # the demo's bag (rosbag2, MCAP) and video (MP4)
TRAIN = ["torch>=2.4,<=2.13.0", "gymnasium>=1.0", "scipy>=1.11", "metaworld>=3.0", "onnx>=1.16", "tyro>=0.8",
         "tensorboard>=2.15", "tqdm>=4.66", "matplotlib>=3.8"]
TEST = ["pytest>=8", "pytest-timeout>=2.3", "onnx>=1.16", "hypothesis>=6.100",
        "mcap-ros2-support>=0.5"]  # Foxglove's reader, in the bag test
"""What the runtime and ROS tests need (``colcon test`` finds pytest here); the training tests also need [train]."""
MINK = ["mink==0.0.13", "qpsolvers[daqp]>=4.3"]  # 0.0.13: the last mink that accepts mujoco 3.3.0
DEV = TEST + ["pytest-xdist>=3.6", "ray>=2.60", "colcon-core>=0.15", "colcon-ros>=0.5", "ruckig>=0.12", "ruff>=0.5",
              "mypy>=1.10"] + MINK
"""pytest-xdist: `make test` runs the suite in two workers; ruckig: the least times tests/unit/test_joint_travel.py
holds JointTravel to; ruff and mypy: `make test`'s lint."""
LAUNCH = ["ros-lifecycle-msgs", "osrf-pycommon", "lark", "pyyaml", "argcomplete", "psutil", "packaging", "empy",
          "catkin-pkg"]
"""PyPI dependencies of the upstream launch / launch_ros / ros2cli wheels (../shared/ros2-launch, see Makefile)."""
BENCH = ["stable-baselines3>=2.3"] + MINK

setup(
    name="mtpolicy",
    version="0.1.0",
    description="Multi-task reach policies for branched robots, trained in MuJoCo and served over ROS 2",
    packages=find_packages(include=["mtpolicy", "mtpolicy.*", "mtpolicy_tools", "mtpolicy_tools.*"])
    + find_packages("training", include=["mtpolicy_training", "mtpolicy_training.*"]),
    package_dir={"mtpolicy_training": "training/mtpolicy_training"},
    package_data={"mtpolicy": ["robots/*/*.xml", "robots/*/robot.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/mtpolicy"]),
        ("share/mtpolicy", ["package.xml"]),
        ("share/mtpolicy/launch", glob("launch/*.launch.xml")),
        ("share/mtpolicy/config", glob("config/*.yaml")),
        ("share/mtpolicy/models", glob("models/*.onnx") + glob("models/*.md")),
    ],
    python_requires=">=3.10",
    install_requires=RUNTIME,
    extras_require={"ros": ROS, "train": TRAIN, "test": TEST, "dev": DEV, "bench": BENCH, "launch": LAUNCH},
    entry_points={"console_scripts": [
        "mtpolicy = mtpolicy_tools.cli:main",
        "mtpolicy_controller = mtpolicy.nodes.process:controller",
        "mtpolicy_sim = mtpolicy.nodes.process:sim",
        "mtpolicy_goals = mtpolicy.nodes.process:goals",
    ]},
)
