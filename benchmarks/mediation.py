"""Funnel mediation on simulated truth: 10 markets in which tv works partly through branded search.

Each market (104 weeks; tv, search, social; tv also lifts ``branded_search`` by 40-90% of its level at
full saturation, and branded search carries 20% of the baseline's sales, so a large part of tv's effect
runs through it) is fitted three ways: with branded search modelled as a mediator of tv, as a plain control (the usual
practice, which absorbs tv's indirect effect), and left out. For tv's total contribution over the
window (direct + through the mediator) it reports whether the 90% HDI covers the truth, the relative
error of the posterior mean (signed: the bias) and the HDI's width relative to the truth. Prints one row
per market and fit, then one JSON line: {"markets", "covered_<fit>", "median_abs_rel_error_<fit>",
"median_rel_error_<fit>" (the bias), "median_rel_hdi_width_<fit>" for each fit, "divergences", "seconds"}.

    python benchmarks/mediation.py [--markets 10] [--weeks 104] [--draws 500]
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

FITS = ("mediator", "control", "omitted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markets", type=int, default=10)
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--seed", type=int, default=500)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    config = SimulationConfig(
        weeks=args.weeks,
        channels=("tv", "search", "social"),
        mediated=("tv",),
        mediator_lift_range=(0.4, 0.9),
        mediator_share=0.2,
    )
    specs = {
        "mediator": simulation_spec(config, mediator="model"),
        "control": simulation_spec(config, mediator="control"),
        "omitted": simulation_spec(config, mediator="omit"),
    }
    settings = FitSettings(chains=2, draws=args.draws, tune=args.draws, seed=0)
    rows = []
    start = time.perf_counter()
    for index in range(args.markets):
        market = simulate_market(config, seed=args.seed + index)
        truth = float(market.truth.contributions["tv"].sum())
        for name, spec in specs.items():
            model = fit(spec, market.data, settings, market=f"sim{index}-{name}")
            tv = analysis.channel_summary(model).set_index("channel").loc["tv"]
            rows.append(
                {
                    "market": index,
                    "fit": name,
                    "true_total": truth,
                    "mean": tv["contribution_mean"],
                    "hdi_low": tv["contribution_hdi_low"],
                    "hdi_high": tv["contribution_hdi_high"],
                    "covered": bool(tv["contribution_hdi_low"] <= truth <= tv["contribution_hdi_high"]),
                    "rel_error": tv["contribution_mean"] / truth - 1,
                    "rel_hdi_width": (tv["contribution_hdi_high"] - tv["contribution_hdi_low"]) / truth,
                    "divergences": diagnose(model).divergences,
                }
            )
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows).assign(abs_rel_error=lambda t: t["rel_error"].abs())
    by_fit = table.groupby("fit")
    summary = {
        "markets": args.markets,
        **{f"covered_{f}": int(by_fit["covered"].sum()[f]) for f in FITS},
        **{
            f"median_{stat}_{f}": round(float(by_fit[stat].median()[f]), 4)
            for stat in ("abs_rel_error", "rel_error", "rel_hdi_width")
            for f in FITS
        },
        "divergences": int(table["divergences"].sum()),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
