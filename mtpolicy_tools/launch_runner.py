"""A small runner for the package's ``.launch.xml`` files: the fallback for machines with pip but no ``ros2 launch``.

``ros2 launch mtpolicy <file>`` is the reference (a ROS 2 install, or the
upstream wheels ``make setup`` installs from ../shared/ros2-launch); a test
holds both to the same result on the same files (tests/ros/test_launch.py). This
runner reads the subset of the ROS 2 launch XML format they use:

| element / attribute | meaning |
|---|---|
| ``<launch>`` | root |
| ``<arg name= default= description=/>`` | launch argument, set as ``name:=value`` on the command line |
| ``<let name= value=/>`` | a launch configuration computed in the file |
| ``<set_env name= value=/>`` | environment variable for every node after it |
| ``<include file=>`` + ``<arg name= value=/>`` | another launch file, with arguments |
| ``<node pkg= exec= name= namespace= args= output= on_exit="shutdown"/>`` | a node process |
| ``required="true"`` on ``<node>`` | ROS 1 spelling, read as ``on_exit="shutdown"`` |
| ``<param name= value=/>``, ``<param from=/>`` | ``-p name:=value``, ``--params-file`` (in order) |
| ``<remap from= to=/>`` | ``-r from:=to`` |
| ``<env name= value=/>`` | environment variable of one node |
| ``if=`` / ``unless=`` on any element | ``true``/``false``/``1``/``0`` after substitution |
| ``$(var x)``, ``$(env X [default])``, ``$(find-pkg-share pkg)``, ``$(dirname)`` | substitutions |

Each node runs as its own process (in its own session, so a terminal's
Ctrl-C or hang-up reaches the runner only, which forwards SIGINT to every
node), asked to get SIGTERM when the runner exits before it execs (any
node executable, not only this package's; this package's start with their
stop signals held until their handlers are in place); output lines are
prefixed with ``[node name]``. SIGINT, SIGTERM and
SIGHUP stop all nodes (SIGINT, then SIGTERM, then SIGKILL, 5 s apart); a node
with ``on_exit="shutdown"`` exiting stops all others; the runner exits when no
node is left. If the runner itself dies (SIGKILL), the nodes stop on their own
(``mtpolicy.nodes.process``). Exit code: 0 when every node exited 0 (as
this package's nodes do when stopped) or by SIGINT, else the first other node
exit code (negative: the signal that ended it, e.g. -9 after the escalation);
``mtpolicy launch`` exits 2 on a launch file or argument error.
"""

from __future__ import annotations

import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, TextIO, overload

PACKAGE = "mtpolicy"
SOURCE_ROOT = Path(__file__).resolve().parent.parent


class LaunchError(ValueError):
    """A launch file or its arguments cannot be run: the message says where and why."""


