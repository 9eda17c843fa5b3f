"""Every ``ros2 ...`` command of README.md and docs/*.md runs, as written there, against a live stack (issue 49).

Commands are the lines of code blocks that start with ``ros2`` (``\\`` continuations joined, ``# ...`` comments
dropped) and inline code spans ``ros2 <verb> <arg> ...`` of at least three words (``ros2 launch`` alone is a
mention). Placeholders are substituted (the test's ``placeholders``: ``/abs/path/...``, ``model:=...``); a command
with a new one fails until it is added there. Each ``ros2 launch`` command is brought up once (the same command
after substitution once), the commands after it in its code block run against it (in their order; consecutive
reads of the graph at once, and consecutive goal publications: ``batches``), and every other command runs
against the first one of the README (the same as its "ROS 2 users" stack: the goals its ``topic pub`` commands
publish must then be reached). Each command must exit 0 without a traceback, each launcher 0 on SIGINT ("Ctrl-C
stops both"). Four stacks: the README's, the own-robot tutorial's sim + controller, its controller alone and its
URDF Panda; ``STACKS_AT_ONCE`` of them run at a time, each in a ROS domain of its own (the README's in the test's).
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import REPO, YARM, YARM_END_EFFECTORS, make_fixture_policy, scaled, unique_domain_id
from mtpolicy.kinematics import Kinematics
from mtpolicy_tools.launch_runner import parse_cli_args, parse_launch
from launchers import tool
from mtpolicy.robots import load_robot

pytestmark = pytest.mark.timeout(300)

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
_INLINE = re.compile(r"`(ros2\s[^`]+)`")
REACHED = 0.02
"""m: the README's goals count as reached with every end effector this close."""


@dataclass
class DocCommand:
    """A ``ros2`` command of the docs: where it is, its words, the code block it is in (None: inline)."""

    where: str
    words: list[str]
    block: tuple[str, int] | None

    @property
    def launch(self) -> bool:
        return self.words[1:2] == ["launch"]


@dataclass
class Stack:
    """A ``ros2 launch`` command of the docs and the commands that run against it."""

    launch: DocCommand
    commands: list[DocCommand] = field(default_factory=list)


def doc_commands(paths: list[Path]) -> list[DocCommand]:
    """The ``ros2`` commands of ``paths`` in order: code blocks, then inline spans, file by file."""
    found = []
    for path in paths:
        text, name = path.read_text(), str(path.relative_to(REPO))
        for block in _FENCE.finditer(text):
            first = text.count("\n", 0, block.start(1)) + 1
            lines = block.group(1).split("\n")
            i = 0
            while i < len(lines):
                start, line = i, lines[i]
                while line.rstrip().endswith("\\") and i + 1 < len(lines):
                    i += 1
                    line = line.rstrip()[:-1] + " " + lines[i]
                i += 1
                words = shlex.split(line, comments=True) if line.lstrip().startswith("ros2 ") else []
                if words:
                    found.append(DocCommand(f"{name}:{first + start}", words, (name, block.start())))
        prose = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        for span in _INLINE.finditer(prose):
            words = span.group(1).split()
            if len(words) >= 3:
                found.append(DocCommand(f"{name}:{prose.count(chr(10), 0, span.start()) + 1}", words, None))
    return found


def stacks(commands: list[DocCommand], placeholders: dict[str, str]) -> list[Stack]:
    """The launch commands (one per command line after substitution; the first one's stack first), each with
    the commands that run against it."""
    by_words: dict[tuple[str, ...], Stack] = {}
    block, stack = None, None
    loose = []
    for cmd in commands:
        if cmd.launch:
            stack = by_words.setdefault(tuple(substitute(cmd.words, placeholders)), Stack(cmd))
            block = cmd.block
        elif cmd.block is not None and cmd.block == block:
            stack.commands.append(cmd)
        else:
            loose.append(cmd)
    ordered = list(by_words.values())
    ordered[0].commands += loose
    return ordered


