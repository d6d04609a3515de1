"""The brand model on PyMC-Marketing's multidimensional example (two geos): convergence and ROAS.

One hierarchical model over geo_a and geo_b of ``../shared/data/pymc_marketing/
mmm_multidimensional_example.csv``, with ``conf/models/mmm_multidimensional_example.yaml`` (geometric
adstock, logistic saturation, 2 harmonics, the two events as controls): what
``mmm fit --market-column geo`` fits, with the platform's sampler. Prints the
convergence of the joint posterior (acceptance: 0 divergences, max R-hat <= 1.01, min bulk ESS
>= 400, over every parameter, brand level included) and the ROAS of each geo and channel with its
90% HDI. (The data's exact true parameters are not published, see its README, so this checks the
multi-market path and the fit, not parameter recovery; the simulated benchmarks do that.)

    python benchmarks/brand_geo_example.py [--draws 1000] [--tune 1000]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import arviz as az
import pandas as pd

from mmm_models import analysis
from mmm_models.brand import fit_brand
from mmm_models.fitting import FitSettings
from mmm_models.spec import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pymc_marketing" / "mmm_multidimensional_example.csv"
SPEC = ROOT / "conf" / "models" / "mmm_multidimensional_example.yaml"


def geo_frames() -> dict[str, pd.DataFrame]:
    """One weekly frame per geo."""
    return {str(geo): frame.drop(columns="geo") for geo, frame in pd.read_csv(DATA).groupby("geo")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--target-accept", type=float, default=0.95)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spec = ModelSpec.from_yaml(SPEC)
    settings = FitSettings(
        sampler="nutpie",
        chains=args.chains,
        draws=args.draws,
        tune=args.tune,
        cores=2,
        target_accept=args.target_accept,
    )
    brand = fit_brand(spec, geo_frames(), settings, brand="pymc")
    summary = az.summary(brand.idata, kind="diagnostics")
    convergence = {
        "divergences": int(brand.idata.sample_stats["diverging"].sum()),
        "max_rhat": float(summary["r_hat"].max()),
        "min_ess_bulk": float(summary["ess_bulk"].min()),
        "worst_rhat_parameter": str(summary["r_hat"].idxmax()),
        "wall_s": round(brand.timings["wall_s"], 1),
    }
    print(json.dumps(convergence), flush=True)
    rows = []
    for geo, model in brand.markets.items():
        table = analysis.channel_summary(model)
        for row in table.itertuples():
            rows.append(
                {
                    "geo": geo,
                    "channel": row.channel,
                    "spend": round(row.spend),
                    "roas_mean": round(row.roas_mean, 3),
                    "roas_hdi_90": [round(row.roas_hdi_low, 3), round(row.roas_hdi_high, 3)],
                    "contribution_share": round(row.contribution_share_mean, 3),
                }
            )
    for row in rows:
        print(json.dumps(row))
    print(brand.brand_summary().to_string())


if __name__ == "__main__":
    main()
