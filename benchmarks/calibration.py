"""Lift-test calibration fixes what the data cannot: two channels whose spend moves together.

For each of N simulated markets (156 weeks, 4 channels, tv and search spend correlated >= 0.9), fit
the model without and with one lift test per correlated channel, and compare the ROAS of those two
channels with the truth. Prints one JSON line per market, then the summary:
{"markets", "spend_correlation_min", "median_abs_rel_error_uncalibrated", "median_abs_rel_error_calibrated",
 "error_reduction", "coverage_uncalibrated", "coverage_calibrated", "divergences_uncalibrated",
 "divergences_calibrated"}

    python benchmarks/calibration.py [--markets 10]
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np

from mmm_models import analysis
from mmm_models.fitted import fit
from mmm_models.fitting import FitSettings
from mmm_models.simulator import SimulationConfig, simulate_lift_tests, simulate_market, simulation_spec

PAIR = ("tv", "search")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markets", type=int, default=10)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    config = SimulationConfig(weeks=156, correlated=PAIR)
    spec = simulation_spec(config)
    errors = {"uncalibrated": [], "calibrated": []}
    covered = {"uncalibrated": [], "calibrated": []}
    divergences = {"uncalibrated": 0, "calibrated": 0}
    correlations = []
    for index in range(args.markets):
        market = simulate_market(config, seed=900 + index)
        correlations.append(float(np.corrcoef(market.data[PAIR[0]], market.data[PAIR[1]])[0, 1]))
        tests = simulate_lift_tests(market, channels=list(PAIR), seed=index)
        row = {"market": index, "spend_correlation": round(correlations[-1], 3)}
        for label, lift_tests in (("uncalibrated", None), ("calibrated", tests)):
            model = fit(spec, market.data, FitSettings(seed=index), market=f"sim{index}", lift_tests=lift_tests)
            divergences[label] += int(model.idata.sample_stats["diverging"].sum())
            summary = analysis.channel_summary(model).set_index("channel")
            for channel in PAIR:
                truth = market.truth.roas[channel]
                errors[label].append(abs(summary.loc[channel, "roas_mean"] / truth - 1))
                covered[label].append(
                    summary.loc[channel, "roas_hdi_low"] <= truth <= summary.loc[channel, "roas_hdi_high"]
                )
                row[f"{channel}_{label}_rel_error"] = round(errors[label][-1], 3)
        print(json.dumps(row), flush=True)
    before, after = float(np.median(errors["uncalibrated"])), float(np.median(errors["calibrated"]))
    print(
        json.dumps(
            {
                "markets": args.markets,
                "spend_correlation_min": round(min(correlations), 3),
                "median_abs_rel_error_uncalibrated": round(before, 4),
                "median_abs_rel_error_calibrated": round(after, 4),
                "error_reduction": round(1 - after / before, 4),
                "coverage_uncalibrated": round(float(np.mean(covered["uncalibrated"])), 3),
                "coverage_calibrated": round(float(np.mean(covered["calibrated"])), 3),
                "divergences_uncalibrated": divergences["uncalibrated"],
                "divergences_calibrated": divergences["calibrated"],
            }
        )
    )


if __name__ == "__main__":
    main()
