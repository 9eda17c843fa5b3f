"""Import a vendor robot model (MJCF or URDF) as a robot folder this stack serves: ``mtpolicy import-robot``.

Vendor models are written for torque control, often on a floating base, without end-effector sites or a home
pose. ``import_robot`` writes a robot folder (``robot.xml``, ``scene.xml``, ``robot.yaml``) from one:

* every actuated joint (an MJCF's actuators, whatever their kind; a URDF's revolute, continuous and prismatic
  joints) gets a velocity servo whose ``ctrlrange`` is the joint's velocity limit: given (``velocity``) or the
  URDF's ``<limit velocity>``; an MJCF states none, and a torque motor's ``ctrlrange`` is never taken for one. Its
  ``forcerange`` is the effort limit: given, the URDF's ``<limit effort>``, or the vendor actuator's force range
  (a motor's ``ctrlrange`` times its gear). Its gain ``kv`` tracks: time constant ``servo_time_constant`` at home
  (``M_jj / kv``), steady state >= 95 % against the joint's damping. Implausible limits are refused in one line
  (``manifest.PLAUSIBLE_LIMITS``); velocity, acceleration and effort limits are written to the manifest;
* a floating base (free joint) is removed: the robot is fixed to the world where its model places it, and joints
  on no end effector's chain (legs, head) are held; a root body carrying another joint is put in a joint-less one;
* a ``home`` keyframe: the vendor's keyframe ``home_keyframe``, else each joint's zero moved 5 % of its range inside
  its limits, then the joints ``home`` gives;
* end effectors by name: a site, or a body, which gets a site of its name at its origin;
* collisions: the vendor's geoms, contact pairs and excludes are kept; body pairs already in contact at home (the
  model's own overlaps) are excluded, named in the notes;
* gravity compensation on every body (a real arm's joint controllers compensate gravity), the implicit-fast
  integrator (stiff servos need it);
* meshes and textures inside a package (a ROS package, or a Python one such as robosuite) are referenced as
  ``package://NAME/PATH`` (``mtpolicy.robots.packages``), so the package stays a dependency; others are copied
  into the folder's ``assets/``.

Then ``load_robot(folder)`` checks the result as it checks every robot.
"""

from __future__ import annotations

import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from mtpolicy.robots import RobotSpecError, load_robot, packages
from mtpolicy.robots.mjcf import URDF_MOVABLE, urdf_spec
from mtpolicy.robots.manifest import DEFAULT_REACH_TOLERANCE, MANIFEST, implausible_limit

SERVO_TIME_CONSTANT = 0.004
"""s: the imported velocity servos' time constant at home (below ``SERVO_TIME_CONSTANT_MAX``, 10 ms)."""
COMMAND_PREFIX = "made by: "
"""Start of the manifest's header line that holds the command which wrote the folder."""
HOME_MARGIN = 0.05
"""Fraction of a joint's range that a default home position keeps off its limits."""

class RobotImportError(RobotSpecError):
    """The vendor model cannot be imported as given; the message says what to give."""


@dataclass(frozen=True)
class ImportedRobot:
    folder: Path
    """The robot folder written."""
    servos: tuple[str, ...]
    """Joints given a velocity servo, in actuator order."""
    notes: tuple[str, ...]
    """What the import changed in the vendor's model, one line each."""
    seconds: float
    """Time the import took."""


def _per_joint(value, joints: list[str], kind: str) -> dict[str, float | None]:
    """A limit given as one number (every joint), a mapping joint -> number ('*': the others), or None."""
    if value is None:
        return {j: None for j in joints}
    if isinstance(value, (int, float)):
        return {j: float(value) for j in joints}
    unknown = sorted(set(value) - set(joints) - {"*"})
    if unknown:
        raise RobotImportError(f"{kind} given for {unknown}: not actuated joints of the model ({joints})")
    return {j: (None if value.get(j, value.get("*")) is None else float(value.get(j, value.get("*"))))
            for j in joints}


