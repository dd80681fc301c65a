"""`trainkit run` over loopback: latency and throughput of parse and webhook requests.

The example assistant (coffeebot, as shipped) is trained once, served on 127.0.0.1 by
the same `AssistantServer` the CLI starts, and talked to with urllib from client
threads: `/model/parse` requests, and whole ordering conversations through the REST
webhook (each sender its own conversation). Reported: requests per second and the
median and 95th-percentile latency, per client count.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import tempfile
import threading
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, peak_rss_mb, write_result

EXAMPLE = ROOT / "examples" / "coffeebot"
PARSE_TEXTS = ["hello", "can I get a large oat latte", "when do you open", "where is the shop", "a small mocha"]
CONVERSATION = ["hi", "I would like to order a drink", "a flat white", "medium please", "oat milk", "yes"]


def _post(url: str, payload: dict[str, Any]) -> float:
    started = time.perf_counter()
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
    return time.perf_counter() - started


def _load(clients: int, work: Any) -> dict[str, Any]:
    """Run `work(client_index)` in `clients` threads; latencies are what `work` returns."""
    latencies: list[float] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        got = work(index)
        with lock:
            latencies.extend(got)

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "requests": len(ordered),
        "requests_per_second": len(ordered) / wall,
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1000,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="Parse requests per client.")
    parser.add_argument("--conversations", type=int, default=20, help="Conversations per client.")
    parser.add_argument("--clients", default="1,4", help="Client thread counts, comma-separated.")
    parser.add_argument("--name", default="serve")
    args = parser.parse_args(argv)

    import trainkit
    from trainkit.dialogue.server import Assistant, AssistantServer

    logging.getLogger("trainkit.dialogue.server").setLevel(logging.ERROR)  # custom-action notices

    with tempfile.TemporaryDirectory(prefix="trainkit-serve-bench-") as tmp:
        project = Path(tmp) / "bot"
        shutil.copytree(EXAMPLE, project)
        os.environ["TRAINKIT_CACHE_DIR"] = str(project / "cache")
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = trainkit.train(str(project / "domain.yml"), str(project / "config.yml"), str(project / "data"),
                                    output=str(project / "models"), project_dir=str(project))
        train_seconds = time.perf_counter() - started
        model = trainkit.load_model(result.model)
        server = AssistantServer(Assistant(model, seed=0), port=0)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            parse_url, hook_url = server.url + "/model/parse", server.url + "/webhooks/rest/webhook"
            results: dict[str, Any] = {"train_seconds": train_seconds, "parse": [], "webhook": []}
            for clients in [int(c) for c in args.clients.split(",")]:
                results["parse"].append(_load(clients, lambda i: [
                    _post(parse_url, {"text": PARSE_TEXTS[n % len(PARSE_TEXTS)]}) for n in range(args.requests)]))
                results["webhook"].append(_load(clients, lambda i, c=clients: [
                    _post(hook_url, {"sender": f"c{c}-{i}-{n}", "message": text})
                    for n in range(args.conversations) for text in CONVERSATION]))
            results["conversations_in_memory"] = len(server.assistant.conversations)
        finally:
            server.shutdown()
            server.server_close()
    results["peak_rss_mb"] = peak_rss_mb()
    path = write_result(args.name, {"assistant": "examples/coffeebot", "results": results})
    print(f"wrote {path}")
    for kind in ("parse", "webhook"):
        for row in results[kind]:
            print(f"{kind:8} clients={row['clients']}: {row['requests_per_second']:.0f} req/s, "
                  f"median {row['median_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms")


if __name__ == "__main__":
    main()
