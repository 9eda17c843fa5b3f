"""rclpy nodes of the stack: ``controller`` (policy), ``sim`` (MuJoCo), ``goals`` (goal tool).

Offscreen rendering defaults to EGL (headless robot computers and CI):
MuJoCo picks its GL backend when first imported, so it is set here, before
any node module imports mujoco. A user's own ``MUJOCO_GL`` wins.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