def _worldbody(root: ET.Element) -> ET.Element:
    """The <worldbody> of an MJCF MuJoCo wrote (it always writes one)."""
    world = root.find("worldbody")
    assert world is not None, "an MJCF from MuJoCo has a <worldbody>"
    return world


def _vendor_limits(source: Path, model: mujoco.MjModel, urdf: bool) -> tuple[list[str], dict, dict]:
    """The actuated joints (actuator order; URDF: joint order) and their vendor velocity and effort limits."""
    velocity: dict[str, tuple[float, str]] = {}
    effort: dict[str, tuple[float, str]] = {}
    joints: list[str] = []
    if urdf:
        for joint in ET.parse(source).getroot().iter("joint"):
            if joint.get("type") not in URDF_MOVABLE or joint.find("mimic") is not None:
                continue
            name = joint.attrib["name"]  # MuJoCo compiled this URDF: its joints have names
            joints.append(name)
            limit = joint.find("limit")
            for key, out in (("velocity", velocity), ("effort", effort)):
                value = None if limit is None else limit.get(key)
                if value is not None and float(value) > 0:
                    out[name] = (float(value), f"URDF <limit {key}>")
        return joints, velocity, effort
    for a in range(model.nu):
        if model.actuator_trntype[a] != mujoco.mjtTrn.mjTRN_JOINT:
            continue
        j = int(model.actuator_trnid[a, 0])
        if model.jnt_type[j] not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
            continue
        name, gear = model.joint(j).name, abs(model.actuator_gear[a, 0])
        joints.append(name)
        motor = (model.actuator_gaintype[a] == mujoco.mjtGain.mjGAIN_FIXED
                 and model.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_NONE)
        if model.actuator_forcelimited[a]:
            effort[name] = (min(-model.actuator_forcerange[a, 0], model.actuator_forcerange[a, 1]),
                            f"actuator {model.actuator(a).name!r} forcerange")
        elif motor and model.actuator_ctrllimited[a]:
            effort[name] = (gear * model.actuator_gainprm[a, 0] * min(-model.actuator_ctrlrange[a, 0],
                                                                      model.actuator_ctrlrange[a, 1]),
                            f"motor {model.actuator(a).name!r} ctrlrange x gear")
        elif model.jnt_actfrclimited[j]:
            effort[name] = (min(-model.jnt_actfrcrange[j, 0], model.jnt_actfrcrange[j, 1]), "actuatorfrcrange")
    return list(dict.fromkeys(joints)), velocity, effort


def _limits(source: Path, model: mujoco.MjModel, joints: list[str], vendor_velocity: dict, vendor_effort: dict,
            velocity, acceleration, effort) -> dict[str, dict[str, float]]:
    """joint -> {velocity, acceleration, effort} (the given ones before the vendor's), each plausible."""
    given = {"velocity": _per_joint(velocity, joints, "velocity"),
             "acceleration": _per_joint(acceleration, joints, "acceleration"),
             "effort": _per_joint(None if effort == "none" else effort, joints, "effort")}
    missing = [j for j in joints if given["velocity"][j] is None and j not in vendor_velocity]
    if missing:
        raise RobotImportError(f"{source.name}: no velocity limit for {missing} (an MJCF states none, and a torque "
                               "motor's ctrlrange is none): give the vendor's, --velocity V or --velocity JOINT=V")
    out: dict[str, dict[str, float]] = {j: {} for j in joints}
    for j in joints:
        slide = model.jnt_type[model.joint(j).id] == mujoco.mjtJoint.mjJNT_SLIDE
        for kind, vendor in (("velocity", vendor_velocity), ("acceleration", {}),
                             ("effort", {} if effort == "none" else vendor_effort)):
            value, origin = (given[kind][j], "given") if given[kind][j] is not None else vendor.get(j, (None, ""))
            if value is None:
                continue
            problem = implausible_limit(kind, value, slide)
            if problem:
                hint = "" if origin == "given" else f" (from the {origin}); give --{kind} {j}=VALUE" + \
                    (" or --effort none" if kind == "effort" else "")
                raise RobotImportError(f"{source.name}: joint {j!r}: {problem}{hint}")
            out[j][kind] = float(value)
    return out


