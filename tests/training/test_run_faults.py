"""Fault injection on training runs: one test per defect of issue 43, each as a user met it.

A tiny reach training runs once; the tests damage its run directory, rerun
it, move it. Every test failed on the code before the fix. The defects of the
nodes: tests/ros/test_faults*.py.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

from helpers import REPO
from mtpolicy.policy import OnnxPolicy

TINY = ["--budget-steps", "640", "--loop.learning-starts", "320", "--loop.eval-every", "320",
        "--loop.checkpoint-every", "320", "--periodic-eval-episodes", "4", "--final-eval-episodes", "8",
        "--loop.batch-size", "32", "--no-progress"]
"""A reach training run of a few seconds (as in test_digrad)."""


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of a finished tiny reach training run."""
    from mtpolicy_training.train.cli import main

    out = tmp_path_factory.mktemp("finished_run")
    main(["digrad", "--out-dir", str(out), *TINY])
    return out


@pytest.fixture
def run_dir(finished_run: Path, tmp_path: Path) -> Iterator[Path]:
    """The finished run's directory, to damage in place (its command names it); restored after the test."""
    backup = Path(shutil.copytree(finished_run, tmp_path / "backup"))
    yield finished_run
    shutil.rmtree(finished_run)
    shutil.copytree(backup, finished_run)


def rerun(out: Path) -> str:
    """Run the finished run's command again (in this process); the error it exits with ('' if it does not)."""
    from mtpolicy_training.train.cli import main

    try:
        main(["digrad", "--out-dir", str(out), *TINY])
    except SystemExit as e:
        return str(e.code)
    return ""


def results(out: Path) -> tuple[bytes, bytes]:
    return (out / "policy.onnx").read_bytes(), (out / "eval.json").read_bytes()


def test_a_corrupted_checkpoint_is_refused_naming_it(run_dir):
    """Issue: 1 kB of garbage at 5 offsets of a checkpoint loaded without error every time."""
    out = run_dir
    ckpt = out / "checkpoint.pt"
    good, before = ckpt.read_bytes(), results(out)
    rng = np.random.default_rng(0)
    for fraction in (0.1, 0.3, 0.5, 0.7, 0.9):
        offset = int(fraction * (len(good) - 1024))
        ckpt.write_bytes(good[:offset] + rng.bytes(1024) + good[offset + 1024:])
        error = rerun(out)
        assert f"{ckpt}: corrupt checkpoint" in error and "\n" not in error, (fraction, error)
        assert results(out) == before


def test_a_rerun_never_replaces_a_good_policy_with_a_non_finite_one(run_dir):
    """Issue: rerunning a finished run from a bad checkpoint exited 0 and overwrote policy.onnx with a policy that
    outputs NaN, and eval.json. Here the checkpoint is intact (checksum included) but its weights are NaN, as
    after a diverged update."""
    from mtpolicy_training.core.run_record import save_checkpoint

    out = run_dir
    state = torch.load(out / "checkpoint.pt", weights_only=False)

    def poison(value):  # noqa: ANN001, ANN202
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return torch.full_like(value, math.nan)
        return {k: poison(v) for k, v in value.items()} if isinstance(value, dict) else value
    state["method"] = poison(state["method"])
    save_checkpoint(out / "checkpoint.pt", state)
    before = results(out)
    error = rerun(out)
    assert "refusing to export" in error and "non-finite weights" in error, error
    assert results(out) == before


def test_every_json_written_is_strict(finished_run, tmp_path):
    """Issue: eval.json held bare NaN (not JSON). A metric with no value is null."""
    from mtpolicy_training.core.run_record import write_eval

    def strict(text: str) -> dict:
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))

    write_eval(tmp_path / "eval.json", {"success_rate": 0.0, "time_to_reach_median": math.nan}, 1.0)
    assert strict((tmp_path / "eval.json").read_text())["time_to_reach_median"] is None
    for name in ("eval.json", "best_eval.json", "best.json", "config.json"):
        strict((finished_run / name).read_text())
    meta = OnnxPolicy(finished_run / "policy.onnx").session.get_modelmeta().custom_metadata_map
    strict(meta["metrics"])


