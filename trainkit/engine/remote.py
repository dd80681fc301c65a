"""Running nodes on a Dask cluster whose workers share nothing with the client.

Artifacts travel with the tasks: the client sends each node its input artifacts as bytes,
the worker rebuilds them in a private temp directory, checks them against their content
digests, runs the component, and returns its output directory as bytes; the client
stores it in its own cache. Workers need trainkit (and any custom component package)
installed, nothing else: no shared disk, no cache, no project files, and no working
directory in common with the client. Data providers, which read the project files, run
on the client (they are cheap).

A worker lost mid-node leaves nothing behind that anyone trusts (it never wrote outside
its temp directory), and Dask reschedules the task on another worker. A worker whose
trainkit code differs from the client's refuses the node (the code digest is part of
the task), so a model built on a cluster is byte-identical to a local build.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.fingerprint import digest_dir
from trainkit.errors import TrainkitError

# relative path -> file bytes, or None for a directory
Packed = dict[str, bytes | None]


def pack(directory: Path) -> Packed:
    """A directory's files and subdirectories as plain picklable data."""
    packed: Packed = {}
    root = Path(directory)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in dirnames:
            packed[(Path(dirpath) / name).relative_to(root).as_posix()] = None
        for name in sorted(filenames):
            path = Path(dirpath) / name
            packed[path.relative_to(root).as_posix()] = path.read_bytes()
    return packed


def unpack(packed: Packed, directory: Path) -> Path:
    """Write packed files below `directory`, refusing names that would leave it."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    for name in sorted(packed):
        parts = name.split("/")
        if not name or name.startswith("/") or ".." in parts or "\\" in name:
            raise TrainkitError(f"refusing artifact member {name!r}: not a plain relative path")
        target = root.joinpath(*parts)
        content = packed[name]
        if content is None:
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    return root


def execute_packed(node_data: dict[str, Any], inputs: dict[str, Any], code: str,
                   threads: int | None = None) -> Packed:
    """What a worker runs: one node, from packed inputs (`{param: (digest, packed) | [..]}`),
    with the client's BLAS thread count (`threads`), whatever the worker's environment says."""
    from trainkit.engine.graph import Node
    from trainkit.engine.runner import run_component

    node = Node.from_dict(node_data)
    scratch = Path(tempfile.mkdtemp(prefix=f"trainkit-remote-{node.name}-"))
    try:
        loaded: dict[str, Any] = {}
        for param, value in inputs.items():
            items = [value] if isinstance(value, tuple) else value
            artifacts = []
            for index, (digest, packed) in enumerate(items):
                path = unpack(packed, scratch / "inputs" / param / str(index))
                if digest_dir(path) != digest:
                    raise TrainkitError(f"node '{node.name}': input '{param}' arrived damaged")
                artifacts.append(Artifact(path))
            loaded[param] = artifacts[0] if isinstance(value, tuple) else artifacts
        out = ArtifactWriter(scratch / "output")
        run_component(node, loaded, out, code=code, threads=threads)
        return pack(out.path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def dask_client(address: str) -> Any:
    """A client of the Dask scheduler at `address` (the `dask` extra must be installed)."""
    try:
        from distributed import Client
    except ImportError:
        raise TrainkitError(
            "running on a Dask cluster needs the 'dask' extra: pip install 'trainkit[dask]'"
        ) from None
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise TrainkitError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
