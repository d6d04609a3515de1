"""Batched fitting: seconds per market against the batch size, on one core, as a Spark task runs it.

Each batch size, with the lanes (chains x markets) run one after another or vectorised (vmap, as on
a GPU), fits the same simulated markets (156 weeks, 5 channels, 4 x 1000 draws after 1000
tuning steps) with ``mmm_models.fitting.sample_batch``; nutpie, the sampler of one market per task,
fits the first market alone for comparison. CPU seconds (``time.process_time``) are quoted beside
wall seconds: they hold up better on a busy machine. Vectorised chains run in lock step, so each
step costs the deepest tree among a batch's lanes: ``lockstep_waste`` is that cost over the cost the lanes
would pay alone (sum over steps of the largest tree / mean tree), the price of batching.

    python benchmarks/batch_size.py [--sizes 1 4 8 16] [--draws 1000] [--lanes sequential vectorised]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"  # one core, as in a Spark task
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from mmm_models import fitting
from mmm_models.diagnostics import diagnose
from mmm_models.fitted import FittedModel, prepare_market
from mmm_models.simulator import SimulationConfig, simulate_market, simulation_spec

CONFIG = SimulationConfig(weeks=156, channels=("tv", "search", "social", "video", "display"))


def lockstep_waste(runs: list[fitting.SamplerRun]) -> float:
    """Leapfrog steps the lock-stepped lanes paid over those they needed (1.0: no waste)."""
    steps = np.stack([r.idata.sample_stats["n_steps"].values for r in runs])  # (markets, chains, draws)
    lanes = steps.reshape(-1, steps.shape[-1])
    return float(lanes.max(axis=0).sum() * lanes.shape[0] / lanes.sum())


def converged(spec, prepared, run, settings) -> bool:
    model = FittedModel(spec, prepared.scaling, run.idata, prepared.data, settings)
    found = diagnose(model).to_dict()
    return found["max_rhat"] <= 1.01 and found["min_ess_bulk"] >= 400 and found["divergences"] == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument(
        "--lanes", nargs="+", default=["sequential", "vectorised"], choices=["sequential", "vectorised"]
    )
    args = parser.parse_args()
    spec = simulation_spec(CONFIG)
    settings = fitting.FitSettings(draws=args.draws, tune=args.draws, target_accept=0.95, cores=1)
    markets = [simulate_market(CONFIG, seed=seed).data for seed in range(max(args.sizes))]
    prepared = [prepare_market(spec, frame, settings, market=f"m{i}") for i, frame in enumerate(markets)]
    results: dict[str, dict] = {}

    nutpie = settings.model_copy(update={"sampler": "nutpie"})
    fitting.sample(spec, prepared[0].design, nutpie.model_copy(update={"draws": 10, "tune": 10}))  # compile
    start, cpu = time.perf_counter(), time.process_time()
    fitting.sample(spec, prepared[0].design, nutpie)
    results["nutpie_1"] = {
        "s_per_market": round(time.perf_counter() - start, 2),
        "cpu_s_per_market": round(time.process_time() - cpu, 2),
    }
    print(json.dumps({"nutpie_1": results["nutpie_1"]}), flush=True)

    for lanes in args.lanes:
        for size in args.sizes:
            batch, name = prepared[:size], f"{lanes}_{size}"
            chosen = settings.model_copy(update={"lanes": lanes})
            start = time.perf_counter()
            fitting.sample_batch(spec, [p.design for p in batch], chosen.model_copy(update={"draws": 10, "tune": 10}))
            compile_s = time.perf_counter() - start  # this batch size's compilation
            start, cpu = time.perf_counter(), time.process_time()
            runs = fitting.sample_batch(spec, [p.design for p in batch], chosen)
            wall = time.perf_counter() - start
            results[name] = {
                "s_per_market": round(wall / size, 2),
                "cpu_s_per_market": round((time.process_time() - cpu) / size, 2),
                "leapfrogs_per_market": int(sum(r.idata.sample_stats["n_steps"].values.sum() for r in runs) / size),
                "compile_s": round(compile_s, 1),
                "lockstep_waste": round(lockstep_waste(runs), 2) if lanes == "vectorised" else 1.0,
                "converged": sum(converged(spec, p, r, settings) for p, r in zip(batch, runs, strict=True)),
                "markets": size,
            }
            print(json.dumps({name: results[name]}), flush=True)
    best = min((k for k in results if k != "nutpie_1"), key=lambda k: results[k]["cpu_s_per_market"])
    summary = {
        **results,
        "best": best,
        "best_batch_size": results[best]["markets"],
        "cpu_speedup_best_over_nutpie": round(
            results["nutpie_1"]["cpu_s_per_market"] / results[best]["cpu_s_per_market"], 2
        ),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
