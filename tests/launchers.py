"""The package's launch files under either launcher, for the tests and the benchmarks.

``ros2 launch`` (the reference) runs them from a colcon build of ``ros2_ws``,
which lays the package out as it needs (``share/mtpolicy``: launch files,
parameters, models; ``lib/mtpolicy``: the node executables).
``mtpolicy launch`` (``mtpolicy_tools.launch_runner``, the fallback for pip-only
machines) runs the same files from the checkout or a pip install.
``install_env`` is the environment of ``. install/setup.sh`` over the ROS 2
underlay: this Python's prefix, where the PyPI ``ros-*`` wheels and the
launch wheels register in the ament index (on a ROS 2 install, its
``AMENT_PREFIX_PATH``). ``stop_and_watch`` signals a running launcher and
reports how its nodes ended; ``signal_at_start`` signals one as its nodes start.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mtpolicy_tools.launch_runner import ManagedProcess
    from mtpolicy_tools.monitor import ReachMonitor

PACKAGE = "mtpolicy"
WORKSPACE = Path(__file__).resolve().parent.parent / "ros2_ws"
LAUNCHERS = ("ros2", "mtpolicy")
"""``ros2 launch`` and the pip-only ``mtpolicy launch``."""
_NODE_STARTED = {
    "ros2": re.compile(r"\[INFO\] \[([\w-]+)\]: process started with pid \[(\d+)\]"),
    "mtpolicy": re.compile(r"\[mtpolicy launch\] started (\w+) \(pid (\d+)\)"),
}


def tool(name: str) -> Path | None:
    """A command of this Python's environment (next to its interpreter), else on PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    return Path(found) if found else None


CLI_VERBS = ("ros2topic", "ros2node", "ros2param", "ros2service", "ros2interface")
"""The packages of the ``ros2`` verbs the docs use beside ``ros2 launch``."""


