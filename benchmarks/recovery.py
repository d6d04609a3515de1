"""Recovery of known truth: 20 simulated markets (156 weeks, 4 channels, varied truths).

For each market and channel: the true ROAS, the posterior mean and 90% HDI, whether the HDI covers
the truth, and the relative error of the mean. Also per market: convergence and wall seconds (the
first includes compilation; the others reuse it). Prints the table, then one JSON summary line:
{"markets", "intervals", "coverage", "median_abs_rel_error", "max_rhat", "min_ess_bulk",
 "divergences", "seconds_per_market_warm"}.

    python benchmarks/recovery.py [--markets 20] [--weeks 156]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import pandas as pd

from mmm_models import analysis
from mmm_models.diagnostics import diagnose
from mmm_models.fitted import fit
from mmm_models.fitting import FitSettings
from mmm_models.simulator import SimulationConfig, simulate_market, simulation_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markets", type=int, default=20)
    parser.add_argument("--weeks", type=int, default=156)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    config = SimulationConfig(weeks=args.weeks)
    spec = simulation_spec(config)
    settings = FitSettings(chains=4, draws=1000, tune=1000, seed=0)
    rows, markets = [], []
    for index in range(args.markets):
        market = simulate_market(config, seed=args.seed + index)
        start = time.perf_counter()
        model = fit(spec, market.data, settings, market=f"sim{index:02d}")
        seconds = time.perf_counter() - start
        diagnostics = diagnose(model)
        markets.append({"seconds": seconds, "compiled": model.timings["compiled"], **diagnostics.to_dict()})
        summary = analysis.channel_summary(model).set_index("channel")
        for channel, truth in market.truth.roas.items():
            row = summary.loc[channel]
            rows.append(
                {
                    "market": index,
                    "channel": channel,
                    "true_roas": truth,
                    "roas_mean": row["roas_mean"],
                    "hdi_low": row["roas_hdi_low"],
                    "hdi_high": row["roas_hdi_high"],
                    "covered": bool(row["roas_hdi_low"] <= truth <= row["roas_hdi_high"]),
                    "abs_rel_error": abs(row["roas_mean"] / truth - 1),
                }
            )
        print(
            f"market {index:2d}: {seconds:5.1f} s, R-hat {diagnostics.max_rhat:.3f}, "
            f"ESS {diagnostics.min_ess_bulk:.0f}, divergences {diagnostics.divergences}",
            flush=True,
        )

    table = pd.DataFrame(rows)
    fits = pd.DataFrame(markets)
    with pd.option_context("display.width", 160, "display.max_rows", 200):
        print(table.round(3).to_string(index=False))
    warm = fits.loc[fits["compiled"] == 0.0, "seconds"]
    print(
        json.dumps(
            {
                "markets": args.markets,
                "intervals": len(table),
                "coverage": round(float(table["covered"].mean()), 4),
                "median_abs_rel_error": round(float(table["abs_rel_error"].median()), 4),
                "max_rhat": round(float(fits["max_rhat"].max()), 4),
                "min_ess_bulk": float(fits["min_ess_bulk"].min()),
                "divergences": int(fits["divergences"].sum()),
                "seconds_per_market_warm": round(float(warm.mean()), 2) if len(warm) else None,
                "first_market_seconds": round(float(fits["seconds"].iloc[0]), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
