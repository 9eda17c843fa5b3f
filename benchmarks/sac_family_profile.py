"""Where the time of a SAC-family run on Meta-World MT10 goes, per method, on one torch thread (or ``--torch-threads``).

    python -m benchmarks.sac_family_profile --methods mtsac mh-sac dgrad-a dgrad-o picor

Measures, in this process: one MT10 vector env step (10 envs, with the task
one-hot), one Meta-World evaluation episode per task, and for each method at
the paper's sizes (PiCor at the ``picor-mt10`` grid's 6 x 160) and the batch
``train sac-family`` samples (``batch_per_task`` x 10 rows; PiCor: as many of
every task): replay ``add`` of one vector step, replay ``sample``, ``act``,
and one update, broken down into its parts (actor samples, critic targets,
critic and actor-loss forwards, the critic, actor and temperature steps with
their backward passes, D-Grad(O)'s per-task gradients, PiCor's correction
and the optimizer steps inside them). Every update is also
timed in CPU time with its page faults, and against its GEMM floor: the same
matrix products (shapes and dtypes recorded by torch.profiler from one
update), timed bare on contiguous operands; an update cannot cost less. With
``--precisions float32 bfloat16`` each method is profiled in both
``LoopConfig.matmul_precision`` settings, side by side, with each update's
speed-up over the first. From these it prints env steps/s and hours per 1M
env steps (one update of ``batch_per_task`` x 10 per vector step, as
``train sac-family`` runs MT10; evaluation excluded).

The replay holds random transitions and the updates run on them: the
timings do not depend on the data. On a shared machine, compare methods
within one run, or interleave runs of the versions being compared.
"""

from __future__ import annotations

import os
import platform
import resource
import shlex
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import tyro
from torch.profiler import ProfilerActivity, profile

from mtpolicy_training.algos.picor import PiCor, PiCorConfig
from mtpolicy_training.algos.sac_family import FamilyMethod, SACFamily, SACFamilyConfig
from mtpolicy_training.core.offpolicy import keep_freed_memory, update_precision
from mtpolicy_training.core.replay import TaskReplayBuffer
from mtpolicy_training.envs.taskset import TaskOneHotObservations
from mtpolicy_training.train.sac_family import family_batch_size

GEMMS = {"aten::mm": 2, "aten::addmm": 2, "aten::addmm_": 2, "aten::bmm": 3, "aten::baddbmm": 3}
"""Matrix-product ops recorded by the profiler -> number of dims of their operands (2: mm, 3: bmm)."""


@dataclass
class ProfileConfig:
    """What to measure."""

    methods: list[FamilyMethod] = field(default_factory=lambda: ["mtsac", "mh-sac", "dgrad-a", "dgrad-o", "picor"])
    """SAC-family methods to profile (paper sizes), or picor (MTSAC's 6 x 160, as the picor-mt10 grid runs it)."""
    updates: int = 20
    """Timed updates per method (after 3 untimed)."""
    batch_per_task: int = 128
    """Minibatch samples per task (the sac-family trainer's default)."""
    env_steps: int = 200
    """Timed MT10 vector steps (0: skip the env, which is slow to build)."""
    episodes: int = 1
    """Episodes per task of the timed Meta-World evaluation (0: skip)."""
    op_table: bool = False
    """Also print torch.profiler's op table of one update per method."""
    torch_threads: int = 1
    """torch intra-op threads (a harness cell's ``--threads-per-cell``)."""
    precisions: list[Literal["float32", "bfloat16"]] = field(default_factory=lambda: ["float32"])
    """Matrix-product precisions (``--loop.matmul-precision``) to profile each method in; with more than one, a
    row of each update's speed-up over the first."""
    out_dir: Path | None = None
    """Also write the table to ``out_dir/table.md``, with the command and the machine's load."""


