"""Load on the recommendation service: `mmm api` over a small demo lake, a bounded load on loopback.

The lake is built once with the platform's own jobs (``outputs/api_load/``, reused when it is there):
synthetic raw files for one brand with 6 channels (the landing generator), then ``mmm pipeline`` and
``mmm train`` (2 chains x 500 draws: a champion of 1000 draws per market, promoted by the gate) and
``mmm recommend``. Then ``mmm api`` is started on a free port of 127.0.0.1 with a token, and, once ready
(champions loaded, optimiser compiled), gets the reads (a market's latest recommendations) and then the
optimize calls (13 weeks, a budget drawn around the current one): the issue's load. Last, apart, a mixed
phase: reads with optimize calls among them, what a read waits while the model's answers compute.

The load comes from ``--concurrency`` client processes, each with one request in flight on one kept-alive
connection (the stdlib's ``http.client``) and an equal share of each phase's requests: no client waits for
another's turn of an event loop, and the clients cost the shared cores little. Each request's latency is
measured by its client over loopback; the service's own time comes back in its ``Server-Timing`` header.

Prints p50/p95/p99 latency per phase and endpoint, client-observed and server-side, and, last, one JSON
line: requests, errors, read_p95_ms, optimize_p95_ms (client-observed, of the reads and the optimize
phases), memory_growth (the server's resident memory at the end over the start, minus 1; the start is after
one untimed round of ``--concurrency`` reads and optimize calls), read_server_p95_ms,
optimize_server_p95_ms (the same requests' Server-Timing), mixed_read_p95_ms, mixed_read_server_p95_ms (the
mixed phase's reads) and load_average (the machine's 1-minute load at the end).

    .venv/bin/python benchmarks/api_load.py [--reads 2000] [--optimize 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from pathlib import Path

import httpx
import numpy as np
import yaml

from serving.timing import server_duration_ms

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


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far (user + system, all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


Job = tuple[str, str, str, bytes | None]  # endpoint, method, path, JSON body
Result = tuple[str, float, float | None, str | None]  # endpoint, client ms, server ms (Server-Timing), problem


def client(port: int, token: str, barrier: Barrier, pipe: Connection) -> None:
    """One client process: its share of each phase's requests one after the other, on one kept-alive connection.

    The stdlib's ``http.client`` costs the shared cores far less per request than an asyncio client, and a
    process of its own never waits for another client's turn of an event loop: the latency it measures
    is the request's time on loopback and in the service."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    while (jobs := pipe.recv()) is not None:
        results: list[Result] = []
        barrier.wait()
        for endpoint, method, path, body in jobs:
            start = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                answer = connection.getresponse()
                text = answer.read()
                client_ms = (time.perf_counter() - start) * 1000
                server_ms = server_duration_ms(answer.getheader("server-timing"))
                problem = None if answer.status == 200 else f"{answer.status}: {text[:200]!r}"
            except (OSError, http.client.HTTPException) as exc:
                client_ms, server_ms, problem = (
                    (time.perf_counter() - start) * 1000,
                    None,
                    f"{type(exc).__name__}: {exc}",
                )
                connection.close()  # the next request opens a new connection
            results.append((endpoint, client_ms, server_ms, problem))
        pipe.send(results)
    connection.close()


class Clients:
    """``count`` client processes, started once (untimed) and given each phase's requests in equal shares."""

    def __init__(self, count: int, port: int, token: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.barrier = context.Barrier(count)  # every client starts a phase at the same time (kept while they run)
        self.pipes, self.processes = [], []
        for _ in range(count):
            mine, theirs = context.Pipe()
            process = context.Process(target=client, args=(port, token, self.barrier, theirs), daemon=True)
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)

    def send(self, jobs: list[Job]) -> tuple[list[Result], float]:
        """Every job sent, as many in flight as there are clients: the results and the phase's wall time (s)."""
        clock = time.perf_counter()
        for index, pipe in enumerate(self.pipes):
            pipe.send(jobs[index :: len(self.pipes)])
        results = [result for pipe in self.pipes for result in pipe.recv()]
        return results, time.perf_counter() - clock

    def close(self) -> None:
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            if process.is_alive():
                pipe.send(None)
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()


