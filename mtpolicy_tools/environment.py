"""The environment every ROS process of ours runs in: loopback discovery, and a private domain id for the
self-contained runs (the demo, the benchmarks; the tests draw theirs: tests/helpers.py ``unique_domain_id``)."""

from __future__ import annotations

import os
import random
from typing import Mapping

ISOLATED_DOMAINS = (215, 232)
"""ROS domain ids of self-contained runs (demo, benchmarks): apart from the tests' 1..100, and within what DDS's
port mapping allows on Linux (0..101 and 215..232)."""

DEMO_REALTIME_PRIORITY = 50
"""The SCHED_FIFO priority ``mtpolicy demo`` asks for its sim and controller (the nodes' ``realtime_priority``):
ros2_control's default for its control thread."""

MAX_DOMAIN_ID = 232
"""The largest ROS domain id whose DDS ports fit in 16 bits (7400 + 250 id + the participant's offsets)."""


def ros_env(base: Mapping[str, str] | None = None, domain_id: int | None = None,
            isolate: bool = False) -> dict[str, str]:
    """``base`` (default os.environ) as our ROS processes need it.

    Discovery is loopback-only unless ``base`` says otherwise
    (``ROS_AUTOMATIC_DISCOVERY_RANGE``). A given ``domain_id`` is forced; with
    ``isolate``, a ``ROS_DOMAIN_ID`` in ``base`` is kept and one of
    ``ISOLATED_DOMAINS`` drawn when there is none, so self-contained runs (demo,
    benchmark) never meet the tests' processes (``unique_domain_id``: 1..100) on
    the machine. A ``ROS_DOMAIN_ID`` that no DDS can use (not an integer in
    0..``MAX_DOMAIN_ID``) exits with a one-line error before any process starts.
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    elif isolate and not env.get("ROS_DOMAIN_ID"):
        env["ROS_DOMAIN_ID"] = str(random.randint(*ISOLATED_DOMAINS))
    domain = env.get("ROS_DOMAIN_ID", "").strip()
    if domain and not (domain.isdigit() and int(domain) <= MAX_DOMAIN_ID):
        raise SystemExit(f"ROS_DOMAIN_ID={domain!r}: expected an integer from 0 to {MAX_DOMAIN_ID} (0..101 or "
                         f"{ISOLATED_DOMAINS[0]}..{ISOLATED_DOMAINS[1]} on Linux, clear of its ephemeral ports)")
    env.setdefault("MUJOCO_GL", "egl")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    return env