def cpu_description() -> str:
    """The CPU's model name and its bfloat16 instruction sets (what bfloat16 products run on), from /proc/cpuinfo."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    bf16 = [f for f in fields.get("flags", "").split() if f in ("amx_bf16", "avx512_bf16")]
    return f"{fields.get('model name', platform.machine())} ({', '.join(bf16) or 'no bfloat16 instructions'})"


class Timers:
    """Nested wall-clock timers: ``with timers('a')`` inside ``with timers('b')`` adds to 'b/a'."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.stack: list[str] = []

    @contextmanager
    def __call__(self, name: str):
        self.stack.append(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.totals["/".join(self.stack)] += time.perf_counter() - start
            self.stack.pop()

    def wrap(self, obj, attr: str, name: str) -> None:
        """Time every call of ``obj.attr`` (an instance attribute shadows the method)."""
        fn = getattr(obj, attr)

        def timed(*args, **kwargs):
            with self(name):
                return fn(*args, **kwargs)
        setattr(obj, attr, timed)


def instrument(method, timers: Timers) -> None:
    """Time the parts of ``method.update`` (names as printed)."""
    timers.wrap(method.actor, "sample", "actor sample")
    timers.wrap(method, "critic_targets", "critic targets")
    timers.wrap(method, "critic_losses", "critic forward")
    timers.wrap(method, "actor_losses", "actor-loss forward")
    for opt in (method.actor_opt, method.critic_opt, method.alpha_opt):
        timers.wrap(opt, "step", "optimizer")
    names = {id(method.actor_opt): "actor step", id(method.critic_opt): "critic step",
             id(method.alpha_opt): "temperature step"}
    if hasattr(method, "task_gradients"):
        timers.wrap(method.task_gradients, "per_task_blocks", "per-task gradients")
    if isinstance(method, PiCor):
        timers.wrap(method, "correct", "correction")
        timers.wrap(method.correction_opt, "step", "optimizer")
        names[id(method.correction_opt)] = "correction step"
    apply = method.apply_gradients

    def timed_apply(losses, task, params, optimizer):
        with timers(names[id(optimizer)]):
            return apply(losses, task, params, optimizer)
    method.apply_gradients = timed_apply


def gemm_floor_ms(method, batch, repeats: int = 10) -> float:
    """Wall ms of the bare matrix products of one ``method.update(batch)`` (shapes and dtypes from torch.profiler)."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        method.update(batch)
    tensors: dict[tuple, torch.Tensor] = {}  # one random operand per shape and dtype
    operands = []
    for event in prof.events():
        dims = GEMMS.get(event.name)
        if dims is None or any(child.name == event.name for child in event.cpu_children):
            continue  # not a product, or autocast's dispatch to the same op in bfloat16
        # Autocast casts every operand of a product with a bfloat16 one (the profiler may record them uncast).
        dtype = torch.bfloat16 if "c10::BFloat16" in event.input_dtypes else torch.float32
        shapes = [tuple(s) for s in event.input_shapes if len(s) == dims][-2:]
        operands.append(tuple(tensors.setdefault((s, dtype), torch.randn(s, dtype=dtype)) for s in shapes))
    product = {2: torch.mm, 3: torch.bmm}
    for a, b in operands:
        product[a.dim()](a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        for a, b in operands:
            product[a.dim()](a, b)
    return (time.perf_counter() - start) / repeats * 1e3


def profile_env(c: ProfileConfig) -> dict[str, float]:
    """ms per MT10 vector step (sub-envs stepped by the vector env with the one-hot wrapper, and bare), s per
    evaluation."""
    from mtpolicy_training.envs.metaworld import MetaWorldTaskSet  # imports Meta-World

    task_set = MetaWorldTaskSet.for_benchmark("MT10")
    start = time.perf_counter()
    env = TaskOneHotObservations(task_set.make_multitask_env(1, seed=0), task_set.task_indices(), task_set.n_tasks)
    out = {"env build (s)": time.perf_counter() - start}
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (c.env_steps + 10, 10, 4)).astype(np.float32)
    env.reset(seed=0)
    for a in actions[:10]:
        env.step(a)
    start = time.perf_counter()
    for a in actions[10:]:
        env.step(a)
    out["env step, 10 envs (ms)"] = (time.perf_counter() - start) / c.env_steps * 1e3
    start = time.perf_counter()
    for a in actions[10:]:
        for sub, action in zip(env.envs, a):
            *_, terminated, truncated, _ = sub.step(action)
            if terminated or truncated:
                sub.reset()
    out["  of which the 10 bare sub-env steps (ms)"] = (time.perf_counter() - start) / c.env_steps * 1e3
    if c.episodes:
        evaluation_env = env.env
        start = time.perf_counter()
        task_set.evaluate(lambda obs, tasks: rng.uniform(-1, 1, (len(obs), 4)), c.episodes,
                          envs=evaluation_env)
        out[f"evaluation, {c.episodes} episode(s) per task (s)"] = time.perf_counter() - start
    env.close()
    return out


def profile_method(name: FamilyMethod, precision: str, c: ProfileConfig) -> dict[str, float]:
    """ms of replay add/sample, act and one update (with parts) of one method, its products in ``precision``."""
    n, state, action = 10, 39, 4
    torch.manual_seed(0)
    method: SACFamily
    if name == "picor":  # on MTSAC's networks at their paper widths
        method = PiCor(SACFamilyConfig(method="mtsac"), PiCorConfig(), state, action, n, seed=0)
    else:
        method = SACFamily(SACFamilyConfig(method=name), state, action, n, seed=0)
    rng = np.random.default_rng(0)
    buffer = TaskReplayBuffer(50_000, state + n, action, 1, n)

    def step_fields() -> dict[str, np.ndarray]:
        obs = np.concatenate([rng.normal(size=(n, state)), np.eye(n)], 1).astype(np.float32)
        return {"obs": obs, "action": rng.uniform(-1, 1, (n, action)).astype(np.float32),
                "rewards": rng.normal(size=(n, 1)), "next_obs": obs, "terminated": np.zeros(n, bool),
                "truncated": np.zeros(n, bool), "task": np.arange(n)}
    steps = [step_fields() for _ in range(500)]
    start = time.perf_counter()
    for fields in steps:
        buffer.add(**fields)
    out = {"replay add, 10 transitions": (time.perf_counter() - start) / len(steps) * 1e3}
    gen = torch.Generator().manual_seed(0)
    batch_size = family_batch_size(name, c.batch_per_task, n)
    start = time.perf_counter()
    batches = [buffer.sample(batch_size, gen)[0] for _ in range(c.updates + 4)]
    out["replay sample"] = (time.perf_counter() - start) / len(batches) * 1e3
    start = time.perf_counter()
    for fields in steps[:200]:
        method.act(fields["obs"], 1.0)
    out["act, 10 observations"] = (time.perf_counter() - start) / 200 * 1e3
    update = method.update

    def update_in_precision(batch):  # every update below, as train_off_policy runs it
        with update_precision(precision):
            return update(batch)
    setattr(method, "update", update_in_precision)  # an instance attribute shadows the method (as Timers.wrap)
    for batch in batches[:3]:
        method.update(batch)
    timers = Timers()
    instrument(method, timers)
    before = resource.getrusage(resource.RUSAGE_SELF)
    start, cpu = time.perf_counter(), time.process_time()
    for batch in batches[3:3 + c.updates]:
        with timers("update"):
            method.update(batch)
    cpu_ms = (time.process_time() - cpu) / c.updates * 1e3
    after = resource.getrusage(resource.RUSAGE_SELF)
    parts = {k.removeprefix("update/"): v / c.updates * 1e3 for k, v in timers.totals.items()}
    out["update"] = parts.pop("update")
    top = [k for k in parts if "/" not in k]  # in the order they finish: update order
    for parent in top:
        out["  " + parent] = parts[parent]
        for k, v in parts.items():
            if k.startswith(parent + "/"):
                out["    " + k.replace("/", ": ")] = v
    out["  other (Polyak, bookkeeping)"] = out["update"] - sum(parts[k] for k in top)
    out["update, CPU time"] = cpu_ms
    out["  of which in the kernel"] = (after.ru_stime - before.ru_stime) / c.updates * 1e3
    out["update, page faults (count)"] = (after.ru_minflt - before.ru_minflt) / c.updates
    out["GEMM floor of the update"] = gemm_floor_ms(method, batches[-1])
    if c.op_table:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            method.update(batches[-1])
        print(f"{name}, {precision}:\n{prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=15)}")
    return out


def main(argv: list[str] | None = None) -> None:
    c = tyro.cli(ProfileConfig, args=argv)
    torch.set_num_threads(c.torch_threads)
    keep_freed_memory()  # as train_off_policy does
    load = os.getloadavg()[0]
    env = profile_env(c) if c.env_steps else {}
    columns = [(m, p) for m in c.methods for p in c.precisions]
    results = {f"{m} {p}" if len(c.precisions) > 1 else m: profile_method(m, p, c) for m, p in columns}
    if len(c.precisions) > 1:
        for (m, p), r in zip(columns, results.values()):
            r[f"update speed-up over {c.precisions[0]}"] = results[f"{m} {c.precisions[0]}"]["update"] / r["update"]
    rows: list[str] = []
    for r in results.values():  # union of the rows, each after the row it follows in some method
        for previous, k in zip([None, *r], r):
            if k not in rows:
                rows.insert(rows.index(previous) + 1 if previous in rows else len(rows), k)
    threads = "one torch thread" if c.torch_threads == 1 else f"{c.torch_threads} torch threads"
    lines = [f"| ms ({threads}) | {' | '.join(results)} |", "|---" * (len(results) + 1) + "|"]
    lines += [f"| {k} | " + " | ".join(f"{r[k]:.2f}" if k in r else "" for r in results.values()) + " |" for k in rows]
    if env:
        per_vector_step = {m: env["env step, 10 envs (ms)"] + r["act, 10 observations"]
                           + r["replay add, 10 transitions"] + r["replay sample"] + r["update"]
                           for m, r in results.items()}
        lines.append("| env steps/s (10 x 1000 / (env step + act + add + sample + update)) | "
                     + " | ".join(f"{10_000 / v:.1f}" for v in per_vector_step.values()) + " |")
        lines.append("| hours per 1M env steps, evaluation excluded | "
                     + " | ".join(f"{1e6 / (10_000 / v) / 3600:.2f}" for v in per_vector_step.values()) + " |")
    text = "\n".join([*(f"- {k.strip()}: {v:.2f}" for k, v in env.items()), "", *lines])
    note = (f"Batch {c.batch_per_task} x 10 (PiCor: of every task), paper widths (PiCor: 6 x 160), {c.updates} "
            "timed updates per method (PiCor's correction steps only on those where its constraint binds). "
            f"One process, {threads}, {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores shared "
            f"with other jobs (load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at the end), "
            f"torch {torch.__version__}, {cpu_description()}.")
    print(f"{text}\n\n{note}")
    if c.out_dir is not None:
        c.out_dir.mkdir(parents=True, exist_ok=True)
        command = "python -m benchmarks.sac_family_profile " + shlex.join(sys.argv[1:])
        (c.out_dir / "table.md").write_text(
            f"# SAC family on MT10: where the time goes (ms)\n\n{text}\n\n{note}\n\nReproduce:\n\n    {command}\n")


if __name__ == "__main__":
    main()
