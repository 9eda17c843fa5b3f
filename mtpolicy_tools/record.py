"""Record ROS 2 topics to a rosbag2 folder with MCAP storage (``ros2 bag`` and Foxglove open it).

Messages are stored as received: serialized CDR (rclpy ``raw`` subscriptions),
stamped with the wall-clock receive time, as ``ros2 bag record`` does. The
message definitions written into the MCAP schemas are the installed ones
(``share/<package>/msg/*.msg`` of the ROS packages this process imports).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

RECORD_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
"""Every publisher of the stack is reliable; a deep queue so a busy machine loses nothing."""


def msgtype_name(msg_class: type) -> str:
    """``sensor_msgs/msg/JointState`` for rclpy's ``sensor_msgs.msg.JointState``."""
    return f"{msg_class.__module__.split('.')[0]}/msg/{msg_class.__name__}"


def _msg_file(msgtype: str) -> Path:
    package, _, name = msgtype.split("/")
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    for prefix in prefixes:
        path = Path(prefix) / "share" / package / "msg" / f"{name}.msg"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no definition of {msgtype} in share/{package}/msg of {prefixes}")


def installed_typestore(msgtypes: Sequence[str]) -> Any:
    """A rosbags typestore holding ``msgtypes`` and the types they contain, from the installed .msg files."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    from rosbags.typesys.base import Nodetype

    store, types, todo = get_typestore(Stores.EMPTY), dict[str, Any](), list(msgtypes)
    while todo:
        name = todo.pop()
        if name in types:
            continue
        types.update(get_types_from_msg(_msg_file(name).read_text(), name))
        for _, (kind, detail) in types[name][1]:
            if kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):
                kind, detail = detail[0]
            if kind == Nodetype.NAME:
                todo.append(detail)
    store.register(types)
    return store


class BagRecorder:
    """A node that writes ``topics`` (name, rclpy message class) to a new rosbag2 folder ``path``, in its own thread."""

    def __init__(self, path: str | Path, topics: Sequence[tuple[str, type]], context: Any = None,
                 node_name: str = "recorder"):
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        self.counts = {topic: 0 for topic, _ in topics}
        """Messages written per topic."""
        store = installed_typestore([msgtype_name(cls) for _, cls in topics])
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._node = rclpy.create_node(node_name, context=context)
        for topic, cls in topics:
            connection = self._writer.add_connection(topic, msgtype_name(cls), typestore=store)
            self._node.create_subscription(cls, topic, lambda data, c=connection, t=topic: self._write(c, t, data),
                                           RECORD_QOS, raw=True)
        self._executor = SingleThreadedExecutor(context=self._node.context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._executor.spin, name="bag-recorder", daemon=True)
        self._thread.start()

    def _write(self, connection: Any, topic: str, data: bytes) -> None:
        self._writer.write(connection, time.time_ns(), data)
        self.counts[topic] += 1

    def close(self) -> None:
        """Stop recording and finish the bag (its metadata.yaml is written here)."""
        self._executor.shutdown()
        self._thread.join()
        self._node.destroy_node()
        self._writer.close()
