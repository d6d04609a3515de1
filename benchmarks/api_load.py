"""Load on the recommendation service: `mmm api` over a small demo lake, a bounded load on loopback.

The lake is built once with the platform's own jobs (``outputs/api_load/``, reused when it is there):
synthetic raw files for one brand with 6 channels (the landing generator), then ``mmm pipeline`` and
``mmm train`` (2 chains x 500 draws: a champion of 1000 draws per market, promoted by the gate) and
``mmm recommend``. Then ``mmm api`` is started on a free port of 127.0.0.1 with a token, and, once ready
(champions loaded, optimiser compiled), gets the reads (a market's latest recommendations) and then the
optimize calls (13 weeks, a budget drawn around the current one), ``--concurrency`` in flight at a time.

Prints p50/p95/p99 latency per endpoint and, last, one JSON line: requests, errors, read_p95_ms,
optimize_p95_ms, memory_growth (the server's resident memory at the end over the start, minus 1; the start is
after one untimed round of ``--concurrency`` reads and optimize calls).

    .venv/bin/python benchmarks/api_load.py [--reads 2000] [--optimize 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "outputs" / "api_load"
AS_OF = "2025-01-06"  # the Monday after the 104 generated weeks (from 2023-01-02)
TAXONOMY = {
    "tv": ["tv_linear"],
    "search": ["google_ads"],
    "social": ["fb_ads"],
    "display": ["programmatic"],
    "radio": ["radio_spots"],
    "ooh": ["billboards"],
}
MARKETS = {"acme": ["DE", "FR"]}


def mmm(*args: str, env: dict[str, str] | None = None) -> None:
    """One ``mmm`` subcommand; exit 3 (some market held back) is an answer, anything else above 0 a failure."""
    code = subprocess.run([sys.executable, "-m", "jobs.cli", *args], cwd=ROOT, env=env).returncode
    if code not in (0, 3):
        raise SystemExit(f"mmm {' '.join(args)} exited {code}")


def build_lake(folder: Path) -> Path:
    """The demo lake and registry under ``folder`` (built once); returns the platform file."""
    platform_file = folder / "platform.yaml"
    if (folder / "lake" / "outputs" / "budget_recommendations").exists():
        return platform_file
    from pipelines.data.synthetic_raw import RawDataConfig, generate_raw_landing

    folder.mkdir(parents=True, exist_ok=True)
    generate_raw_landing(folder / "landing", RawDataConfig(markets=MARKETS, taxonomy=TAXONOMY, weeks=104))
    (folder / "brands").mkdir(exist_ok=True)
    for brand in MARKETS:
        config = {"brand": brand, "taxonomy": TAXONOMY, "controls": ["price_index"]}
        (folder / "brands" / f"{brand}.yaml").write_text(yaml.safe_dump(config))
    platform = {
        "landing": str(folder / "landing"),
        "lake": str(folder / "lake"),
        "brands": str(folder / "brands"),
        "mlflow": {"tracking_uri": f"sqlite:///{folder}/mlflow.db", "artifact_location": str(folder / "artifacts")},
        "training": {"sampler": "numpyro", "chains": 2, "draws": 500, "tune": 500, "holdout_weeks": 8},
        "gate": {"max_rhat": 1.1, "min_ess_bulk": 50, "max_divergences": 20, "max_holdout_wape_ratio": 10},
    }
    platform_file.write_text(yaml.safe_dump(platform))
    env = {**os.environ, "MMM_SPARK_DRIVER_MEMORY": "2g"}
    for step in ("pipeline", "train", "recommend"):
        mmm(step, "--platform", str(platform_file), "--as-of", AS_OF, env=env)
    return platform_file


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(base: str, headers: dict[str, str], process: subprocess.Popen, seconds: float = 600) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("mmm api exited before it was ready")
        try:
            answer = httpx.get(f"{base}/ready", headers=headers, timeout=5)
            if answer.status_code == 200:
                return answer.json()
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"mmm api not ready within {seconds} s")


async def send(jobs: list[tuple[str, str, str, dict | None]], base: str, headers: dict, concurrency: int) -> dict:
    """Every (endpoint, method, path, body) sent, ``concurrency`` at a time: latencies (ms) and errors per endpoint."""
    latencies: dict[str, list[float]] = {}
    errors: dict[str, list[str]] = {}
    queue = list(reversed(jobs))
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as client:

        async def worker() -> None:
            while queue:
                endpoint, method, path, body = queue.pop()
                start = time.perf_counter()
                try:
                    answer = await client.request(method, path, json=body)
                    ok = answer.status_code == 200
                    problem = f"{answer.status_code}: {answer.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, problem = False, f"{type(exc).__name__}: {exc}"
                latencies.setdefault(endpoint, []).append((time.perf_counter() - start) * 1000)
                if not ok:
                    errors.setdefault(endpoint, []).append(problem)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"latencies": latencies, "errors": errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--optimize", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--folder", type=Path, default=FOLDER, help="where the demo lake is built (once)")
    args = parser.parse_args()

    platform_file = build_lake(args.folder)
    token = secrets.token_urlsafe(32)
    headers = {"Authorization": f"Bearer {token}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "jobs.cli", "api", "--platform", str(platform_file), "--port", str(port)]
    server_log = (args.folder / "api.log").open("w")
    server = subprocess.Popen(
        command, cwd=ROOT, stdout=server_log, stderr=subprocess.STDOUT, env={**os.environ, "MMM_API_TOKENS": token}
    )
    try:
        started = time.perf_counter()
        ready = wait_ready(base, headers, server)
        print(f"ready in {time.perf_counter() - started:.1f} s: {ready['champions']}, {ready['compilations']} compiles")
        markets = [m for m in httpx.get(f"{base}/markets", headers=headers).json() if m["champion_version"]]
        if not markets:
            raise SystemExit("no market has a champion: nothing to optimise")
        current = {}  # each market's current spend over the period: the sum of its recommendation rows
        for m in markets:
            rows = httpx.get(f"{base}/markets/{m['brand']}/{m['market']}/recommendations", headers=headers).json()
            current[(m["brand"], m["market"])] = sum(r["current_spend"] for r in rows["rows"])
        rng = random.Random(0)
        reads = [
            ("recommendations", "GET", f"/markets/{b}/{m}/recommendations", None)
            for b, m in (rng.choice(list(current)) for _ in range(args.reads))
        ]
        optimizes = []
        for _ in range(args.optimize):
            (brand, market), total = rng.choice(list(current.items()))
            body = {"horizon_weeks": 13, "total_budget": total * rng.uniform(0.8, 1.2)}
            optimizes.append(("optimize", "POST", f"/markets/{brand}/{market}/optimize", body))
        # One round of each at full concurrency first, not timed: the first concurrent calls allocate what
        # the server then reuses (XLA's thread pools and buffers, the read cache), which is not growth.
        asyncio.run(send(reads[: args.concurrency] + optimizes[: args.concurrency], base, headers, args.concurrency))
        start_mb = resident_mb(server.pid)
        clock = time.perf_counter()
        results = asyncio.run(send(reads, base, headers, args.concurrency))
        optimized = asyncio.run(send(optimizes, base, headers, args.concurrency))
        wall = time.perf_counter() - clock
        end_mb = resident_mb(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        server_log.close()

    latencies = {**results["latencies"], **optimized["latencies"]}
    errors = {**results["errors"], **optimized["errors"]}
    for endpoint, values in latencies.items():
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        print(f"{endpoint:16s} n={len(values):5d}  p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  p99 {p99:8.1f} ms")
    for endpoint, problems in errors.items():
        print(f"{endpoint}: {len(problems)} errors, first: {problems[0]}")
    print(f"{sum(map(len, latencies.values()))} requests in {wall:.1f} s; server RSS {start_mb:.0f} -> {end_mb:.0f} MB")
    summary = {
        "requests": sum(map(len, latencies.values())),
        "errors": sum(map(len, errors.values())),
        "read_p95_ms": round(float(np.percentile(latencies["recommendations"], 95)), 2),
        "optimize_p95_ms": round(float(np.percentile(latencies["optimize"], 95)), 2),
        "memory_growth": round(end_mb / start_mb - 1, 4),
    }
    print(json.dumps(summary))
    return 0 if summary["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
