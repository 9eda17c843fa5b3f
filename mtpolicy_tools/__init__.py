"""mtpolicy_tools: the tools beside the runtime, for people at a workstation rather than a robot computer.

The ``mtpolicy`` command (``cli``) and its subcommands: ``demo`` (with ``demo_media``: figures, picture, video),
``goals``, ``launch`` (``launch_runner``: the pip-only fallback of ``ros2 launch``), ``render``, ``import-robot``
(its library function is the runtime's ``mtpolicy.robots.importer``); ``record`` (rosbag2 with MCAP), ``monitor``
(a client node of a running stack), ``environment`` (the environment of our ROS processes) and ``arguments`` (the
option vocabulary every command shares, the trainers' included).

Tools import the runtime (``mtpolicy``); the runtime never imports them, nor anything of training
(tests/unit/test_layout.py).
"""
