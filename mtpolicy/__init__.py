"""mtpolicy: multi-task reach policies for branched robots, served over ROS 2.

This is the deployment runtime. It depends on numpy, mujoco and onnxruntime
only (rclpy in ``mtpolicy.nodes``); it never imports torch, gymnasium or
metaworld, which belong to the offline training package ``mtpolicy_training``.
"""

__version__ = "0.1.0"
