"""Integrity of the files the project writes: checksums of models and checkpoints, strict JSON.

An exported ``.onnx`` carries its own SHA-256 in its ``metadata_props``
(key ``model_sha256``): the digest of the file's bytes with that value
replaced by 64 ``0`` characters, so sealing changes no length and any later
change to the file -- a weight, the graph, the contract -- is found by
re-hashing, without parsing the protobuf. A training checkpoint's digests
are in a sidecar file (``checkpoint.pt.sha256``). JSON is written strict:
non-finite floats become ``null``, never the bare ``NaN`` that JSON parsers
reject.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from pathlib import Path
from typing import Any

CHECKSUM_KEY = "model_sha256"
"""metadata_props key of an exported model's own SHA-256."""
PLACEHOLDER = "0" * 64
"""The value the checksum stands in for while the file is hashed."""
_ENTRY = b"\x0a" + bytes([len(CHECKSUM_KEY)]) + CHECKSUM_KEY.encode() + b"\x12\x40"
"""Protobuf bytes of a StringStringEntryProto with key CHECKSUM_KEY, up to its 64-byte value."""


class CorruptFile(ValueError):
    """A file's content does not match its checksum: the message names the file."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _checksum_offset(data: bytes, source: str) -> int | None:
    """Offset of the checksum value in a serialized model, None if it has none."""
    at = data.find(_ENTRY)
    if at < 0:
        return None
    if data.find(_ENTRY, at + 1) >= 0:
        raise CorruptFile(f"{source}: more than one {CHECKSUM_KEY!r} entry")
    return at + len(_ENTRY)


def _digest(data: bytes, offset: int) -> str:
    return hashlib.sha256(data[:offset] + PLACEHOLDER.encode() + data[offset + 64:]).hexdigest()


def seal_model(data: bytes) -> bytes:
    """A serialized model whose ``model_sha256`` entry (set to PLACEHOLDER before saving) now holds its digest."""
    offset = _checksum_offset(data, "model")
    if offset is None or data[offset:offset + 64] != PLACEHOLDER.encode():
        raise ValueError(f"the model needs a {CHECKSUM_KEY!r} metadata entry set to 64 '0' before sealing")
    return data[:offset] + _digest(data, offset).encode() + data[offset + 64:]


def verify_model(data: bytes, source: str) -> bool:
    """True if the serialized model matches its checksum, False if it has none; CorruptFile if it does not match."""
    offset = _checksum_offset(data, source)
    if offset is None:
        return False
    recorded = data[offset:offset + 64].decode("ascii", errors="replace")
    actual = _digest(data, offset)
    if recorded != actual:
        raise CorruptFile(f"{source}: corrupt model file (sha256 {actual[:12]}... does not match the "
                          f"{recorded[:12]}... recorded at export)")
    return True


def finite_or_null(value: Any) -> Any:
    """``value`` with every non-finite float (numpy scalars too) in it replaced by None."""
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return float(value) if math.isfinite(value) else None
    return value


def strict_json(value: Any, **kwargs: Any) -> str:
    """JSON text of ``value`` with non-finite floats as null (``json.dumps`` keywords pass through)."""
    return json.dumps(finite_or_null(value), allow_nan=False, **kwargs)
