"""What crosses the process boundary, by value, in a format that cannot run code.

Messages are a JSON header followed by raw array bytes, never pickles: the
parent decodes what the worker sends without executing anything the code under
test chose. Arrays keep their memory layout: a non-contiguous array travels as
its values plus its strides and is rebuilt on the other side as the same kind
of view on a fresh buffer, so layout checks mean the same with isolation as
without. Objects that are not arrays, numbers, strings, ``None`` or containers
of those travel as ``Foreign`` markers naming their type. A bfloat16 array (a NumPy
extension dtype, ``ml_dtypes``) travels as its 16-bit patterns (``uint16``) tagged
``"storage": "bfloat16"`` and is viewed back as bfloat16 on arrival; float16 is NumPy's own.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from convcheck.spec.dtypes import numpy_dtype

_NUMERIC_KINDS = "biuf"

_BIT_PATTERNS = {"bfloat16": np.dtype("<u2")}
"""Extension dtypes that cross as unsigned integers of their width, by name."""


@dataclass(frozen=True)
class Foreign:
    """Stand-in for a returned object of a type that does not cross: its type's name."""

    type_name: str

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


class AliasedArray(np.ndarray):
    """An output that, in the worker, shared memory with the input named ``aliased_input``."""

    aliased_input: str | None = None


def aliased(value: np.ndarray, input_name: str) -> AliasedArray:
    """``value`` marked as having aliased ``input_name`` in the worker."""
    out = np.array(value, copy=True).view(AliasedArray)
    out.aliased_input = input_name
    return out


def _layout(a: np.ndarray) -> dict[str, Any] | None:
    """Strides, offset and span of a non-contiguous array; ``None`` if plainly contiguous."""
    if a.flags.c_contiguous or a.size == 0:
        return None
    lo = sum(min(0, (n - 1) * s) for n, s in zip(a.shape, a.strides))
    hi = sum(max(0, (n - 1) * s) for n, s in zip(a.shape, a.strides)) + a.itemsize
    return {"strides": list(a.strides), "offset": -lo, "span": hi - lo}


def _encode(value: Any, blobs: list[bytes]) -> Any:
    if isinstance(value, AliasedArray):
        node = _encode(np.asarray(value), blobs)
        node["aliased"] = value.aliased_input
        return node
    if isinstance(value, np.ndarray):
        storage = str(value.dtype) if str(value.dtype) in _BIT_PATTERNS else None
        if storage is not None:
            value = value.view(_BIT_PATTERNS[storage])  # same width, so strides and layout hold
        if value.dtype.kind not in _NUMERIC_KINDS:
            return {"t": "foreign", "name": f"numpy.ndarray[{value.dtype}]"}
        blobs.append(np.ascontiguousarray(value).tobytes())
        node = {
            "t": "array",
            "i": len(blobs) - 1,
            "dtype": value.dtype.str,
            "shape": list(value.shape),
            "layout": _layout(value),
        }
        if storage is not None:
            node["storage"] = storage
        return node
    if isinstance(value, np.generic) and value.dtype.kind in _NUMERIC_KINDS:
        return _encode(value.item(), blobs)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"t": "float", "v": repr(value)}
    if isinstance(value, (tuple, list)):
        return {"t": type(value).__name__, "v": [_encode(v, blobs) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"t": "dict", "v": {k: _encode(v, blobs) for k, v in value.items()}}
    return {"t": "foreign", "name": f"{type(value).__module__}.{type(value).__qualname__}"}


def _as_storage(values: np.ndarray, storage: Any) -> np.ndarray:
    """``values`` (bit patterns) viewed as the extension dtype ``storage`` names; as they are for
    ``None``. Any other tag is refused."""
    if storage is None:
        return values
    if storage not in _BIT_PATTERNS or values.dtype != _BIT_PATTERNS[storage]:
        raise ValueError(f"refusing array stored as {storage!r} in {values.dtype}")
    viewed: np.ndarray = values.view(numpy_dtype(storage))
    return viewed


def _decode(node: Any, blobs: list[memoryview]) -> Any:
    if not isinstance(node, dict):
        return node
    kind = node.get("t")
    if kind == "array":
        dtype = np.dtype(node["dtype"])
        if dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"refusing array of dtype {dtype}")
        values = np.frombuffer(blobs[node["i"]], dtype=dtype).reshape(node["shape"]).copy()
        layout = node.get("layout")
        if layout:
            buf = np.zeros(layout["span"], dtype=np.uint8)
            view = np.ndarray(
                values.shape, dtype, buffer=buf, offset=layout["offset"], strides=layout["strides"]
            )
            view[...] = values
            values = view
        values = _as_storage(values, node.get("storage"))
        return aliased(values, node["aliased"]) if node.get("aliased") else values
    if kind == "float":
        return float(node["v"])
    if kind in ("tuple", "list"):
        items = [_decode(v, blobs) for v in node["v"]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {k: _decode(v, blobs) for k, v in node["v"].items()}
    if kind == "foreign":
        return Foreign(str(node["name"]))
    raise ValueError(f"malformed message node {node!r}")


def dumps(value: Any) -> bytes:
    """Encode ``value`` as ``len(header) | header JSON | blob lengths | blobs``."""
    blobs: list[bytes] = []
    header = json.dumps(_encode(value, blobs)).encode()
    sizes = struct.pack(f"<{len(blobs)}Q", *(len(b) for b in blobs))
    return struct.pack("<QQ", len(header), len(blobs)) + header + sizes + b"".join(blobs)


def loads(data: bytes) -> Any:
    """Decode a message made by ``dumps``; raises ``ValueError`` on anything malformed."""
    view = memoryview(data)
    try:
        n_header, n_blobs = struct.unpack_from("<QQ", view, 0)
        pos = 16
        header = json.loads(bytes(view[pos : pos + n_header]))
        pos += n_header
        sizes = struct.unpack_from(f"<{n_blobs}Q", view, pos)
        pos += 8 * n_blobs
        blobs = []
        for size in sizes:
            blobs.append(view[pos : pos + size])
            pos += size
        return _decode(header, blobs)
    except (struct.error, json.JSONDecodeError, KeyError, TypeError, IndexError) as e:
        raise ValueError(f"malformed message from the worker: {e}") from None


class Pipes:
    """Messages in on one pipe and out on another (each end of the sandbox holds one)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._in = Connection(read_fd, writable=False)
        self._out = Connection(write_fd, readable=False)

    def poll(self, timeout: float) -> bool:
        return self._in.poll(timeout)

    def recv_bytes(self) -> bytes:
        return self._in.recv_bytes()

    def send_bytes(self, data: bytes) -> None:
        self._out.send_bytes(data)

    def close(self) -> None:
        self._in.close()
        self._out.close()
