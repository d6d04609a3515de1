"""Lift-test calibration tells the truth: honest tests lie in the 90% intervals, 3x-wrong tests alert.

Simulated markets (156 weeks, 4 channels) are fitted without lift tests (numpyro, 4 chains x 1000
draws, 1000 tuning). For each market, ``--tests-per-channel`` go-dark tests of 4 weeks per channel are
simulated from the truth (``mmm_models.simulator.simulate_lift_tests``: window and carry-over,
standard error 10% of the lift). The job's functions score them: ``monitoring.calibration.lift_calibration``
and ``monitoring.rules.calibration_alerts`` with the default ``MonitoringSettings``. Then the same
tests with 3x the true lift: each should raise a calibration alert.

Prints per-channel coverage and a JSON line {"honest_tests", "honest_inside", "honest_coverage",
"honest_alerts", "wrong_tests", "wrong_alerted", ...}.

    python benchmarks/monitoring_calibration.py [--markets 8] [--tests-per-channel 2] [--seed 500]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import pandas as pd

from mmm_models.fitted import fit
from mmm_models.fitting import FitSettings
from mmm_models.simulator import SimulationConfig, simulate_lift_tests, simulate_market, simulation_spec
from monitoring.calibration import coverage, lift_calibration
from monitoring.rules import calibration_alerts
from pipelines.config import MonitoringSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markets", type=int, default=8)
    parser.add_argument("--tests-per-channel", type=int, default=2)
    parser.add_argument("--seed", type=int, default=500)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    config, settings = SimulationConfig(), MonitoringSettings()
    spec = simulation_spec(config)
    honest, wrong = [], []
    start = time.perf_counter()
    for index in range(args.markets):
        market = simulate_market(config, seed=args.seed + index)
        model = fit(spec, market.data, FitSettings(chains=4, draws=1000, tune=1000, seed=0), market=f"sim{index:02d}")
        keys = {"brand": "sim", "market": f"sim{index:02d}", "model_name": f"sim{index:02d}", "model_version": "1"}
        for k in range(args.tests_per_channel):
            for bias, out in ((1.0, honest), (3.0, wrong)):
                tests = simulate_lift_tests(market, bias=bias, seed=1000 * index + k)
                out.append(lift_calibration(model, tests).assign(**keys, test=k))
        print(f"market {index + 1}/{args.markets} done ({time.perf_counter() - start:.0f} s)", flush=True)

    honest_rows, wrong_rows = pd.concat(honest, ignore_index=True), pd.concat(wrong, ignore_index=True)
    honest_alerts = calibration_alerts(honest_rows, settings)
    wrong_alerts = calibration_alerts(wrong_rows, settings)
    per_test = wrong_alerts[wrong_alerts["rule"] == "lift_calibration"]
    pd.set_option("display.width", 200)
    print("\nhonest tests, coverage of the 90% predictive interval:")
    table = coverage(honest_rows)
    print(
        table[table["channel"] != "(all)"]
        .groupby("channel")[["tests", "inside"]]
        .sum()
        .assign(coverage=lambda t: t["inside"] / t["tests"])
        .to_string(float_format=lambda v: f"{v:.2f}")
    )
    print("\n3x-wrong tests, |z| against the model:")
    print(wrong_rows["z_score"].abs().describe().to_string(float_format=lambda v: f"{v:.2f}"))
    windows = wrong_rows.assign(
        context=pd.to_datetime(wrong_rows["start"]).dt.date.astype(str)
        + ".."
        + pd.to_datetime(wrong_rows["end"]).dt.date.astype(str)
    )
    flagged = windows.merge(
        per_test[["market", "channel", "context"]].drop_duplicates(),
        on=["market", "channel", "context"],
        how="left",
        indicator=True,
    )
    summary = {
        "markets": args.markets,
        "honest_tests": len(honest_rows),
        "honest_inside": int(honest_rows["inside_predictive_interval"].sum()),
        "honest_coverage": round(float(honest_rows["inside_predictive_interval"].mean()), 3),
        "honest_test_alerts": int((honest_alerts["rule"] == "lift_calibration").sum()),
        "wrong_tests": len(wrong_rows),
        "wrong_alerted": int((flagged["_merge"] == "both").sum()),
        "wrong_critical": int((per_test["severity"] == "critical").sum()),
        "fit": "numpyro 4 chains x 1000 draws, 1000 tune; tests: 4-week go-dark, se 10% of the lift",
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