# -- processes --------------------------------------------------------------
def _die_with_this_process(hold_stop_signals: bool) -> Callable[[], None] | None:
    """The ``preexec_fn`` that has a child get SIGTERM when this process exits (Linux; elsewhere None), with
    ``hold_stop_signals`` its SIGINT, SIGTERM and SIGHUP blocked (for this package's node executables, which
    unblock them once their handlers are in place: ``mtpolicy.nodes.process``).

    It runs in the child before ``exec``: ``PR_SET_PDEATHSIG``, then the
    child exits at once if this process is no longer its parent (it died
    between the fork and the request), so no window is left open. The libc
    handle is made here, in the parent.
    """
    if not sys.platform.startswith("linux"):
        return None
    from mtpolicy.nodes.process import PARENT_DEATH_SIGNAL, PR_SET_PDEATHSIG, STOP_SIGNALS

    libc, parent = ctypes.CDLL(None, use_errno=True), os.getpid()

    def request() -> None:
        if hold_stop_signals:
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        libc.prctl(PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(0)

    return request


class ManagedProcess:
    """A child process whose merged stdout/stderr is collected (and echoed with a ``[name]`` prefix); with
    ``die_with_parent``, it gets SIGTERM when this process exits (and with ``hold_stop_signals`` starts with its
    stop signals blocked: ``_die_with_this_process``)."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str] | None = None,
                 echo: TextIO | None = sys.stdout, cwd: str | Path | None = None, die_with_parent: bool = False,
                 hold_stop_signals: bool = False):
        self.name, self.cmd = name, cmd
        preexec = _die_with_this_process(hold_stop_signals) if die_with_parent else None
        self.popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=env, cwd=cwd, text=True, bufsize=1, start_new_session=True,
                                      preexec_fn=preexec)
        self.lines: list[str] = []
        self._sent: set[int] = set()
        self._echo = echo
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"{name}-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            line = line.rstrip("\n")
            with self._lock:
                self.lines.append(line)
                if self._echo is not None:
                    print(f"[{self.name}] {line}", file=self._echo, flush=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for_output(self, text: str, timeout: float) -> bool:
        """True as soon as ``text`` appears in the output; False after ``timeout`` s or on exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if self.returncode is not None:
                self._reader.join(timeout=1.0)
                return text in self.output()
            time.sleep(0.05)
        return False

    def signal(self, sig: int) -> None:
        self._sent.add(sig)
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float | None = None) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(timeout=2.0)
        return code

    def stop(self, grace: float = 5.0) -> int:
        """SIGINT (unless sent already); after ``grace`` s SIGTERM; then SIGKILL. Returns the exit code."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            if sig not in self._sent:
                self.signal(sig)
            try:
                return self.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self.signal(signal.SIGKILL)
        return self.wait()


# -- launch description -----------------------------------------------------
@dataclass
class NodeAction:
    """One ``<node>``: how to start its process."""

    name: str
    package: str
    executable: str
    ros_args: list[str] = field(default_factory=list)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    shutdown_on_exit: bool = False

    def command(self) -> list[str]:
        return [str(find_executable(self.package, self.executable)), *self.extra_args, "--ros-args", *self.ros_args]


@dataclass
class LaunchDescription:
    """Nodes of a launch file with its arguments resolved."""

    nodes: list[NodeAction]
    arguments: dict[str, tuple[str | None, str]]
    """Declared arguments of the top-level file: name -> (default, description)."""


def package_share(package: str) -> Path:
    """share/<package>: the source tree for this package when run from a checkout, else the ament index."""
    if package == PACKAGE and (SOURCE_ROOT / "package.xml").is_file() and (SOURCE_ROOT / "launch").is_dir():
        return SOURCE_ROOT
    if os.environ.get("AMENT_PREFIX_PATH"):
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            return Path(get_package_share_directory(package))
        except PackageNotFoundError:
            pass
    share = Path(sys.prefix) / "share" / package
    if share.is_dir():
        return share
    raise LaunchError(f"package {package!r} not found (no source tree, ament index or {share})")


def find_executable(package: str, executable: str) -> Path:
    """``lib/<package>/<exe>`` (colcon, pip install) or ``bin/<exe>`` (pip editable) or PATH."""
    prefixes = [Path(sys.prefix)] + [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    candidates = [p / "lib" / package / executable for p in prefixes] + [Path(sys.executable).parent / executable]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which(executable)
    if found:
        return Path(found)
    raise LaunchError(f"executable {executable!r} of package {package!r} not found in "
                      f"{[str(c) for c in candidates]} or PATH (is the package installed?)")


_SUBST = re.compile(r"\$\(([a-z-]+)((?:\s+[^)\s]+)*)\s*\)")


class _Parser:
    def __init__(self, path: Path, config: dict[str, str], env: dict[str, str], top: bool):
        self.path, self.config, self.env, self.top = path, config, env, top
        self.nodes: list[NodeAction] = []
        self.arguments: dict[str, tuple[str | None, str]] = {}

    def where(self, el: ET.Element) -> str:
        return f"{self.path.name}: <{el.tag} {' '.join(f'{k}={v!r}' for k, v in el.attrib.items())}>"

    def subst(self, text: str, el: ET.Element) -> str:
        def one(m: re.Match) -> str:
            kind, args = m.group(1), m.group(2).split()
            if kind == "var" and len(args) == 1:
                if args[0] not in self.config:
                    raise LaunchError(f"{self.where(el)}: launch configuration {args[0]!r} is not set")
                return self.config[args[0]]
            if kind == "env" and len(args) in (1, 2):
                value = self.env.get(args[0], os.environ.get(args[0]))
                if value is None and len(args) == 1:
                    raise LaunchError(f"{self.where(el)}: environment variable {args[0]!r} is not set")
                return value if value is not None else args[1]
            if kind == "find-pkg-share" and len(args) == 1:
                return str(package_share(args[0]))
            if kind == "dirname" and not args:
                return str(self.path.parent)
            raise LaunchError(f"{self.where(el)}: unsupported substitution {m.group(0)!r} (supported: var, env, "
                              "find-pkg-share, dirname)")
        return _SUBST.sub(one, text)

    @overload
    def attr(self, el: ET.Element, name: str, default: str | None = None, *, required: Literal[True]) -> str: ...
    @overload
    def attr(self, el: ET.Element, name: str, default: str | None = None, required: bool = False) -> str | None: ...

    def attr(self, el: ET.Element, name: str, default: str | None = None, required: bool = False) -> str | None:
        value = el.get(name)
        if value is None:
            if required:
                raise LaunchError(f"{self.where(el)}: attribute {name!r} is required")
            return default
        return self.subst(value, el)

    def condition(self, el: ET.Element) -> bool:
        for key, want in (("if", True), ("unless", False)):
            value = self.attr(el, key)
            if value is not None:
                if value.strip().lower() not in ("true", "false", "1", "0"):
                    raise LaunchError(f"{self.where(el)}: {key}={value!r} is not true/false/1/0")
                if (value.strip().lower() in ("true", "1")) != want:
                    return False
        return True

    def parse(self, given: dict[str, str]) -> None:
        root = ET.parse(self.path).getroot()
        if root.tag != "launch":
            raise LaunchError(f"{self.path}: root element is <{root.tag}>, expected <launch>")
        for el in root:
            if not self.condition(el):
                continue
            handler = getattr(self, f"_{el.tag}", None)
            if handler is None:
                raise LaunchError(f"{self.where(el)}: unsupported element (supported: arg, let, set_env, include, "
                                  "node)")
            handler(el, given)

    def _arg(self, el: ET.Element, given: dict[str, str]) -> None:
        name = self.attr(el, "name", required=True)
        default = self.attr(el, "default")
        self.arguments[name] = (default, el.get("description", ""))
        if name in given:
            self.config[name] = given[name]
        elif name not in self.config:
            if default is None:
                raise LaunchError(f"{self.path.name}: argument {name!r} is required ({name}:=VALUE)")
            self.config[name] = default

    def _let(self, el: ET.Element, given: dict[str, str]) -> None:
        self.config[self.attr(el, "name", required=True)] = self.attr(el, "value", required=True)

    def _set_env(self, el: ET.Element, given: dict[str, str]) -> None:
        self.env[self.attr(el, "name", required=True)] = self.attr(el, "value", required=True)

    def _include(self, el: ET.Element, given: dict[str, str]) -> None:
        path = Path(self.attr(el, "file", required=True))
        args: dict[str, str] = {}
        for child in el:
            if child.tag != "arg":
                raise LaunchError(f"{self.where(child)}: only <arg> may appear inside <include>")
            args[self.attr(child, "name", required=True)] = self.attr(child, "value", required=True)
        sub = _Parser(path if path.is_absolute() else self.path.parent / path, dict(self.config, **args),
                      self.env, top=False)
        sub.parse(args)
        self.nodes += sub.nodes

    def _node(self, el: ET.Element, given: dict[str, str]) -> None:
        exe = self.attr(el, "exec", required=True)
        name = self.attr(el, "name") or exe
        ros_args = ["-r", f"__node:={name}"]
        namespace = self.attr(el, "namespace")
        if namespace:
            ros_args += ["-r", f"__ns:={namespace if namespace.startswith('/') else '/' + namespace}"]
        env = dict(self.env)
        for child in el:
            if not self.condition(child):
                continue
            if child.tag == "param":
                source = self.attr(child, "from")
                if source is not None:
                    ros_args += ["--params-file", source]
                else:
                    value = self.attr(child, "value", required=True)
                    ros_args += ["-p", f"{self.attr(child, 'name', required=True)}:={value if value else repr('')}"]
            elif child.tag == "remap":
                remap = (self.attr(child, "from", required=True), self.attr(child, "to", required=True))
                ros_args += ["-r", ":=".join(remap)]
            elif child.tag == "env":
                env[self.attr(child, "name", required=True)] = self.attr(child, "value", required=True)
            else:
                raise LaunchError(f"{self.where(child)}: unsupported element inside <node> (param, remap, env)")
        shutdown = self.attr(el, "on_exit") == "shutdown" or (self.attr(el, "required") or "").lower() == "true"
        self.nodes.append(NodeAction(name=name, package=self.attr(el, "pkg", required=True), executable=exe,
                                     ros_args=ros_args, extra_args=shlex.split(self.attr(el, "args") or ""),
                                     env=env, shutdown_on_exit=shutdown))


def resolve_launch_file(file_or_name: str) -> Path:
    """A path, or a file name (with or without ``.launch.xml``) in share/mtpolicy/launch."""
    path = Path(file_or_name)
    if path.is_file():
        return path
    folder = package_share(PACKAGE) / "launch"
    for candidate in (folder / file_or_name, folder / f"{file_or_name}.launch.xml"):
        if candidate.is_file():
            return candidate
    raise LaunchError(f"launch file {file_or_name!r} not found; available: "
                      f"{sorted(p.name for p in folder.glob('*.launch.xml'))}")


def parse_launch(file_or_name: str | Path, args: dict[str, str] | None = None) -> LaunchDescription:
    """Resolve a launch file with ``args`` (name -> value) into the nodes to start."""
    args = dict(args or {})
    parser = _Parser(resolve_launch_file(str(file_or_name)).resolve(), {}, {}, top=True)
    parser.parse(args)
    unknown = sorted(set(args) - set(parser.arguments))
    if unknown:
        raise LaunchError(f"unknown launch argument(s) {unknown}; {parser.path.name} declares "
                          f"{sorted(parser.arguments)}")
    return LaunchDescription(parser.nodes, parser.arguments)


def parse_cli_args(items: list[str]) -> dict[str, str]:
    """``["robot:=planar8", ...]`` -> ``{"robot": "planar8"}``."""
    out = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise LaunchError(f"launch arguments are name:=value, got {item!r}")
        out[name] = value
    return out


# -- running ----------------------------------------------------------------
class LaunchRunner:
    """Starts every node of a description as a process and supervises them."""

    def __init__(self, description: LaunchDescription, env: dict[str, str], echo: TextIO | None = sys.stdout):
        self.description, self.env, self.echo = description, env, echo
        self.processes: list[tuple[NodeAction, ManagedProcess]] = []
        self._stop_requested = False

    def log(self, text: str) -> None:
        if self.echo is not None:
            print(f"[mtpolicy launch] {text}", file=self.echo, flush=True)

    def start(self) -> None:
        from mtpolicy.nodes.process import EXECUTABLES

        self.log(f"ROS_DOMAIN_ID={self.env.get('ROS_DOMAIN_ID', '0')} "
                 f"ROS_AUTOMATIC_DISCOVERY_RANGE={self.env.get('ROS_AUTOMATIC_DISCOVERY_RANGE', '')}")
        commands = [(node, node.command()) for node in self.description.nodes]  # fail before starting any
        for node, cmd in commands:
            ours = node.package == PACKAGE and node.executable in EXECUTABLES
            proc = ManagedProcess(node.name, cmd, env={**self.env, **node.env}, echo=self.echo, die_with_parent=True,
                                  hold_stop_signals=ours)
            self.processes.append((node, proc))
            self.log(f"started {node.name} (pid {proc.pid}): {shlex.join(cmd)}")

    def request_stop(self) -> None:
        """Have ``wait`` stop every node. Safe in a signal handler: it sets a flag and takes no lock."""
        self._stop_requested = True

    def wait(self, poll: float = 0.1) -> int:
        """Supervise until every node exited, a shutdown node exited, or a stop was requested."""
        code = 0
        reported: set[int] = set()
        while not self._stop_requested:
            alive = 0
            for node, proc in self.processes:
                rc = proc.returncode
                if rc is None:
                    alive += 1
                elif proc.pid not in reported:
                    reported.add(proc.pid)
                    self.log(f"{node.name} exited with code {rc}")
                    code = code or rc
                    if node.shutdown_on_exit:
                        self.log(f"{node.name} has on_exit=shutdown: stopping all nodes")
                        self._stop_requested = True
            if not alive:
                break
            time.sleep(poll)
        return self.stop() or code

    def stop(self) -> int:
        """SIGINT every live node at once, then escalate per node; the first non-zero exit code."""
        live = [(n, p) for n, p in self.processes if p.returncode is None]
        for _, proc in live:
            proc.signal(signal.SIGINT)
        code = 0
        for node, proc in live:
            rc = proc.stop()
            self.log(f"{node.name} stopped (code {rc})")
            code = code or (rc if rc not in (-signal.SIGINT, 130) else 0)
        return code

    def __enter__(self) -> "LaunchRunner":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run(file_or_name: str, args: dict[str, str], env: dict[str, str] | None = None) -> int:
    """``mtpolicy launch``: run until every node exits, or SIGINT, SIGTERM or SIGHUP stops them; the exit code."""
    from mtpolicy.nodes.process import STOP_SIGNALS
    from mtpolicy_tools.environment import ros_env

    runner = LaunchRunner(parse_launch(file_or_name, args), ros_env(env))
    previous = {sig: signal.signal(sig, lambda *_: runner.request_stop()) for sig in STOP_SIGNALS}
    try:
        runner.start()
        return runner.wait()
    finally:
        runner.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
