"""Lift-test calibration: does a model agree with the experiments run in its market?

For each test, ``mmm_models.analysis.lift_test_check`` gives the model's lift over the test window and
the weeks its adstock carries into, the z-score of the observed lift against it (model sd and the
test's standard error combined) and whether the observation falls in the model's 90% predictive
interval. Coverage is the share of tests inside that interval, per channel and per market: a
calibrated model covers about 90%.
"""

from __future__ import annotations

import pandas as pd

from mmm_models import analysis
from mmm_models.fitted import FittedModel
from mmm_models.lift import LIFT_COLUMNS

OBSERVED_INTERVAL_Z = 1.645  # the observed lift's own 90% interval: +- 1.645 standard errors


def tests_in_window(model: FittedModel, tests: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The tests whose weeks lie inside the model's data, and how many were left out."""
    missing = [c for c in LIFT_COLUMNS if c not in tests.columns]
    if missing:
        raise ValueError(f"{model.market}: lift tests lack columns {missing}")
    dates = pd.to_datetime(model.data[model.spec.date_column])
    start, end = pd.to_datetime(tests["start"]), pd.to_datetime(tests["end"])
    known = tests["channel"].isin(model.channel_names)
    inside = known & (start >= dates.iloc[0] - pd.Timedelta(days=6)) & (end <= dates.iloc[-1] + pd.Timedelta(days=6))
    return tests[inside].reset_index(drop=True), int((~inside).sum())


def lift_calibration(model: FittedModel, tests: pd.DataFrame) -> pd.DataFrame:
    """One row per test in the model's window: observed and model lift with intervals, z, inside flag, coverage."""
    usable, _ = tests_in_window(model, tests)
    if usable.empty:
        return pd.DataFrame()
    checked = analysis.lift_test_check(model, usable)
    checked = checked.assign(
        observed_low=checked["lift"] - OBSERVED_INTERVAL_Z * checked["lift_se"],
        observed_high=checked["lift"] + OBSERVED_INTERVAL_Z * checked["lift_se"],
        inside_predictive_interval=checked["inside_predictive_interval"].astype(bool),
    )
    inside = checked.groupby("channel")["inside_predictive_interval"]
    checked["channel_tests"] = inside.transform("size").astype(int)
    checked["channel_coverage"] = inside.transform("mean")
    checked["market_coverage"] = checked["inside_predictive_interval"].mean()
    return checked


def coverage(calibration: pd.DataFrame) -> pd.DataFrame:
    """Share of tests inside the 90% interval per brand, market and channel, and per market (channel ``(all)``)."""
    if calibration.empty:
        return pd.DataFrame(columns=["brand", "market", "channel", "tests", "inside", "coverage"])
    keys = ["brand", "market"]
    per_channel = calibration.groupby([*keys, "channel"])["inside_predictive_interval"].agg(["size", "sum"])
    per_market = calibration.groupby(keys)["inside_predictive_interval"].agg(["size", "sum"])
    per_market = per_market.assign(channel="(all)").set_index("channel", append=True)
    table = pd.concat([per_channel, per_market]).rename(columns={"size": "tests", "sum": "inside"}).reset_index()
    table["coverage"] = table["inside"] / table["tests"]
    return table.sort_values([*keys, "channel"]).reset_index(drop=True)