def _load_vendor(source: Path) -> tuple[mujoco.MjSpec, bool]:
    """The vendor model as an MjSpec whose asset files are absolute paths (so it compiles from a string)."""
    urdf = source.suffix.lower() == ".urdf"
    spec = urdf_spec(source) if urdf else mujoco.MjSpec.from_file(str(source))
    if urdf:
        spec.compiler.fusestatic = False  # every link stays a body (an end effector may be one)
        spec.compiler.discardvisual = False
    for assets, folder in ((spec.meshes, spec.meshdir), (spec.textures, spec.texturedir)):
        for asset in assets:
            if asset.file and packages.is_package_uri(asset.file):
                asset.file = str(packages.resolve(asset.file))
            elif asset.file:
                asset.file = str((source.parent / folder / asset.file).resolve())
    spec.meshdir = spec.texturedir = ""
    return spec, urdf


def _unique(root: ET.Element, tag: str, name: str) -> str:
    taken = {e.get("name") for e in root.iter(tag)}
    return next(n for n in (name, f"{name}_mount", *(f"{name}_mount{i}" for i in range(2, 99))) if n not in taken)


def _remove(root: ET.Element, names: list[str], notes: list[str]) -> None:
    """Remove the bodies (with their subtrees) and geoms ``names``, and the contact pairs and excludes naming them."""
    parents = {child: parent for parent in root.iter() for child in parent}
    found = {e.get("name"): e for e in _worldbody(root).iter() if e.tag in ("body", "geom") and e.get("name")}
    missing = sorted(set(names) - set(found))
    if missing:
        raise RobotImportError(f"--remove {missing}: no body or geom of that name")
    gone = set()
    for name in names:
        gone |= {e.get("name") for e in found[name].iter("body")} | {name}
        parents[found[name]].remove(found[name])
    for contact in root.findall("contact"):
        for element in [e for e in contact if {e.get(k) for k in ("body1", "body2", "geom1", "geom2")} & gone]:
            contact.remove(element)
    notes.append(f"removed {names} (and what hangs from them)")


def _fix_base(root: ET.Element, notes: list[str]) -> None:
    """Remove free joints; put a root body whose subtree is actuated and that carries a joint inside a joint-less
    one."""
    world = _worldbody(root)
    actuated = {a.get("joint") for a in root.iter("velocity")}
    for body in world.iter("body"):
        for joint in [*body.findall("freejoint"), *body.findall("joint[@type='free']")]:
            body.remove(joint)
            notes.append(f"floating base: free joint of body {body.get('name')!r} removed, the robot is fixed to the "
                         "world where its model places it (joints on no end effector's chain, e.g. legs, are held)")
    for i, body in enumerate(list(world.findall("body"))):
        if body.find("joint") is not None and any(j.get("name") in actuated for j in body.iter("joint")):
            mount = ET.Element("body", name=_unique(root, "body", "base"))
            world.remove(body)
            mount.append(body)
            world.insert(i, mount)
            notes.append(f"root body {body.get('name')!r} carries a joint: put inside joint-less body "
                         f"{mount.get('name')!r}")