def percentiles(values: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def report(phase: str, results: list[Result]) -> dict[str, dict[str, list[float]]]:
    """Prints each endpoint's client and server p50/p95/p99; returns their latencies by endpoint."""
    by_endpoint: dict[str, dict[str, list[float]]] = {}
    for endpoint, client_ms, server_ms, problem in results:
        mine = by_endpoint.setdefault(endpoint, {"client": [], "server": [], "errors": []})
        mine["client"].append(client_ms)
        if server_ms is not None:
            mine["server"].append(server_ms)
        if problem is not None:
            mine["errors"].append(problem)
    for endpoint, mine in by_endpoint.items():
        for side in ("client", "server"):
            if mine[side]:
                p50, p95, p99 = percentiles(mine[side])
                print(
                    f"{phase:8s} {endpoint:16s} {side:6s} n={len(mine[side]):5d}  "
                    f"p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  p99 {p99:8.1f} ms"
                )
        if mine["errors"]:
            print(f"{phase:8s} {endpoint}: {len(mine['errors'])} errors, first: {mine['errors'][0]}")
    return by_endpoint


def p95(values: list[float]) -> float:
    return round(percentiles(values)[1], 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--optimize", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8, help="client processes, one request in flight each")
    parser.add_argument("--mixed-reads", type=int, default=1000, help="reads of the mixed phase (0: no mixed phase)")
    parser.add_argument("--mixed-optimize", type=int, default=40, help="optimize calls among the mixed phase's reads")
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
    clients = Clients(args.concurrency, port, token)
    phases: dict[str, dict[str, dict[str, list[float]]]] = {}
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

        def reads(count: int) -> list[Job]:
            chosen = (rng.choice(list(current)) for _ in range(count))
            return [("recommendations", "GET", f"/markets/{b}/{m}/recommendations", None) for b, m in chosen]

        def optimizes(count: int) -> list[Job]:
            jobs = []
            for _ in range(count):
                (brand, market), total = rng.choice(list(current.items()))
                body = {"horizon_weeks": 13, "total_budget": total * rng.uniform(0.8, 1.2)}
                jobs.append(("optimize", "POST", f"/markets/{brand}/{market}/optimize", json.dumps(body).encode()))
            return jobs

        # One round of each at full concurrency first, not timed: the first concurrent calls allocate what
        # the server then reuses (XLA's thread pools and buffers, the read cache), which is not growth.
        clients.send(reads(args.concurrency) + optimizes(args.concurrency))
        start_mb = resident_mb(server.pid)
        wall = 0.0
        # The load: the reads, then the optimize calls. Then, apart, reads with optimize calls
        # among them: what a read waits while the model's answers compute.
        mixed = reads(args.mixed_reads) + optimizes(args.mixed_optimize if args.mixed_reads else 0)
        rng.shuffle(mixed)
        for phase, jobs in (("reads", reads(args.reads)), ("optimize", optimizes(args.optimize)), ("mixed", mixed)):
            if jobs:
                cpu = cpu_seconds(server.pid)
                results, seconds = clients.send(jobs)
                cpu = cpu_seconds(server.pid) - cpu
                phases[phase] = report(phase, results)
                print(
                    f"{phase:8s} {len(results)} requests in {seconds:.1f} s, server CPU {cpu:.2f} s "
                    f"({cpu / len(results) * 1000:.2f} ms a request), load average {os.getloadavg()[0]:.2f}"
                )
                wall += seconds
        end_mb = resident_mb(server.pid)
    finally:
        clients.close()
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        server_log.close()

    answers = [mine for phase in phases.values() for mine in phase.values()]
    requests = sum(len(mine["client"]) for mine in answers)
    print(f"{requests} requests in {wall:.1f} s; server RSS {start_mb:.0f} -> {end_mb:.0f} MB")
    read, optimize = phases["reads"]["recommendations"], phases["optimize"]["optimize"]
    summary = {
        "requests": requests,
        "errors": sum(len(mine["errors"]) for mine in answers),
        "read_p95_ms": p95(read["client"]),
        "optimize_p95_ms": p95(optimize["client"]),
        "memory_growth": round(end_mb / start_mb - 1, 4),
        "read_server_p95_ms": p95(read["server"]),
        "optimize_server_p95_ms": p95(optimize["server"]),
    }
    if "mixed" in phases:
        mixed_read = phases["mixed"]["recommendations"]
        summary |= {
            "mixed_read_p95_ms": p95(mixed_read["client"]),
            "mixed_read_server_p95_ms": p95(mixed_read["server"]),
        }
    summary["load_average"] = round(os.getloadavg()[0], 2)
    print(json.dumps(summary))
    return 0 if summary["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
