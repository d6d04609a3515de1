"""Pooling pays, and what it costs: one brand model against independent models, in the same run.

A simulated brand of 8 markets (2 with 52 weeks of history, 6 with 156; ROAS, adstock decay and
saturation of every channel drawn around brand-level values, see ``simulate_brand``) is fitted twice
with the same sampler settings: once as 8 independent market models, once as one hierarchical brand
model. Both use the spec of the simulator with the effect prior on ROAS (LogNormal(0, 1)).

Noise: each market's weekly noise sd is 7% of its baseline level (``--noise``), the ratio of the
shared reference data's known truth (mmm_example.csv: realised noise sd 241.9 against a mean
non-media baseline of 3,381: 0.072). At the simulator's own default, 4%, a 52-week market is almost
as well identified alone as a 156-week one (median ROAS error 0.13 against 0.11 over 10 brands), so
history length would not be what the benchmark tests.

Scored on the true ROAS of each market and channel over its training window:
- median absolute relative error of the posterior mean, for the short and the long markets, and the
  ratio brand / independent (acceptance: short <= 0.7, long <= 1.1), with a bootstrap interval of
  the short ratio over brands;
- coverage of the true ROAS by the 90% HDI (acceptance: 80-98%);
- wall time of the 8 independent fits and of the brand fit (the first brand's include each
  structure's one compilation, later brands only sample), and the sampler time of the fits that did
  not compile.

    python benchmarks/brand_pooling.py [--brands 10] [--first-brand 0] [--draws 1000] [--tune 1000] [--chains 4]
        [--transforms pooled|independent] [--noise 0.07] [--details scores.csv]

Prints one JSON line per brand and unit, then the summary object.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

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


def roas_spec(transforms: str) -> ModelSpec:
    raw = simulation_spec(name="pooling").model_dump(mode="json")
    for channel in raw["channels"]:
        channel["effect"] = {"kind": "roas"}
    raw["pooling"] = {"transforms": transforms}
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
    summaries = pd.concat([az.summary(i, kind="diagnostics") for i in idatas])
    return {
        "max_rhat": float(summaries["r_hat"].max()),
        "worst_rhat": str(summaries["r_hat"].idxmax()),
        "min_ess_bulk": float(summaries["ess_bulk"].min()),
        "worst_ess": str(summaries["ess_bulk"].idxmin()),
        "divergences": sum(int(i.sample_stats["diverging"].sum()) for i in idatas),
    }


def bootstrap_short_ratio(merged: dict[str, pd.DataFrame], resamples: int = 2000) -> list[float]:
    """5% and 95% quantiles of the short-market error ratio over brands resampled with replacement:
    how far the ratio of one run of this size could move by the luck of which brands were drawn."""
    rng = np.random.default_rng(0)
    short = {unit: frame[frame.short] for unit, frame in merged.items()}
    brands = short["brand"].brand.unique()
    ratios = []
    for _ in range(resamples):
        drawn = rng.choice(brands, size=len(brands))
        errors = {
            unit: np.median(np.concatenate([frame[frame.brand == b].relative_error.to_numpy() for b in drawn]))
            for unit, frame in short.items()
        }
        ratios.append(errors["brand"] / errors["independent"])
    return [round(float(q), 3) for q in np.quantile(ratios, [0.05, 0.95])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brands", type=int, default=10, help="simulated brands (different seeds)")
    parser.add_argument("--first-brand", type=int, default=0, help="seed offset, to split a long run in parts")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--transforms", choices=["pooled", "independent"], default="pooled")
    parser.add_argument("--noise", type=float, default=0.07, help="noise sd as a fraction of the baseline level")
    parser.add_argument("--details", type=Path, default=None, help="CSV of every market and channel's score")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spec = roas_spec(args.transforms)
    settings = FitSettings(
        sampler="nutpie", chains=args.chains, draws=args.draws, tune=args.tune, cores=2, target_accept=0.95
    )
    scores = {"independent": [], "brand": []}
    timings: dict[str, list[float]] = {
        "independent_wall_s": [],
        "brand_wall_s": [],
        "independent_sampler_s": [],
        "brand_sampler_s": [],
    }
    for seed in range(args.first_brand, args.first_brand + args.brands):
        brand = simulate_brand(WEEKS, seed=seed + 1, noise=args.noise)
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
            scored = score(models, brand).assign(brand=seed)
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
    if args.details:
        pd.concat([frame.assign(unit=unit) for unit, frame in merged.items()]).to_csv(args.details, index=False)

    def median(unit: str, short: bool) -> float:
        frame = merged[unit]
        return float(frame[frame.short == short].relative_error.median())

    summary = {
        "brands": args.brands,
        "transforms": args.transforms,
        "noise": args.noise,
        "draws": f"{args.chains}x{args.draws} (+{args.tune} tune)",
        "short_error": {"independent": median("independent", True), "brand": median("brand", True)},
        "long_error": {"independent": median("independent", False), "brand": median("brand", False)},
        "short_ratio": median("brand", True) / median("independent", True),
        "long_ratio": median("brand", False) / median("independent", False),
        "coverage_90": {unit: float(frame.covered.mean()) for unit, frame in merged.items()},
        "wall_s": {k: [round(v, 1) for v in values] for k, values in timings.items()},
    }
    summary["short_ratio_90_interval"] = bootstrap_short_ratio(merged)
    summary["wall_ratio_brand_vs_independent"] = [
        round(b / i, 2) for b, i in zip(timings["brand_wall_s"], timings["independent_wall_s"], strict=True)
    ]
    print(json.dumps(summary, default=float))


if __name__ == "__main__":
    main()
