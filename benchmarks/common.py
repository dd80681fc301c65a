"""Helpers shared by the benchmarks: locating datasets, timing subprocesses, writing JSON."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def shared_datasets() -> Path | None:
    """The shared datasets folder, if this machine has it."""
    configured = os.environ.get("TRAINKIT_SHARED_DATASETS")
    path = Path(configured) if configured else ROOT.parent / "shared" / "datasets"
    return path if path.is_dir() else None


def run_timed(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command; wall seconds, exit code, and the peak RSS of it (children included)."""
    environment = dict(os.environ)
    environment.update(env or {})
    code = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "wall = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({'seconds': wall, 'code': p.returncode, 'peak_rss_mb': rss / 1024,"
        " 'stdout': p.stdout[-2000:], 'stderr': p.stderr[-2000:]}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def peak_rss_mb() -> float:
    """Peak RSS of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write one benchmark's JSON result (with machine facts) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def default_config_file(directory: Path, epochs: int | None = None, policies: bool = True) -> Path:
    """trainkit's default config written into `directory`, with every `epochs` option set
    to `epochs` when given, and without policies when `policies` is false."""
    from trainkit.data.config import default_config

    config = default_config()
    if not policies:
        config["policies"] = []
    for item in config["pipeline"]:
        if epochs is not None and "epochs" in item:
            item["epochs"] = epochs
    path = directory / "config.yml"
    path.write_text(json.dumps(config))
    return path
