"""The test suite in three tiers: a folder each, and a marker each that this file gives every test by its folder.

- ``tests/unit`` (marker ``unit``): the runtime (``mtpolicy``): its numpy, MuJoCo and onnxruntime logic, configs
  and one-line errors; no ROS process and no import of the training package, so it runs without the training
  extra (torch, gymnasium, metaworld). One exception: ``unit/test_one_word_per_thing.py`` reads the training commands'
  ``--help`` in one test, skipped without the extra.
- ``tests/training`` (``training``): the training package (``mtpolicy_training``) and the benchmarks: its envs,
  task sets and evaluators, runs that train, export or resume, the harness grid.
- ``tests/ros`` (``ros``): DDS nodes as processes, launch files under both launchers, the demo, own robots
  served over DDS, fault injection, ``launch_test`` on a colcon build (``tests/ros/ros2_launch``). Its fixtures
  (a private DDS domain per test, processes, monitors) are in ``tests/ros/conftest.py``.

``make test`` runs every tier (the README's and CI's command); one tier or a mix with ``-m``, e.g.
``make test ARGS='-m unit'``, ``ARGS='-m "not ros"'``, or a folder: ``pytest tests/training``. A test file
outside the three folders is a collection error. Helpers the modules import are in ``tests/helpers.py``;
robot files the tests use are in ``tests/fixtures``.

Tests wait on events; the few deadlines that cannot be events (how long a goal set is held) go through
``helpers.scaled``. Without the training extra (torch, gymnasium, metaworld: e.g. ``colcon test`` on a robot
computer), test modules that import it at the top are skipped, saying so, and the runtime and ROS tests run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is first imported

import mtpolicy.robots.manifest as manifests
from helpers import REPO, make_fixture_policy
from mtpolicy.robots import ROBOTS_DIR, RobotSpec, load_robot, shipped_robots

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "training", "ros")
"""The tier folders under tests/, each also the marker of its tests (registered in pytest.ini)."""
TRAINING_MISSING = [m for m in ("torch", "gymnasium", "metaworld") if importlib.util.find_spec(m) is None]
_TRAINING_IMPORT = re.compile(r"^(?:from|import)\s+(?:mtpolicy_training|torch|gymnasium|metaworld)\b", re.M)
_LOCAL_IMPORT = re.compile(r"^from\s+(\w+)\s+import\b", re.M)


class NeedsTraining(pytest.Module):
    """A test module that imports the training extra on a machine without it: reported as skipped."""

    def collect(self):  # noqa: ANN201
        pytest.skip(f"needs the training extra (missing: {', '.join(TRAINING_MISSING)}; pip install -e '.[train]')")


def imports_training(module_path: Path) -> bool:
    """Whether a test module imports the training extra at its top, itself or through a module of the tests it
    imports (``from helpers import ...``)."""
    text = module_path.read_text()
    local = [folder / f"{name}.py" for name in _LOCAL_IMPORT.findall(text) for folder in (module_path.parent, TESTS)]
    return bool(_TRAINING_IMPORT.search(text)) or any(imports_training(path) for path in local if path.is_file())


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if TRAINING_MISSING and imports_training(module_path):
        return NeedsTraining.from_parent(parent, path=module_path)
    return None


def tier(path: Path) -> str | None:
    """The tier of a test file: its folder under tests/ (None outside tests/ or the tier folders)."""
    path = path.resolve()  # colcon runs the suite through the ros2_ws/src/mtpolicy link
    parts = path.relative_to(TESTS).parts if path.is_relative_to(TESTS) else ()
    return parts[0] if len(parts) > 1 and parts[0] in TIERS else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test gets its tier's marker; a test file under tests/ but in no tier stops the run, naming it."""
    in_tests = [item for item in items if item.path.resolve().is_relative_to(TESTS)]
    untiered = sorted({item.nodeid.split("::")[0] for item in in_tests if tier(item.path) is None})
    if untiered:
        raise pytest.UsageError(f"test file(s) in no tier: {', '.join(untiered)}; move each to tests/unit, "
                                "tests/training or tests/ros (tests/conftest.py says which is which)")
    for item in in_tests:
        item.add_marker(tier(item.path))


@pytest.fixture(scope="session")
def planar8() -> RobotSpec:
    return load_robot("planar8")


@pytest.fixture(scope="session")
def humanoid() -> RobotSpec:
    return load_robot("humanoid")


@pytest.fixture(scope="session")
def fixture_model(tmp_path_factory: pytest.TempPathFactory, planar8: RobotSpec) -> Path:
    return make_fixture_policy(tmp_path_factory.mktemp("models") / "planar8_fixture.onnx", planar8)


@pytest.fixture
def arm3_shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The robots folder with the fixture robot arm3 put beside the shipped folders (``manifests.ROBOTS_DIR``
    pointed at a copy of links), as a user adds a robot; the shipped names before it."""
    robots = tmp_path / "robots"
    robots.mkdir()
    shipped = shipped_robots()
    for name in shipped:
        (robots / name).symlink_to(ROBOTS_DIR / name)
    shutil.copytree(REPO / "tests" / "fixtures" / "robots" / "arm3", robots / "arm3")
    monkeypatch.setattr(manifests, "ROBOTS_DIR", robots)
    return shipped