def missing(modules: tuple[str, ...] = ()) -> str | None:
    """Why colcon, ``ros2 launch``, ``launch_test`` or the packages ``modules`` cannot run here; None when they
    can."""
    absent = [name for name in ("ros2", "launch_test", "colcon") if tool(name) is None]
    absent += [m for m in ("launch_ros", "launch_testing", "ros2launch", *modules)
               if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    return (f"no {', '.join(absent)}: PyPI has no ROS 2 launch tools or ros2 CLI; `make setup` installs them from "
            "../shared/ros2-launch where it exists (or use a ROS 2 install), colcon with "
            "`pip install colcon-core colcon-ros`")


def underlay() -> str:
    """``AMENT_PREFIX_PATH`` of the ROS 2 this Python runs: the environment's, else this Python's prefix."""
    return os.environ.get("AMENT_PREFIX_PATH") or sys.prefix


def colcon_build(dest: Path, workspace: Path = WORKSPACE) -> Path:
    """``colcon build`` of ``workspace`` with build, install and log folders under ``dest``; the install folder.

    Raises RuntimeError with colcon's output when the build fails.
    """
    dest = Path(dest)
    cmd = [str(tool("colcon")), "--log-base", str(dest / "log"), "build", "--base-paths", str(workspace / "src"),
           "--build-base", str(dest / "build"), "--install-base", str(dest / "install")]
    done = subprocess.run(cmd, cwd=dest, env=dict(os.environ, AMENT_PREFIX_PATH=underlay()), capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"colcon build failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return dest / "install"


def install_env(install: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default os.environ) after ``. install/setup.sh``, with the ROS 2 underlay on AMENT_PREFIX_PATH."""
    env = dict(os.environ if base is None else base)
    env.setdefault("AMENT_PREFIX_PATH", underlay())
    out = subprocess.run(["sh", "-c", '. "$1/setup.sh" && env -0', "sh", str(install)], env=env,
                         capture_output=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def command(launcher: str, launch_file: str, args: dict[str, str]) -> list[str]:
    """``ros2 launch mtpolicy <file>.launch.xml name:=value ...`` or ``mtpolicy launch <file> name:=value ...``"""
    from mtpolicy_tools.launch_runner import find_executable

    given = [f"{k}:={v}" for k, v in args.items()]
    if launcher == "ros2":
        return [str(tool("ros2")), "launch", PACKAGE, f"{launch_file}.launch.xml", *given]
    return [str(find_executable(PACKAGE, "mtpolicy")), "launch", launch_file, *given]


def node_pids(launcher: str, output: str) -> dict[str, int]:
    """Process name -> pid of every node the launcher reported starting."""
    return {name: int(pid) for name, pid in _NODE_STARTED[launcher].findall(output)}


def running(pid: int, exits: dict[int, int] | None = None) -> bool:
    """Whether ``pid`` runs (a zombie does not). An adopted child that ended is reaped, its exit code put in
    ``exits`` (see ``stop_and_watch``)."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: ask /proc
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        return state != "Z"
    if got == pid:
        if exits is not None:
            exits[pid] = os.waitstatus_to_exitcode(status)
        return False
    return True


def signal_at_start(proc: ManagedProcess, launcher: str, nodes: int, sig: int, delay: float,
                    timeout: float = 60.0) -> dict[str, int]:
    """Send ``sig`` to the launcher ``proc`` ``delay`` s after it reported starting its ``nodes``-th node (polled
    every 2 ms); the node pids it reported (fewer than ``nodes`` if it exited or ``timeout`` s passed first)."""
    deadline = time.monotonic() + timeout
    while len(node_pids(launcher, proc.output())) < nodes and proc.returncode is None \
            and time.monotonic() < deadline:
        time.sleep(0.002)
    pids = node_pids(launcher, proc.output())
    if len(pids) == nodes:
        time.sleep(delay)
        proc.signal(sig)
    return pids


def survivors(pids: dict[str, int], deadline: float, exits: dict[int, int] | None = None) -> list[str]:
    """The nodes (name -> pid) still running ``deadline`` s from now; waits on their exit, polled every 10 ms
    (``exits``: see ``running``)."""
    end = time.monotonic() + deadline
    while any(running(pid, exits) for pid in pids.values()) and time.monotonic() < end:
        time.sleep(0.01)
    return [name for name, pid in pids.items() if running(pid, exits)]


def wait_until_moving(proc: ManagedProcess, monitor: ReachMonitor, goals: np.ndarray, timeout: float) -> bool:
    """Publish ``goals`` every 0.5 s until the controller sends a non-zero command (True), ``proc`` exits or
    ``timeout`` s pass (False)."""
    deadline = time.monotonic() + timeout
    while proc.returncode is None and time.monotonic() < deadline:
        monitor.publish_goals(goals)
        if monitor.wait_until(lambda: monitor.command is not None and bool(np.any(monitor.command)), 0.5):
            return True
    return False


@dataclass
class StopOutcome:
    """How a launcher and its nodes ended after a signal."""

    survivors: list[str]
    """Nodes still running ``deadline`` s after the signal."""
    stop_s: float
    """Seconds from the signal until the last node was gone (``timeout`` if one never went)."""
    exit_code: int | None
    """The launcher's (negative: the signal that ended it); None if it still ran after ``timeout``."""
    zero_last: bool
    """The last command on the wire after the signal is all zeros."""
    node_exits: dict[str, int]
    """Exit codes of nodes that outlived the launcher and were adopted by this process (child subreaper)."""


def stop_and_watch(proc: ManagedProcess, pids: dict[str, int], sig: int, monitor: ReachMonitor,
                   deadline: float = 2.0, timeout: float = 10.0) -> StopOutcome:
    """Send ``sig`` to the launcher ``proc`` and watch its nodes (``pids``) go, spinning ``monitor`` meanwhile."""
    exits: dict[int, int] = {}
    seen = len(monitor.commands)

    def gone() -> bool:
        return not any(running(pid, exits) for pid in pids.values())

    start = time.monotonic()
    os.kill(proc.pid, sig)
    monitor.wait_until(gone, deadline)
    survivors = [name for name, pid in pids.items() if running(pid, exits)]
    monitor.wait_until(gone, timeout - (time.monotonic() - start))
    stop_s = time.monotonic() - start
    try:
        exit_code: int | None = proc.wait(max(0.0, timeout - stop_s))
    except subprocess.TimeoutExpired:
        exit_code = None
    after = monitor.commands[seen:]
    names = {pid: name for name, pid in pids.items()}
    return StopOutcome(survivors=survivors, stop_s=stop_s, exit_code=exit_code,
                       zero_last=bool(after) and not np.any(after[-1][1]),
                       node_exits={names[pid]: code for pid, code in exits.items()})
