"""The pre-fit data review (``mmm_models.data_review``) on the simulator and on the shared reference data.

- simulator: ``--seeds`` clean markets (156 weeks), as many with ``correlated=("tv", "search")``, and as
  many with the target replaced by pure noise: how often each check fires, and the range of each figure;
- Meridian's 40 geos (``../shared/data/meridian/geo_all_channels.csv``: the five ``Channel*_spend``, the
  two controls, ``conversions``): the findings per geo and the figures' ranges;
- PyMC-Marketing's examples (``../shared/data/pymc_marketing/``: x1, x2, the events as controls, ``y``).

Last line: a JSON object of the counts and ranges.

    python benchmarks/data_review.py [--seeds 200]
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mmm_models.data_review import review_market_data
from mmm_models.simulator import SimulationConfig, simulate_market

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CHANNELS = ["tv", "search", "social", "display"]


def figures(review) -> dict[str, float | None]:
    channels = review.figures["channels"].values()
    return {
        "min_spend_cv": min(c["cv"] for c in channels),
        "max_zero_share": max(c["zero_share"] for c in channels),
        "max_abs_correlation": review.figures["design"]["max_abs_correlation"],
        "condition_number": review.figures["design"]["condition_number"],
        "target_cv": review.figures["target"]["cv"],
        "adjusted_r2": review.figures["target"]["adjusted_r2"],
    }


def ranges(rows: list[dict]) -> dict[str, list[float]]:
    frame = pd.DataFrame(rows).astype(float)
    return {k: [round(frame[k].min(), 3), round(frame[k].median(), 3), round(frame[k].max(), 3)] for k in frame}


def simulated(seeds: int) -> dict:
    found = {}
    rng = np.random.default_rng(0)
    for kind in ("clean", "correlated", "noise_target"):
        checks, rows = collections.Counter(), []
        config = SimulationConfig(correlated=("tv", "search")) if kind == "correlated" else SimulationConfig()
        for seed in range(seeds):
            data = simulate_market(config, seed=seed).data
            if kind == "noise_target":
                data["y"] = rng.normal(data["y"].mean(), data["y"].std(), len(data))
            review = review_market_data(data, CHANNELS, ["price_index"], target="y")
            checks.update(review.checks())
            rows.append(figures(review))
            if seed == 0:
                print(f"simulator {kind}, seed 0: {review.summary() or 'no findings'}")
        found[kind] = {"markets_with": dict(checks), "ranges_min_median_max": ranges(rows)}
        print(f"simulator {kind}: {seeds} markets, findings {dict(checks)}")
    return found


def meridian() -> dict:
    data = pd.read_csv(SHARED / "meridian" / "geo_all_channels.csv")
    channels = [f"Channel{i}_spend" for i in range(5)]
    controls = ["competitor_sales_control", "sentiment_score_control"]
    checks, flagged, rows = collections.Counter(), {}, []
    for geo, frame in data.groupby("geo"):
        review = review_market_data(frame, channels, controls, target="conversions", date_column="time")
        checks.update(review.checks())
        rows.append(figures(review))
        if review.findings:
            flagged[str(geo)] = review.summary()
            print(f"meridian {geo}: {review.summary()}")
    print(f"meridian: {len(rows)} geos, {len(flagged)} with findings {dict(checks)}")
    return {"geos": len(rows), "geos_with_findings": len(flagged), "markets_with": dict(checks), **ranges_of(rows)}


def ranges_of(rows: list[dict]) -> dict:
    return {"ranges_min_median_max": ranges(rows)}


def pymc_marketing() -> dict:
    found = {}
    example = pd.read_csv(SHARED / "pymc_marketing" / "mmm_example.csv")
    review = review_market_data(example, ["x1", "x2"], ["event_1", "event_2"], target="y", date_column="date_week")
    found["mmm_example"] = {"summary": review.summary(), **figures(review)}
    geo = pd.read_csv(SHARED / "pymc_marketing" / "mmm_multidimensional_example.csv")
    for name, frame in geo.groupby("geo"):
        review = review_market_data(frame, ["x1", "x2"], ["event_1", "event_2"], target="y", date_column="date")
        found[f"multidimensional {name}"] = {"summary": review.summary(), **figures(review)}
    for name, result in found.items():
        print(f"pymc-marketing {name}: {result['summary'] or 'no findings'}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    args = parser.parse_args()
    start = time.perf_counter()
    result = {"simulator": simulated(args.seeds), "meridian": meridian(), "pymc_marketing": pymc_marketing()}
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result, default=float))


if __name__ == "__main__":
    main()
