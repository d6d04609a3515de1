"""Fit speed, side by side in one run: this library against PyMC-Marketing on mmm_example.

Same structure on both sides (geometric adstock l_max 8, logistic saturation, 2 yearly harmonics,
event_1, event_2 and t as controls), same draws (4 chains x 1000, 1000 tuning). Every measurement
runs in a fresh Python process, so "cold" includes all compilation; imports are excluded on both
sides. For this library it also fits a second market of the same structure in the same process
(warm: the compiled sampler is reused).

Prints one JSON line per measurement; the last line is the summary object:
{"ours": {...}, "peer": {...}, "ours_warm_wall_s": ..., "speedup": peer wall_s / ours wall_s}.
The peer is PyMC-Marketing's fastest sampler option among those measured.

    python benchmarks/fit_speed.py [--peer-samplers numpyro,nutpie,pymc]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pymc_marketing" / "mmm_example.csv"
SPEC = ROOT / "conf" / "models" / "mmm_example.yaml"
CHAINS, DRAWS, TUNE = 4, 1000, 1000


def convergence(idata, var_names: list[str]) -> dict[str, float]:
    import arviz as az

    summary = az.summary(idata, var_names=var_names, kind="diagnostics")
    return {
        "min_ess_bulk": float(summary["ess_bulk"].min()),
        "max_rhat": float(summary["r_hat"].max()),
        "divergences": int(idata.sample_stats["diverging"].sum()),
    }


def measure_ours() -> list[dict]:
    import numpy as np
    import pandas as pd

    from mmm_models.fitted import fit
    from mmm_models.fitting import FitSettings
    from mmm_models.spec import ModelSpec

    spec = ModelSpec.from_yaml(SPEC)
    frame = pd.read_csv(DATA)
    settings = FitSettings(chains=CHAINS, draws=DRAWS, tune=TUNE, seed=1)
    start = time.perf_counter()
    cold = fit(spec, frame, settings, market="mmm_example")
    cold_wall = time.perf_counter() - start
    # a second market of the same structure: the example with its noise re-drawn
    second = frame.assign(y=frame["y"] + np.random.default_rng(2).normal(0, 250, len(frame)))
    start = time.perf_counter()
    warm = fit(spec, second, settings, market="second")
    warm_wall = time.perf_counter() - start
    rows = []
    for label, model, wall in (("ours", cold, cold_wall), ("ours_warm", warm, warm_wall)):
        stats = convergence(model.idata, list(model.idata.posterior.data_vars))
        rows.append(
            {
                "side": label,
                "sampler": "numpyro (this library)",
                "wall_s": round(wall, 2),
                **stats,
                "ess_per_s": round(stats["min_ess_bulk"] / wall, 1),
            }
        )
    return rows


def measure_peer(sampler: str) -> list[dict]:
    import pandas as pd
    from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation

    frame = pd.read_csv(DATA, parse_dates=["date_week"])
    mmm = MMM(
        adstock=GeometricAdstock(l_max=8),
        saturation=LogisticSaturation(),
        date_column="date_week",
        channel_columns=["x1", "x2"],
        control_columns=["event_1", "event_2", "t"],
        yearly_seasonality=2,
    )
    kwargs = {} if sampler == "pymc" else {"nuts_sampler": sampler}
    start = time.perf_counter()
    mmm.fit(
        frame.drop(columns="y"),
        frame["y"],
        chains=CHAINS,
        draws=DRAWS,
        tune=TUNE,
        random_seed=1,
        progressbar=False,
        cores=CHAINS,
        **kwargs,
    )
    wall = time.perf_counter() - start
    free = [rv.name for rv in mmm.model.free_RVs]
    stats = convergence(mmm.idata, free)
    return [
        {
            "side": "peer",
            "sampler": f"pymc-marketing ({sampler})",
            "wall_s": round(wall, 2),
            **stats,
            "ess_per_s": round(stats["min_ess_bulk"] / wall, 1),
        }
    ]


def in_fresh_process(*args: str) -> list[dict]:
    result = subprocess.run(
        [sys.executable, __file__, "--measure", *args], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"measurement {args} failed:\n{result.stderr[-3000:]}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-samplers", default="numpyro,nutpie", help="PyMC-Marketing samplers to measure")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        warnings.filterwarnings("ignore")
        rows = measure_ours() if args.measure[0] == "ours" else measure_peer(args.measure[1])
        for row in rows:
            print(json.dumps(row), flush=True)
        return

    keys = ("wall_s", "min_ess_bulk", "ess_per_s", "max_rhat", "divergences")
    ours, warm = in_fresh_process("ours")
    print(json.dumps(ours), flush=True)
    print(json.dumps(warm), flush=True)
    peers = []
    for sampler in args.peer_samplers.split(","):
        (peer,) = in_fresh_process("peer", sampler.strip())
        print(json.dumps(peer), flush=True)
        peers.append(peer)
    fastest = min(peers, key=lambda p: p["wall_s"])
    print(
        json.dumps(
            {
                "ours": {k: ours[k] for k in keys},
                "peer": {"sampler": fastest["sampler"], **{k: fastest[k] for k in keys}},
                "ours_warm_wall_s": warm["wall_s"],
                "speedup": round(fastest["wall_s"] / ours["wall_s"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