def _end_effector_sites(root: ET.Element, end_effectors: list[str], notes: list[str]) -> None:
    sites = {s.get("name") for s in root.iter("site")}
    bodies = {b.get("name"): b for b in _worldbody(root).iter("body")}
    for ee in end_effectors:
        if ee in sites:
            continue
        if ee not in bodies:
            raise RobotImportError(f"end effector {ee!r} is neither a site nor a body of the model (bodies: "
                                   f"{sorted(filter(None, bodies))})")
        bodies[ee].insert(0, ET.Element("site", name=ee, pos="0 0 0", size="0.015", group="2",
                                        rgba="0.9 0.4 0.1 1", type="sphere"))
        notes.append(f"end effector {ee!r}: a site added at the origin of body {ee!r}")


def _home(model: mujoco.MjModel, vendor: mujoco.MjModel, home: dict[str, float], keyframe: str | None) -> np.ndarray:
    """qpos of the home keyframe (see the module docstring)."""
    source = {}
    if keyframe is not None:
        k = mujoco.mj_name2id(vendor, mujoco.mjtObj.mjOBJ_KEY, keyframe)
        if k < 0:
            raise RobotImportError(f"no keyframe {keyframe!r} in the vendor model")
        source = {vendor.joint(j).name: vendor.key_qpos[k, vendor.jnt_qposadr[j]] for j in range(vendor.njnt)
                  if vendor.jnt_type[j] in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)}
    unknown = sorted(set(home) - {model.joint(j).name for j in range(model.njnt)})
    if unknown:
        raise RobotImportError(f"home given for {unknown}: not joints of the model")
    qpos = model.qpos0.copy()
    for j in range(model.njnt):
        name, adr = model.joint(j).name, model.jnt_qposadr[j]
        if model.jnt_type[j] not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
            continue
        q = source.get(name, qpos[adr])
        if model.jnt_limited[j]:
            lo, hi = model.jnt_range[j]
            q = np.clip(q, lo + HOME_MARGIN * (hi - lo), hi - HOME_MARGIN * (hi - lo))
            if name in home and not lo <= home[name] <= hi:
                raise RobotImportError(f"home {home[name]} of {name!r} is outside its range [{lo:g}, {hi:g}]")
        qpos[adr] = home.get(name, q)
    return qpos


def _contacts_at(model: mujoco.MjModel, qpos: np.ndarray) -> set[tuple[str, str]]:
    """Body pairs (names) of the robot in penetrating contact at qpos."""
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_forward(model, data)
    pairs = set()
    for c in data.contact[:data.ncon]:
        b1, b2 = model.geom_bodyid[c.geom1], model.geom_bodyid[c.geom2]
        if c.dist < 0 and b1 > 0 and b2 > 0:
            pairs.add(tuple(sorted((model.body(b1).name, model.body(b2).name))))
    return pairs


def _write_assets(root: ET.Element, out: Path, notes: list[str]) -> None:
    """Asset files as package:// references where inside a package, else copied into ``out/assets``."""
    copied = 0
    for element in [*root.iter("mesh"), *root.iter("texture")]:
        file = element.get("file")
        if not file:
            continue
        uri = packages.uri_for(file)
        if uri is None:
            (out / "assets").mkdir(exist_ok=True)
            target = out / "assets" / Path(file).name
            shutil.copyfile(file, target)
            copied += target.stat().st_size
            uri = f"assets/{target.name}"
        element.set("file", uri)
    if copied:
        notes.append(f"assets outside any package copied into {out / 'assets'} ({copied / 1e6:.1f} MB)")