def test_a_moved_run_directory_resumes(finished_run, tmp_path):
    """Issue: a moved or copied run directory could not be resumed (a traceback on ``out_dir``)."""
    moved = Path(shutil.copytree(finished_run, tmp_path / "moved"))
    assert rerun(moved) == ""
    assert json.loads((moved / "eval.json").read_text())["success_rate"] == \
        json.loads((finished_run / "eval.json").read_text())["success_rate"]


def test_a_negative_seed_is_refused_at_parse_time(tmp_path):
    """Issue: --seed -3 passed validation, crashed 23 s later and left an output directory."""
    out, train = tmp_path / "run", [sys.executable, "-m", "mtpolicy_training.train", "digrad"]
    r = subprocess.run([*train, "--seed", "-3", "--out-dir", str(out)], capture_output=True, text=True,
                       timeout=120, cwd=REPO)
    assert r.returncode == 2 and r.stderr.strip() == "error: --seed must be in [0, 2**32), got -3", r.stderr
    assert not out.exists()
    r = subprocess.run([*train, "--seed", "abc", "--out-dir", str(out)], capture_output=True, text=True,
                       timeout=120, cwd=REPO)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--seed" in r.stderr, r.stderr


def test_a_full_disk_while_writing_the_final_evaluation_is_one_line(tmp_path, monkeypatch):
    """Issue 49: a full disk while eval.json was written ended the run with a traceback. Every atomic write
    names its file in the OSError, and the training command prints it in one line with the space left."""
    from mtpolicy_training.core import files, run_record
    from mtpolicy_training.train.cli import main

    def full_for_eval(path: Path, text: str) -> None:
        if path.name != "eval.json":
            return files.write_atomically(path, text)
        with monkeypatch.context() as patch:  # the temporary file is /dev/full: ENOSPC when it is flushed
            patch.setattr(files.tempfile, "mkstemp", lambda dir, suffix: (os.open("/dev/full", os.O_WRONLY),
                                                                          str(Path(dir) / "eval.tmp")))
            return files.write_atomically(path, text)
    monkeypatch.setattr(run_record, "write_atomically", full_for_eval)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exited:
        main(["digrad", "--out-dir", str(out), *TINY])
    error = str(exited.value.code)
    assert error.startswith(f"error: cannot write {out / 'eval.json'}: No space left on device (") and \
        " MB free on " in error and "\n" not in error, error
    assert not (out / "eval.json").exists() and not list(out.glob("*.tmp"))


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_previous_checkpoint(run_dir, tmp_path,
                                                                                        monkeypatch):
    """Issue 49: ENOSPC while a checkpoint was written ended the run with a torch traceback ("unexpected pos").
    The kernel's ENOSPC (the temporary file a link to /dev/full) and an OSError from the checksum write: one line
    naming the checkpoint and the free space; the previous checkpoint and its sidecar unchanged and loadable; no
    temporary file left. Then the same through the training command, on a fresh run's first checkpoint."""
    from mtpolicy_training.core import run_record
    from mtpolicy_training.core.run_record import RunRefused, checksum_path, load_checkpoint, save_checkpoint

    ckpt = run_dir / "checkpoint.pt"
    files = {p: p.read_bytes() for p in (ckpt, checksum_path(ckpt))}
    state = load_checkpoint(ckpt)
    ckpt.with_suffix(".tmp").symlink_to("/dev/full")
    with pytest.raises(RunRefused) as refused:
        save_checkpoint(ckpt, state)
    message = str(refused.value)
    assert message.startswith(f"cannot write {ckpt}: No space left on device (") and " MB free on " in message \
        and message.endswith("; the previous checkpoint is kept") and "\n" not in message, message

    def disk_full(path, text):  # noqa: ANN001, ANN202
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    with monkeypatch.context() as patch:
        patch.setattr(run_record, "write_atomically", disk_full)
        with pytest.raises(RunRefused, match="No space left on device"):
            save_checkpoint(ckpt, state)
    assert {p: p.read_bytes() for p in files} == files
    assert sorted(p.name for p in run_dir.glob("checkpoint*")) == ["checkpoint.pt", "checkpoint.pt.sha256"]
    assert load_checkpoint(ckpt)["step"] == state["step"]

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "checkpoint.tmp").symlink_to("/dev/full")
    error = rerun(fresh)
    assert error.startswith(f"error: cannot write {fresh / 'checkpoint.pt'}: No space left on device") and \
        error.endswith("; no checkpoint written") and "\n" not in error, error



