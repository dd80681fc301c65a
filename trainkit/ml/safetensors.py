"""Reading safetensors files with numpy alone.

The format is an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range, then the raw little-endian data. Reading it needs no
framework, which is what lets pretrained weights run without PyTorch. Tensors are
memory-mapped: only the parts a model touches are paged in, and nothing is copied until
a tensor is converted.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from trainkit.errors import TrainkitError

_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
# A header is a few kilobytes per hundred tensors; anything bigger is not a weights file.
MAX_HEADER_SIZE = 100 * 1024 * 1024


class SafetensorsError(TrainkitError):
    """A weights file that is not a well-formed safetensors file."""


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 is the upper half of a float32: shift the bits into place."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of the file by name; floating-point tensors as float32."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise SafetensorsError(f"{path}: too short to be a safetensors file")
            (header_size,) = struct.unpack("<Q", prefix)
            if header_size > min(MAX_HEADER_SIZE, size - 8):
                raise SafetensorsError(f"{path}: header length {header_size} does not fit the file")
            header = json.loads(handle.read(header_size))
    except OSError as exc:
        raise SafetensorsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SafetensorsError(f"{path}: header is not JSON") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    data_start = 8 + header_size
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start) if size > data_start else np.zeros(0, np.uint8)
    tensors: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype_name, shape, (begin, end) = entry["dtype"], [int(d) for d in entry["shape"]], entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{path}: tensor {name!r} has a malformed header entry") from None
        dtype = np.dtype("<u2") if dtype_name == "BF16" else _DTYPES.get(dtype_name)
        if dtype is None:
            raise SafetensorsError(f"{path}: tensor {name!r} has unsupported dtype {dtype_name}")
        count = int(np.prod(shape)) if shape else 1
        if not 0 <= begin <= end <= data.size or end - begin != count * dtype.itemsize:
            raise SafetensorsError(f"{path}: tensor {name!r} lies outside the file or has the wrong size")
        array = data[begin:end].view(dtype).reshape(shape)
        if dtype_name == "BF16":
            array = _bf16_to_f32(array)
        elif dtype_name in ("F16", "F64"):
            array = array.astype(np.float32)
        tensors[name] = array
    return tensors


_NAMES = {dtype: name for name, dtype in _DTYPES.items()}


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write tensors in the safetensors layout (temp file, then rename): for models
    built or converted with numpy, and the inverse `read_safetensors` is tested against."""
    path = Path(path)
    header: dict[str, Any] = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        if dtype not in _NAMES:
            raise SafetensorsError(f"tensor {name!r}: dtype {array.dtype} has no safetensors name")
        blob = array.astype(dtype, copy=False).tobytes()
        header[name] = {"dtype": _NAMES[dtype], "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(struct.pack("<Q", len(encoded)) + encoded)
            for blob in blobs:
                handle.write(blob)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
