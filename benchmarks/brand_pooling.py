"""Pooling pays, and what it costs: one brand model against independent models, in the same run.

A simulated brand of 8 markets (2 with 52 weeks of history, 6 with 156; ROAS, adstock decay and
saturation of every channel drawn around brand-level values, see ``simulate_brand``) is fitted twice
with the same sampler settings: once as 8 independent market models, once as one hierarchical brand
model. Both use the spec of the simulator with the effect prior on ROAS (LogNormal(0, 1)).

Scored on the true ROAS of each market and channel over its training window:
- median absolute relative error of the posterior mean, for the short and the long markets, and the
  ratio brand / independent (acceptance: short <= 0.7, long <= 1.1);
- coverage of the true ROAS by the 90% HDI (acceptance: 80-98%);
- wall time of the 8 independent fits and of the brand fit (each including its one compilation), and
  sampler time without it.

    python benchmarks/brand_pooling.py [--brands 2] [--draws 1000] [--tune 1000] [--chains 4]

Prints one JSON line per brand and unit, then the summary object.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import arviz as az
import numpy as np
import pandas as pd

from mmm_models import analysis
from mmm_models.brand import fit_brand
from mmm_models.fitted import FittedModel, fit
from mmm_models.fitting import FitSettings
from mmm_models.simulator import SimulatedBrand, simulate_brand, simulation_spec
from mmm_models.spec import ModelSpec

WEEKS = {f"m{i}": (52 if i < 2 else 156) for i in range(8)}


def roas_spec() -> ModelSpec:
    raw = simulation_spec(name="pooling").model_dump(mode="json")
    for channel in raw["channels"]:
        channel["effect"] = {"kind": "roas"}
    return ModelSpec.from_dict(raw)


def score(models: dict[str, FittedModel], brand: SimulatedBrand) -> pd.DataFrame:
    rows = []
    for market, model in models.items():
        summary = analysis.channel_summary(model, max_draws=1000)
        for _, row in summary.iterrows():
            truth = brand.markets[market].truth.roas[row["channel"]]
            rows.append(
                {
                    "market": market,
                    "short": WEEKS[market] == 52,
                    "channel": row["channel"],
                    "true_roas": truth,
                    "roas_mean": row["roas_mean"],
                    "relative_error": abs(row["roas_mean"] - truth) / truth,
                    "covered": row["roas_hdi_low"] <= truth <= row["roas_hdi_high"],
                }
            )
    return pd.DataFrame(rows)


def convergence(idatas: list[az.InferenceData]) -> dict[str, float]:
    """Worst R-hat and bulk ESS over every parameter, and the divergences, of the posteriors."""
    summaries = [az.summary(i, kind="diagnostics") for i in idatas]
    return {
        "max_rhat": max(float(s["r_hat"].max()) for s in summaries),
        "min_ess_bulk": min(float(s["ess_bulk"].min()) for s in summaries),
        "divergences": sum(int(i.sample_stats["diverging"].sum()) for i in idatas),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brands", type=int, default=2, help="simulated brands (different seeds)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spec = roas_spec()
    settings = FitSettings(sampler="nutpie", chains=args.chains, draws=args.draws, tune=args.tune, cores=2)
    scores = {"independent": [], "brand": []}
    timings: dict[str, list[float]] = {"independent_wall_s": [], "brand_wall_s": [], "independent_sampler_s": []}
    timings["brand_sampler_s"] = []
    for seed in range(args.brands):
        brand = simulate_brand(WEEKS, seed=seed + 1)
        frames = {m: s.data for m, s in brand.markets.items()}

        start = time.perf_counter()
        independent = {m: fit(spec, frame, settings, market=m) for m, frame in frames.items()}
        timings["independent_wall_s"].append(time.perf_counter() - start)
        timings["independent_sampler_s"].append(
            sum(m.timings["sampler_s"] for m in independent.values() if not m.timings["compiled"])
        )

        start = time.perf_counter()
        pooled = fit_brand(spec, frames, settings, brand=f"brand{seed}")
        timings["brand_wall_s"].append(time.perf_counter() - start)
        timings["brand_sampler_s"].append(pooled.timings["sampler_s"] if not pooled.timings["compiled"] else np.nan)

        runs = {
            "independent": (independent, [m.idata for m in independent.values()]),
            "brand": (pooled.markets, [pooled.idata]),
        }
        for unit, (models, idatas) in runs.items():
            scored = score(models, brand)
            scores[unit].append(scored)
            print(
                json.dumps(
                    {
                        "brand": seed,
                        "unit": unit,
                        "short_median_error": round(float(scored[scored.short].relative_error.median()), 3),
                        "long_median_error": round(float(scored[~scored.short].relative_error.median()), 3),
                        "coverage_90": round(float(scored.covered.mean()), 3),
                        **convergence(idatas),
                    }
                ),
                flush=True,
            )

    merged = {unit: pd.concat(frames) for unit, frames in scores.items()}

    def median(unit: str, short: bool) -> float:
        frame = merged[unit]
        return float(frame[frame.short == short].relative_error.median())

    summary = {
        "brands": args.brands,
        "draws": f"{args.chains}x{args.draws} (+{args.tune} tune)",
        "short_error": {"independent": median("independent", True), "brand": median("brand", True)},
        "long_error": {"independent": median("independent", False), "brand": median("brand", False)},
        "short_ratio": median("brand", True) / median("independent", True),
        "long_ratio": median("brand", False) / median("independent", False),
        "coverage_90": {unit: float(frame.covered.mean()) for unit, frame in merged.items()},
        "wall_s": {k: [round(v, 1) for v in values] for k, values in timings.items()},
    }
    summary["wall_ratio_brand_vs_independent"] = [
        round(b / i, 2) for b, i in zip(timings["brand_wall_s"], timings["independent_wall_s"], strict=True)
    ]
    print(json.dumps(summary, default=float))


if __name__ == "__main__":
    main()