class FillingDisk(io.FileIO):
    """A file on a disk with ``room`` bytes left: the write that crosses it writes what fits (a short write), the
    next one fails with ENOSPC, as the kernel does."""

    def __init__(self, path: Path, room: int):
        super().__init__(path, "wb")
        self.room = room

    def write(self, data) -> int:  # noqa: ANN001 - any bytes-like object
        left = self.room - self.tell()
        if left <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(memoryview(data)[:left])


def fill_the_disk(monkeypatch: pytest.MonkeyPatch, room: int, from_write: int = 1) -> None:
    """Have the checkpoints ``run_record`` writes from its ``from_write``-th on go to a disk with ``room`` bytes
    left (``FillingDisk``)."""
    from mtpolicy_training.core import run_record

    writes = []

    def open_checkpoint(path, mode="r", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        writes.append(path)
        if len(writes) < from_write:
            return open(path, mode, *args, **kwargs)
        return io.BufferedWriter(FillingDisk(path, room))
    monkeypatch.setattr(run_record, "open", open_checkpoint, raising=False)


def test_a_disk_filling_up_during_a_checkpoint_is_one_line_and_the_run_resumes(run_dir, monkeypatch):
    """Issue 62: a disk that fills up part of the way through a checkpoint (the kernel's short write, then ENOSPC)
    reached torch's zip writer as a RuntimeError ("unexpected pos"): a torch traceback, and checkpoint.tmp left
    behind. Now: one line naming the checkpoint and "No space left on device"; no temporary file; the previous
    checkpoint intact and loadable; the run, rerun once there is room, resumes from it."""
    from mtpolicy_training.core.run_record import RunRefused, checksum_path, load_checkpoint, save_checkpoint

    ckpt = run_dir / "checkpoint.pt"
    kept = {p: p.read_bytes() for p in (ckpt, checksum_path(ckpt))}
    state = load_checkpoint(ckpt)
    with monkeypatch.context() as patch:
        fill_the_disk(patch, room=len(kept[ckpt]) // 2)
        with pytest.raises(RunRefused) as refused:
            save_checkpoint(ckpt, state)
    message = str(refused.value)
    assert message.startswith(f"cannot write {ckpt}: No space left on device (") and "\n" not in message \
        and message.endswith("; the previous checkpoint is kept"), message
    assert {p: p.read_bytes() for p in kept} == kept
    assert sorted(p.name for p in run_dir.glob("checkpoint*")) == ["checkpoint.pt", "checkpoint.pt.sha256"]

    # Through the training command: the run's first checkpoint (step 320) written, the disk full at the second.
    out = run_dir.parent / "filling"
    with monkeypatch.context() as patch:
        fill_the_disk(patch, room=4096, from_write=2)
        error = rerun(out)
    assert error.startswith(f"error: cannot write {out / 'checkpoint.pt'}: No space left on device (") and \
        error.endswith("; the previous checkpoint is kept") and "\n" not in error, error
    assert not list(out.glob("*.tmp")) and load_checkpoint(out / "checkpoint.pt")["step"] == 320
    assert rerun(out) == "" and load_checkpoint(out / "checkpoint.pt")["step"] == 640
