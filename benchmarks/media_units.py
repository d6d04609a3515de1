"""Media in its own units on simulated truth: does modelling what the channel buys beat modelling its spend?

Each seed draws two markets (104 weeks; tv, search, social): one where tv's impressions cost a price with
30% weekly sd, one where tv is bought as reach at a weekly frequency in 1.2..6 (true half frequency 2.5).
Each is fitted with tv in its own units (impressions; reach and frequency) and, as the comparison, with tv's
spend as its media. For tv's ROAS in money it reports whether the 90% HDI covers the truth and the relative
error of the posterior mean. Prints one row per fit, then one JSON line: {"seeds", "covered_<fit>",
"median_abs_rel_error_<fit>" for each fit, "divergences", "seconds"}.

    python benchmarks/media_units.py [--seeds 10] [--draws 500]
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

CHANNELS = ("tv", "search", "social")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--seed", type=int, default=700)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    markets = {
        "impressions": SimulationConfig(weeks=104, channels=CHANNELS, media_units=("tv",)),
        "reach_frequency": SimulationConfig(weeks=104, channels=CHANNELS, reach_frequency=("tv",)),
    }
    spend_spec = simulation_spec(SimulationConfig(weeks=104, channels=CHANNELS))
    settings = FitSettings(chains=2, draws=args.draws, tune=args.draws, seed=0)
    rows = []
    start = time.perf_counter()
    for index in range(args.seeds):
        for kind, config in markets.items():
            sim = simulate_market(config, seed=args.seed + index)
            fits = {
                f"{kind}_units": (simulation_spec(config), sim.data),
                f"{kind}_as_spend": (spend_spec, sim.data.assign(tv=sim.data["tv_spend"])),
            }
            for name, (spec, frame) in fits.items():
                model = fit(spec, frame, settings, market=f"sim{index}-{name}")
                tv = analysis.channel_summary(model).set_index("channel").loc["tv"]
                truth = sim.truth.roas["tv"]
                rows.append(
                    {
                        "seed": index,
                        "fit": name,
                        "true_roas": truth,
                        "mean": tv["roas_mean"],
                        "hdi_low": tv["roas_hdi_low"],
                        "hdi_high": tv["roas_hdi_high"],
                        "covered": bool(tv["roas_hdi_low"] <= truth <= tv["roas_hdi_high"]),
                        "abs_rel_error": abs(tv["roas_mean"] / truth - 1),
                        "divergences": diagnose(model).divergences,
                    }
                )
                print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows)
    by_fit = table.groupby("fit", sort=False)
    summary = {
        "seeds": args.seeds,
        **{f"covered_{f}": int(v) for f, v in by_fit["covered"].sum().items()},
        **{f"median_abs_rel_error_{f}": round(float(v), 4) for f, v in by_fit["abs_rel_error"].median().items()},
        "divergences": int(table["divergences"].sum()),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
