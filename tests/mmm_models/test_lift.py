"""Lift tests: validation, the modelled lift (window + carry-over), and calibration of a fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmm_models import analysis, persistence
from mmm_models.data import DataError, lag_tensor
from mmm_models.equations import channel_contributions
from mmm_models.fitted import fit
from mmm_models.lift import spend_change, validate_lift_tests
from mmm_models.simulator import (
    SimulationConfig,
    simulate_lift_tests,
    simulate_market,
    simulation_spec,
    truth_response_model,
)
from tests.conftest import QUICK

CONFIG = SimulationConfig(weeks=104, channels=("tv", "search", "social"), correlated=("tv", "search"))
SPEC = simulation_spec(CONFIG)


@pytest.fixture(scope="module")
def market():
    return simulate_market(CONFIG, seed=21)


@pytest.fixture(scope="module")
def tests_(market):
    return simulate_lift_tests(market, channels=["tv", "search"], seed=3)


def test_lift_equals_the_whole_series_counterfactual(market, tests_) -> None:
    """The lift of a test, computed on its window and carry-over rows only, equals the difference of
    the channel's contribution over the whole history (plus spill weeks) with and without the change."""
    truth = truth_response_model(market)
    spill = np.zeros((CONFIG.l_max - 1, len(truth.channels)))
    for _, test in tests_.iterrows():
        spend = market.data[truth.channels].to_numpy(float)
        changed = spend.copy()
        window = market.data["date"].between(test["start"], test["end"]).to_numpy()
        column = truth.channels.index(test["channel"])
        changed[window, column] = np.maximum(
            0.0, changed[window, column] + spend_change(spend[window, column], test["spend_delta"])
        )
        totals = []
        for series in (changed, spend):
            lags = lag_tensor(np.concatenate([series, spill]) / truth.spend_scale, CONFIG.l_max)
            totals.append(channel_contributions(np, truth.layout, {"spend_lags": lags}, truth.params).sum())
        assert test["true_lift"] == pytest.approx(totals[0] - totals[1], rel=1e-9)


def test_spend_correlation_is_strong(market) -> None:
    assert np.corrcoef(market.data["tv"], market.data["search"])[0, 1] >= 0.9


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.assign(channel="radio"), "unknown channels ['radio']"),
        (lambda t: t.assign(lift_se=0.0), "standard error > 0"),
        (lambda t: t.assign(start=t["end"] + pd.Timedelta(weeks=2)), "ends before it starts"),
        (lambda t: t.assign(start=pd.Timestamp("2000-01-03"), end=pd.Timestamp("2000-01-24")), "fall outside"),
        (lambda t: t.assign(spend_delta=t["spend_delta"] * 1.5), "removes more"),
        (lambda t: t.drop(columns="lift_se"), "lack columns ['lift_se']"),
        (lambda t: t.assign(lift="big"), "'lift' has missing or non-numeric"),
    ],
    ids=[
        "unknown-channel",
        "zero-se",
        "reversed-window",
        "outside-data",
        "negative-spend",
        "missing-column",
        "non-numeric",
    ],
)
def test_bad_lift_tests_are_refused(market, tests_, mutate, message: str) -> None:
    with pytest.raises(DataError) as error:
        validate_lift_tests(SPEC, mutate(tests_), market.data, "DE")
    assert message in str(error.value)


@pytest.mark.slow
def test_calibrated_fit_agrees_with_its_tests_and_narrows_roas(market, tests_, tmp_path) -> None:
    plain = fit(SPEC, market.data, QUICK)
    calibrated = fit(SPEC, market.data, QUICK, lift_tests=tests_)
    check = analysis.lift_test_check(calibrated, tests_)
    assert (check["z_score"].abs() < 3).all(), check  # |z| >= 3 has probability 0.3% per honest test
    width = {}
    for label, model in (("plain", plain), ("calibrated", calibrated)):
        summary = analysis.channel_summary(model).set_index("channel")
        width[label] = (summary["roas_hdi_high"] - summary["roas_hdi_low"])[["tv", "search"]]
    assert (width["calibrated"] < width["plain"]).all()
    persistence.save(calibrated, tmp_path / "m")
    loaded = persistence.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.lift_tests[["channel", "lift"]], calibrated.lift_tests[["channel", "lift"]])


def test_wrong_lift_tests_are_flagged(market) -> None:
    """Tests that claim 3x the true lift sit far outside a model fitted without them."""
    wrong = simulate_lift_tests(market, channels=["social"], bias=3.0, seed=4)
    model = fit(SPEC, market.data, QUICK)
    check = analysis.lift_test_check(model, wrong)
    assert not check["inside_predictive_interval"].any() and (check["z_score"].abs() > 3).all()


def test_go_dark_test_takes_the_window_to_zero(market, tests_) -> None:
    test = tests_.iloc[0]
    window = market.data["date"].between(test["start"], test["end"]).to_numpy()
    actual = market.data.loc[window, test["channel"]].to_numpy()
    assert test["spend_delta"] == pytest.approx(-actual.sum())
    np.testing.assert_allclose(actual + spend_change(actual, test["spend_delta"]), 0.0, atol=1e-9)