def import_robot(source: str | Path, out: str | Path, end_effectors: list[str] | tuple[str, ...], *,
                 joints: list[str] | None = None, velocity=None, acceleration=None, effort=None,
                 home: dict[str, float] | None = None, home_keyframe: str | None = None,
                 reach_tolerance: float = DEFAULT_REACH_TOLERANCE, gravcomp: bool = True,
                 servo_time_constant: float = SERVO_TIME_CONSTANT, command: str | None = None,
                 remove: list[str] | tuple[str, ...] = ()) -> ImportedRobot:
    """Write the robot folder ``out`` from the vendor MJCF or URDF ``source`` (see the module docstring).

    ``velocity``, ``acceleration``, ``effort``: one number for every actuated joint, or a mapping joint -> number
    ('*': the others); ``effort="none"`` records no effort limit. ``joints``: the joints a reach policy serves (the
    manifest's; default: the actuated ones on an end effector's chain). ``remove``: bodies (with their subtrees)
    and geoms to leave out (a task's props, legs). ``source`` may be a ``package://``
    reference; ``command``, the command that made the folder, is written in the manifest's header. Raises
    RobotImportError (one line).
    """
    start, out, notes = time.perf_counter(), Path(out), list[str]()
    try:
        source = packages.resolve(str(source)) if packages.is_package_uri(str(source)) else Path(source).resolve()
    except packages.PackageNotFound as e:
        raise RobotImportError(str(e)) from None
    if not source.is_file():
        raise RobotImportError(f"no file {source}")
    try:
        spec, urdf = _load_vendor(source)
        vendor = spec.compile()
    except packages.PackageNotFound as e:
        raise RobotImportError(f"{source.name}: {e}") from None
    except ValueError as e:
        raise RobotImportError(f"MuJoCo cannot compile {source.name}: {' '.join(str(e).split())}") from None
    servos, vendor_velocity, vendor_effort = _vendor_limits(source, vendor, urdf)
    root = ET.fromstring(spec.to_xml())
    root.set("model", root.get("model") or out.name)
    if remove:
        _remove(root, list(remove), notes)
        kept = {j.get("name") for j in _worldbody(root).iter("joint")}
        servos = [j for j in servos if j in kept]
    if not servos:
        raise RobotImportError(f"{source.name}: no actuated hinge or slide joint")
    limits = _limits(source, vendor, servos, vendor_velocity, vendor_effort, velocity, acceleration, effort)
    weak = [f"{j} ({limits[j]['effort']:g} <= {damping:g} x {limits[j]['velocity']:g})" for j in servos
            if "effort" in limits[j] and limits[j]["effort"] <=
            (damping := vendor.dof_damping[vendor.jnt_dofadr[vendor.joint(j).id]]) * limits[j]["velocity"]]
    if weak:
        notes.append("effort limit at most joint damping x velocity limit, so the joint cannot reach its velocity "
                     f"limit: {', '.join(weak)}; check the vendor's numbers (or --effort none)")
    _end_effector_sites(root, list(end_effectors), notes)
    for key in root.findall("keyframe"):
        root.remove(key)
    for sensor in root.findall("sensor"):  # sensors of the vendor's actuators would name ones that are gone
        for element in [e for e in sensor if e.get("actuator")]:
            sensor.remove(element)
    for actuator in root.findall("actuator"):
        root.remove(actuator)
    actuators = ET.SubElement(root, "actuator")
    for j in servos:
        f = limits[j].get("effort")
        ET.SubElement(actuators, "velocity", name=j, joint=j, kv="1", gear="1", ctrllimited="true",
                      ctrlrange=f"{-limits[j]['velocity']:g} {limits[j]['velocity']:g}",
                      forcelimited="true" if f else "false", forcerange=f"{-f:g} {f:g}" if f else "0 0")
    _fix_base(root, notes)
    option = root.find("option")
    if option is None:
        option = ET.Element("option")
        root.insert(1, option)
    option.set("integrator", "implicitfast")
    if gravcomp:
        for body in _worldbody(root).iter("body"):
            body.set("gravcomp", "1")

    model = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))
    qpos = _home(model, vendor, dict(home or {}), home_keyframe)
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_forward(model, data)
    inertia = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, inertia, data.qM)
    for element in actuators:
        dof = model.jnt_dofadr[model.joint(element.get("joint")).id]
        kv = max(inertia[dof, dof] / servo_time_constant, 20.0 * model.dof_damping[dof], 1.0)
        element.set("kv", f"{float(f'{kv:.2g}'):g}")  # two significant digits
    overlapping = _contacts_at(mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode")), qpos)
    if overlapping:
        contact = root.find("contact")
        if contact is None:
            contact = ET.SubElement(root, "contact")
        for b1, b2 in sorted(overlapping):
            ET.SubElement(contact, "exclude", body1=b1, body2=b2)
        notes.append(f"{len(overlapping)} body pair(s) already in contact at home excluded from collisions: "
                     + ", ".join(f"{a}/{b}" for a, b in sorted(overlapping)))
    ET.SubElement(ET.SubElement(root, "keyframe"), "key", name="home", qpos=" ".join(f"{q:.6g}" for q in qpos))

    out.mkdir(parents=True, exist_ok=True)
    _write_assets(root, out, notes)
    ET.indent(root)
    (out / "robot.xml").write_text(f"<!-- Imported by `mtpolicy import-robot` from {_origin(source)}: "
                                   "mtpolicy/robots/importer.py -->\n" + ET.tostring(root, encoding="unicode") + "\n")
    (out / "scene.xml").write_text(_scene(model, data))
    (out / MANIFEST).write_text(_manifest(source, servos, limits, list(end_effectors), joints, reach_tolerance,
                                          command))
    load_robot(out)  # the stack's own checks of the result
    return ImportedRobot(out, tuple(servos), tuple(notes), time.perf_counter() - start)


def _origin(source: Path) -> str:
    return packages.uri_for(source) or source.name


def _scene(model: mujoco.MjModel, data: mujoco.MjData) -> str:
    """The robot with lights and a floor (visual only: the fixed robot never stands on it) below its lowest geom."""
    robot = model.geom_bodyid > 0
    floor = float(np.min(data.geom_xpos[robot, 2] - model.geom_rbound[robot])) if robot.any() else 0.0
    plane = f"""
    <geom name="scene_floor" type="plane" size="0 0 0.05" pos="0 0 {floor:.3f}" material="scene_grid" contype="0" conaffinity="0"/>"""  # noqa: E501 (MJCF written verbatim)
    if (model.geom_type == mujoco.mjtGeom.mjGEOM_PLANE).any():
        plane = ""  # the vendor's model has its floor
    return f"""<mujoco model="scene">
  <include file="robot.xml"/>
  <visual><headlight ambient="0.4 0.4 0.4" diffuse="0.7 0.7 0.7"/></visual>
  <asset>
    <texture name="scene_grid" type="2d" builtin="checker" rgb1="0.2 0.3 0.4" rgb2="0.1 0.2 0.3" width="512" height="512"/>
    <material name="scene_grid" texture="scene_grid" texrepeat="1 1" texuniform="true" reflectance="0.1"/>
  </asset>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1" directional="true"/>{plane}
  </worldbody>
</mujoco>
"""  # noqa: E501 (MJCF written verbatim: the shipped scene.xml files are byte-compared with it)


def _manifest(source: Path, servos: list[str], limits: dict, end_effectors: list[str], joints: list[str] | None,
              reach_tolerance: float, command: str | None) -> str:
    def flow(names):
        return "[" + ", ".join(names) + "]"

    lines = [f"# Imported by `mtpolicy import-robot` from {_origin(source)}. Fields: mtpolicy/robots/manifest.py.",
             *([f"# {COMMAND_PREFIX}{command}"] if command else []),
             "mjcf: robot.xml", "scene: scene.xml", f"end_effectors: {flow(end_effectors)}",
             f"reach_tolerance: {reach_tolerance:g}", "home: home"]
    if joints:
        lines.append(f"joints: {flow(joints)}")
    lines.append("limits:  # velocity (the servos' ctrlrange), acceleration, effort (the servos' forcerange)")
    for j in servos:
        lines.append(f"  {j}: {{" + ", ".join(f"{k}: {v:g}" for k, v in limits[j].items()) + "}")
    return "\n".join(lines) + "\n"