def substitute(words: list[str], placeholders: dict[str, str]) -> list[str]:
    """``words`` with every placeholder replaced (a word ``...`` dropped), ``ros2`` as this environment's."""
    out = []
    for word in words:
        for placeholder, value in placeholders.items():
            word = word.replace(placeholder, value)
        if word != "...":
            out.append(word)
    return [str(tool("ros2")), *out[1:]]


def yarm_params(path: Path) -> Path:
    """The own-robot tutorial's ``yarm.yaml`` (its first YAML block after the name), written to ``path``."""
    text = (REPO / "docs" / "own_robot.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text[text.index("`yarm.yaml`"):], re.S)
    path.write_text(block.group(1))
    return path


def panda_description_params(folder: Path) -> Path:
    """The own-robot tutorial's params file of the URDF Panda (section From robot_description), written by its
    ``python -c ...`` command into ``folder``."""
    text = (REPO / "docs" / "own_robot.md").read_text()
    line = re.search(r"<!-- robot_description params -->\n```\n(python -c .*?)\n```", text, re.S).group(1)
    words = shlex.split(line)
    out = folder / words[words.index(">") + 1]
    done = subprocess.run([sys.executable, *words[1:words.index(">")]], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True)
    out.write_text(done.stdout)
    return out


QUERIES = {("node", "list"), ("topic", "list"), ("topic", "echo"), ("param", "get"), ("param", "describe"),
           ("interface", "show")}
"""``ros2`` verbs that only read the graph: consecutive ones run at once."""


def batches(commands: list[DocCommand]) -> list[list[DocCommand]]:
    """The commands in their order, in groups run at once: consecutive reads (``QUERIES``), consecutive ``topic
    pub`` commands to different topics (the goals of one goal set); any other command alone (an e-stop before its
    release, ``daemon stop`` last)."""
    def kind(cmd: DocCommand) -> str | None:
        verb = tuple(cmd.words[1:3])
        return "query" if verb in QUERIES else "pub" if verb == ("topic", "pub") else None

    def topic(cmd: DocCommand) -> str:
        return next((w for w in cmd.words[3:] if w.startswith("/")), "")

    groups: list[list[DocCommand]] = []
    for cmd in commands:
        last = groups[-1] if groups else []
        if last and kind(cmd) is not None and kind(last[0]) == kind(cmd) \
                and (kind(cmd) == "query" or topic(cmd) not in {topic(c) for c in last}):
            last.append(cmd)
        else:
            groups.append([cmd])
    return groups


def goals_published(commands: list[DocCommand]) -> dict[str, np.ndarray]:
    """End effector -> the last goal the commands' ``ros2 topic pub ... /goals/<ee> ...`` publish."""
    goals = {}
    for cmd in commands:
        topics = [w for w in cmd.words if w.startswith("/goals/")]
        if cmd.words[1:3] == ["topic", "pub"] and topics:
            point = yaml.safe_load(cmd.words[-1])["point"]
            goals[topics[0].removeprefix("/goals/")] = np.array([point.get(k, 0.0) for k in "xyz"])
    return goals


STACKS_AT_ONCE = 2
"""Stacks brought up at once, each in a ROS domain of its own (this machine: 2 cores)."""


def test_every_ros2_command_of_the_docs_runs_against_a_live_stack(ros2_cli_env, tmp_path, spawn):
    env = ros2_cli_env
    yarm = load_robot(str(YARM / "robot.xml"), YARM_END_EFFECTORS)
    placeholders = {"/abs/path/robot.xml": str(YARM / "robot.xml"),
                    "/abs/path/policy.onnx": str(make_fixture_policy(tmp_path / "yarm.onnx", yarm)),
                    "/abs/path/yarm.yaml": str(yarm_params(tmp_path / "yarm.yaml")),
                    "model:=...": "model:=planar8_picor"}
    panda = load_robot("panda")  # the URDF Panda of docs/own_robot.md, From robot_description
    placeholders |= {"/abs/path/panda_policy.onnx": str(make_fixture_policy(tmp_path / "panda_policy.onnx", panda,
                                                                            at=Kinematics(panda).home)),
                     "/abs/path/panda_description.yaml": str(panda_description_params(tmp_path))}
    all_stacks = stacks(doc_commands(DOCS), placeholders)
    assert all_stacks[0].launch.where.startswith("README.md"), [s.launch.where for s in all_stacks]
    # the first stack in this test's domain, each other one in a domain of its own
    envs = [env] + [dict(env, ROS_DOMAIN_ID=str(unique_domain_id())) for _ in all_stacks[1:]]
    with ThreadPoolExecutor(STACKS_AT_ONCE) as pool:
        failures = sum(pool.map(lambda n: run_stack(n, all_stacks[n], placeholders, envs[n], spawn),
                                range(len(all_stacks))), [])
    assert not failures, "\n".join(failures)


def run_stack(n: int, stack: Stack, placeholders: dict[str, str], env: dict[str, str],
              spawn) -> list[str]:  # noqa: ANN001
    """Bring up ``stack`` (the ``n``-th; the first: the README's) in the ROS domain of ``env``, run its commands
    against it, stop it; the failures."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState

    planar8 = load_robot("planar8")
    kin = Kinematics(planar8)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("doc_commands", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    state: dict[str, float] = {}
    node.create_subscription(JointState, "/joint_states", lambda m: state.update(zip(m.name, m.position)), 10)

    def spin_until(done, timeout: float) -> bool:  # noqa: ANN001
        end = time.monotonic() + timeout
        while not done() and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        return done()

    def ros2(words: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(words, env=env, capture_output=True, text=True, timeout=scaled(60), check=False)

    def ros2_at_once(commands: list[list[str]]) -> list[tuple[int, str]]:
        """Each command's exit code and output; all started at once."""
        procs = [subprocess.Popen(words, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for words in commands]
        return [(proc.returncode, out) for proc in procs for out in [proc.communicate(timeout=scaled(60))[0]]]

    failures = []
    try:
        words = substitute(stack.launch.words, placeholders)
        expected = {f"/{a.name}" for a in parse_launch(words[3], parse_cli_args(words[4:])).nodes}
        launcher = spawn(f"launch-{n}", words, env=env)
        up = spin_until(lambda: expected <= {f"{ns.rstrip('/')}/{name}" for name, ns in
                                             node.get_node_names_and_namespaces()}, scaled(60.0))
        assert up, (stack.launch.where, launcher.output()[-3000:])
        for _ in range(20 if any(tuple(c.words[1:3]) in QUERIES for c in stack.commands) else 0):
            # the ros2 daemon, which the reads ask, sees them too (its first answers may list part of the graph)
            if expected <= set(ros2([str(tool("ros2")), "node", "list"]).stdout.split()):
                break
        for batch in batches(stack.commands):
            for cmd, (code, out) in zip(batch, ros2_at_once([substitute(c.words, placeholders) for c in batch])):
                if code != 0 or "Traceback" in out:
                    failures.append(f"{cmd.where}: {shlex.join(cmd.words)}\n  exit {code}: {out[-800:]}")
        if n == 0:
            goals = goals_published(stack.commands)
            names = list(planar8.end_effectors)
            assert sorted(goals) == names, goals

            def reached() -> bool:
                if not set(planar8.joint_names) <= set(state):
                    return False
                ee = kin.ee_positions(np.array([state[j] for j in planar8.joint_names]))
                return bool(np.all(np.linalg.norm(ee - np.array([goals[k] for k in names]), axis=1) < REACHED))
            if not spin_until(reached, scaled(30.0)):
                ee = kin.ee_positions(np.array([state.get(j, np.nan) for j in planar8.joint_names]))
                failures.append(f"{stack.launch.where}: the goals {goals} were not reached within {REACHED} m "
                                f"(end effectors at {ee.round(3).tolist()}):\n{launcher.output()[-2000:]}")
        launcher.signal(signal.SIGINT)
        code = launcher.wait(scaled(30))
        if code != 0:
            failures.append(f"{stack.launch.where}: {shlex.join(words)} exited {code} on SIGINT:\n"
                            f"{launcher.output()[-2000:]}")
    finally:
        ros2([str(tool("ros2")), "daemon", "stop"])
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    return failures
