"""Running a grid: every cell not finished yet, in a local process pool or on a Ray cluster, each once the cells
it reads have finished; then the report."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import multiprocessing
import socket
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable

import torch

from mtpolicy.integrity import strict_json
from benchmarks.harness.grid import Cell, GridSpec, sibling_cell_dir
from benchmarks.harness.registry import METHODS, same_overrides
from benchmarks.harness.report import summarize
from mtpolicy_training.core.files import write_new_file


def lock_grid(spec: GridSpec) -> None:
    """A grid folder holds runs of one budget and one set of overrides: refuse to mix others in."""
    path = spec.grid_dir / "grid.json"
    fixed = {"budget_steps": spec.budget_steps, "overrides": spec.overrides}
    if path.exists():
        before = json.loads(path.read_text())
        same = {"budget_steps": lambda budget: budget, "overrides": same_overrides}
        bad = [f"{k}: {fixed[k]} differs from {before[k]} of the runs in {spec.grid_dir}" for k in fixed
               if same[k](before[k]) != same[k](fixed[k])]
        if bad:
            raise ValueError("; ".join(bad) + " (use another --name)")
    write_new_file(path, strict_json(fixed, indent=2))  # a second driver on the grid may be reading it


RESULT_FILES = ("eval.json", "metrics.csv")


def run_cell(method: str, task_set: str, seed: int, budget_steps: int, out_dir: Path,
             overrides: dict[str, str]) -> dict:
    """Train one cell in this process (a pool worker or a Ray task), its output to ``train.log``.

    Returns the result files' text too, so a driver that does not share the
    worker's filesystem (a multi-node Ray cluster) still gets them, and whether
    the cell resumed from a checkpoint: its wall time then covers only the
    steps after it.
    """
    torch.set_num_threads(1)
    out_dir.mkdir(parents=True, exist_ok=True)
    resumed = (out_dir / "checkpoint.pt").exists()
    t0 = time.perf_counter()
    inputs = {m: sibling_cell_dir(out_dir, m) for m in METHODS[method].after}
    with (out_dir / "train.log").open("a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        METHODS[method].train(task_set, seed, budget_steps, out_dir, overrides, inputs)
    return {"wall_seconds": time.perf_counter() - t0, "resumed_from_checkpoint": resumed, "host": socket.gethostname(),
            "files": {f: (out_dir / f).read_text() for f in RESULT_FILES}}


def finish_cell(spec: GridSpec, cell: Cell, result: dict) -> None:
    """Write the cell's results where the driver keeps them, then ``cell.json``: the cell is done."""
    out = cell.dir(spec.grid_dir.resolve())
    out.mkdir(parents=True, exist_ok=True)
    for name, text in result["files"].items():
        if not (out / name).exists():
            (out / name).write_text(text)
    done = {**dataclasses.asdict(cell), "budget_steps": spec.budget_steps, "overrides": spec.overrides,
            **{k: v for k, v in result.items() if k != "files"}}  # wall time, whether resumed, host
    (out / "cell.json").write_text(strict_json(done, indent=2))


def run_cells(spec: GridSpec, cells: list[Cell]) -> list[str]:
    """Run cells in the local pool or on Ray, each once the cells it reads have finished; returns a line per
    failed cell."""
    grid_dir = spec.grid_dir.resolve()
    failures: list[str] = []
    failed: set[Cell] = set()

    def job(cell: Cell) -> tuple:
        overrides = spec.override_dict | {"loop.torch_threads": str(spec.threads_per_cell)}
        return cell.method, cell.task_set, cell.seed, spec.budget_steps, cell.dir(grid_dir), overrides

    def collect(i: int, cell: Cell, get: Callable[[], dict]) -> None:
        try:
            result = get()
        except Exception as e:  # a failed cell does not stop the others
            failed.add(cell)
            failures.append(f"{cell}: {type(e).__name__}: {e} (log: {cell.dir(grid_dir) / 'train.log'})")
            print(f"[{i}/{len(cells)}] FAILED {cell.method} {cell.task_set} seed {cell.seed}", flush=True)
            return
        finish_cell(spec, cell, result)
        print(f"[{i}/{len(cells)}] done {cell.method} {cell.task_set} seed {cell.seed} in "
              f"{result['wall_seconds']:.0f} s on {result['host']}", flush=True)

    def schedule(submit: Callable[[Cell], object], wait_one: Callable[[list], tuple[object, Callable[[], dict]]]):
        waiting, ended = list(cells), 0
        running: dict[object, Cell] = {}  # a pool's handle -> its cell
        while waiting or running:
            for cell in list(waiting):
                if blocked := [c for c in cell.needs() if c in failed]:
                    waiting.remove(cell)
                    failed.add(cell)
                    failures.append(f"{cell}: not run, it reads the failed cell(s) {blocked}")
                elif all((c.dir(grid_dir) / "cell.json").exists() for c in cell.needs()):
                    waiting.remove(cell)
                    running[submit(cell)] = cell
            if not running:  # validate() keeps a cell's needs in the grid, so this is a safeguard
                failures.extend(f"{cell}: not run, the cells it reads are neither finished nor in this run"
                                for cell in waiting)
                break
            handle, get = wait_one(list(running))
            ended += 1
            collect(ended, running.pop(handle), get)

    if spec.ray is None:
        with ProcessPoolExecutor(spec.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            def wait_one(futures: list) -> tuple:
                future = next(iter(wait(futures, return_when=FIRST_COMPLETED).done))
                return future, future.result

            schedule(lambda cell: pool.submit(run_cell, *job(cell)), wait_one)
        return failures

    import ray

    ray.init(address=spec.ray)
    try:
        task = ray.remote(num_cpus=spec.threads_per_cell)(run_cell)

        def ray_wait_one(refs: list) -> tuple:
            [ref], _ = ray.wait(refs, num_returns=1)
            return ref, functools.partial(ray.get, ref)

        schedule(lambda cell: task.remote(*job(cell)), ray_wait_one)
    finally:
        ray.shutdown()  # disconnects this driver; the cluster keeps running
    return failures


def run_grid(spec: GridSpec) -> str:
    """Validate, run the cells not yet finished, aggregate; returns the markdown table."""
    spec.validate()
    lock_grid(spec)
    cells = spec.cells()
    todo = [c for c in cells if not (c.dir(spec.grid_dir) / "cell.json").exists()]
    where = f"Ray at {spec.ray}" if spec.ray else f"a local pool of {spec.workers}"
    print(f"{spec.grid_dir}: {len(cells) - len(todo)} of {len(cells)} cells finished; running {len(todo)} on "
          f"{where}, {spec.threads_per_cell} torch thread(s) per cell", flush=True)
    failures = run_cells(spec, todo) if todo else []
    if failures:
        raise RuntimeError(f"{len(failures)} cell(s) failed:\n" + "\n".join(failures))
    return summarize(spec.whole())
