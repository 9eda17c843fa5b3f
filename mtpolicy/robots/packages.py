"""``package://NAME/PATH`` asset references: resolved through the ROS package path, else an installed Python package.

ROS robot descriptions name their meshes ``package://NAME/PATH``. Here NAME is found, in this order:

1. ``ROS_PACKAGE_PATH`` (``:``-separated): an entry that is package NAME itself, or a folder holding it (searched
   a few levels deep); a package is a folder with a ``package.xml`` whose ``<name>`` is NAME (ROS 1 style);
2. ``AMENT_PREFIX_PATH`` (``:``-separated install prefixes, ROS 2): ``PREFIX/share/NAME``;
3. an installed Python package NAME (e.g. ``robosuite``, whose MJCF robots ship their meshes): its folder, found
   without importing it.

The vendor robots this package ships reference the meshes of the robosuite wheel as ``package://robosuite/...``,
so the meshes stay in the installed wheel (a dependency) instead of being copied here.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SCHEME = "package://"
_SEARCH_DEPTH = 4
"""How many folder levels below a ROS_PACKAGE_PATH entry packages are searched for."""


class PackageNotFound(LookupError):
    """A ``package://`` reference names a package found on none of the search paths."""


def is_package_uri(text: str) -> bool:
    return text.startswith(SCHEME)


def _package_name(folder: Path) -> str | None:
    try:
        name = ET.parse(folder / "package.xml").getroot().findtext("name")
    except (OSError, ET.ParseError):
        return None
    return name.strip() if name else None


def search_path() -> tuple[str, str]:
    """Where ``package://`` URIs are looked up beside Python packages: ROS_PACKAGE_PATH and AMENT_PREFIX_PATH."""
    return os.environ.get("ROS_PACKAGE_PATH", ""), os.environ.get("AMENT_PREFIX_PATH", "")


def _ros_package_path(name: str) -> Path | None:
    return _ros_package_path_in(name, *search_path())


@functools.lru_cache(maxsize=256)
def _ros_package_path_in(name: str, ros_package_path: str, ament_prefix_path: str) -> Path | None:
    for entry in filter(None, ros_package_path.split(os.pathsep)):
        top = Path(entry)
        for folder, dirs, files in os.walk(top):
            depth = len(Path(folder).relative_to(top).parts)
            if "package.xml" in files:
                dirs.clear()  # packages do not nest
                if _package_name(Path(folder)) == name:
                    return Path(folder)
            elif depth >= _SEARCH_DEPTH:
                dirs.clear()
    for prefix in filter(None, ament_prefix_path.split(os.pathsep)):
        share = Path(prefix) / "share" / name
        if share.is_dir():
            return share
    return None


def _python_package_path(name: str) -> Path | None:
    if not name.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations or spec.origin is None:  # no module, namespace package
        return None
    return Path(spec.origin).parent


INSTALL_HINTS = {"robosuite": "pip install --no-deps robosuite==1.5.2, as make setup does"}
"""How to get a package the shipped robots' meshes come from."""


def package_path(name: str) -> Path:
    """The folder of package ``name`` (see the module docstring); PackageNotFound says where it looked."""
    found = _ros_package_path(name) or _python_package_path(name)
    if found is None:
        raise PackageNotFound(f"package {name!r} not found on ROS_PACKAGE_PATH "
                              f"({os.environ.get('ROS_PACKAGE_PATH') or 'unset'}), in AMENT_PREFIX_PATH's share "
                              f"folders ({os.environ.get('AMENT_PREFIX_PATH') or 'unset'}) nor as a Python package"
                              + (f" ({INSTALL_HINTS[name]})" if name in INSTALL_HINTS else ""))
    return found


def resolve(uri: str) -> Path:
    """The file a ``package://NAME/PATH`` reference names; PackageNotFound (one line) when NAME or PATH is missing."""
    name, _, rest = uri[len(SCHEME):].partition("/")
    try:
        path = package_path(name) / rest
    except PackageNotFound as e:
        raise PackageNotFound(f"{uri}: {e}") from None
    if not path.exists():
        raise PackageNotFound(f"{uri}: no file {path}")
    return path


def uri_for(path: str | Path) -> str | None:
    """A ``package://`` reference to ``path`` if it lies inside a ROS package (a parent folder with a package.xml)
    or an installed Python package, found again by ``resolve``; None otherwise."""
    path = Path(path).resolve()
    for parent in path.parents:
        name = _package_name(parent) if (parent / "package.xml").is_file() else None
        if name and _ros_package_path(name) == parent:
            return f"{SCHEME}{name}/{path.relative_to(parent).as_posix()}"
    for entry in sys.path:
        try:
            top = path.relative_to(Path(entry or ".").resolve()).parts[0]
        except (ValueError, IndexError):
            continue
        root = _python_package_path(top)
        if root is not None and path.is_relative_to(root.resolve()):
            return f"{SCHEME}{top}/{path.relative_to(root.resolve()).as_posix()}"
    return None
