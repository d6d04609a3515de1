"""Posterior analysis identities, on the quickly fitted example."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from mmm_models import analysis
from mmm_models.diagnostics import diagnose, mape, wape


@pytest.fixture(scope="module")
def summary(quick_example_fit):
    return analysis.channel_summary(quick_example_fit)


def test_decomposition_adds_up(quick_example_fit) -> None:
    table = analysis.decomposition(quick_example_fit)
    parts = table.drop(columns=["date", "observed", "expected", "held_out"]).sum(axis=1)
    np.testing.assert_allclose(parts, table["expected"], rtol=1e-9)
    assert table["held_out"].sum() == 13


def test_full_window_contribution_is_the_additive_term(quick_example_fit, summary) -> None:
    weekly = analysis.contributions_over_time(quick_example_fit)
    train = weekly["date"] < weekly["date"].unique()[quick_example_fit.train_weeks]
    totals = weekly[train].groupby("channel")["mean"].sum()
    # counterfactual over the training window vs. the additive term: they differ only by the
    # carry-over of the window's last weeks into the held-out weeks (a few percent at most)
    for _, row in summary.iterrows():
        assert row["contribution_mean"] == pytest.approx(totals[row["channel"]], rel=0.05)
        assert row["contribution_mean"] >= totals[row["channel"]] - 1e-6


def test_roas_is_contribution_over_spend(summary) -> None:
    np.testing.assert_allclose(summary["roas_mean"], summary["contribution_mean"] / summary["spend"], rtol=1e-9)
    assert (summary["roas_hdi_low"] <= summary["roas_mean"]).all()
    assert (summary["roas_mean"] <= summary["roas_hdi_high"]).all()


def test_marginal_roas_below_average_roas_under_diminishing_returns(summary) -> None:
    assert (summary["marginal_roas_mean"] < summary["roas_mean"]).all()


def test_response_curves_start_at_zero_and_rise(quick_example_fit) -> None:
    curves = analysis.response_curves(quick_example_fit, multipliers=np.linspace(0, 2, 9))
    for _, curve in curves.groupby("channel"):
        assert curve["contribution_mean"].iloc[0] == 0.0
        assert np.all(np.diff(curve["contribution_mean"]) > 0)
        assert np.all(np.diff(curve["marginal_roas_mean"]) < 0)  # concave


def test_each_channels_counterfactual_is_that_channel_scaled_alone(quick_example_fit) -> None:
    """The one-evaluation counterfactuals equal scaling one channel's spend at a time (every channel's
    term summed, so a channel whose change moved another's term would show)."""
    evaluator = analysis.PosteriorEvaluator(quick_example_fit, max_draws=200)
    weeks = analysis.Period().mask(quick_example_fit)
    batched = evaluator.counterfactual_contributions(weeks, 1.5)
    mu, terms = evaluator.mu_and_terms(evaluator.params)
    for c in range(batched.shape[1]):
        spend = evaluator.design.spend.copy()
        spend[weeks, c] *= 1.5
        changed = evaluator.channel_terms(evaluator.params, evaluator.spend_lags(evaluator.scaled_spend(spend)))
        alone = evaluator.outcome_change(mu, (changed - terms).sum(axis=-1)).sum(axis=-1)
        np.testing.assert_allclose(batched[:, c], alone, rtol=1e-10)


def test_period_roas_uses_only_that_period(quick_example_fit) -> None:
    last_year = analysis.channel_summary(quick_example_fit, analysis.Period("2020-01-01", "2020-12-31"))
    weeks = quick_example_fit.data["date_week"].between("2020-01-01", "2020-12-31")
    assert last_year["spend"].iloc[0] == pytest.approx(quick_example_fit.data.loc[weeks, "x1"].sum())
    with pytest.raises(ValueError, match="no weeks"):
        analysis.channel_summary(quick_example_fit, analysis.Period("1990-01-01", "1990-12-31"))


def test_adstock_curves_sum_to_one(quick_example_fit) -> None:
    curves = analysis.adstock_curves(quick_example_fit)
    np.testing.assert_allclose(curves.groupby("channel")["mean"].sum(), 1.0)


def test_diagnostics_report_holdout(quick_example_fit) -> None:
    d = diagnose(quick_example_fit)
    assert d.holdout_weeks == 13 and d.mape_holdout is not None
    assert 0 < d.mape_train < 0.2 and d.r2_train > 0.8
    idata = quick_example_fit.idata
    assert d.divergences == int(idata.sample_stats["diverging"].sum())
    assert d.max_rhat == pytest.approx(float(az.rhat(idata).to_array().max()), abs=0.005)  # summary rounds to 2 dp
    assert d.min_ess_bulk == pytest.approx(float(az.ess(idata, method="bulk").to_array().min()), rel=0.01)


def test_wape_survives_weeks_near_zero_where_mape_explodes() -> None:
    observed = np.array([100.0, 0.5, 120.0, np.nan])  # a week near zero, and a gap
    predicted = np.array([110.0, 10.0, 110.0, 90.0])
    assert wape(observed, predicted) == pytest.approx((10 + 9.5 + 10) / 220.5)
    assert mape(observed, predicted) > 6  # 1900% on the near-zero week dominates


@pytest.mark.parametrize("hdi_prob", [0.5, 0.9, 0.94])
def test_hdi_is_arviz_hdi(hdi_prob: float) -> None:
    rng = np.random.default_rng(3)
    skewed = rng.lognormal(size=(999, 7))
    tied = np.round(rng.normal(size=(1000, 4)), 1)  # ties: the first narrowest window, as ArviZ takes it
    for draws in (skewed, tied):
        np.testing.assert_array_equal(analysis.hdi(draws, hdi_prob), az.hdi(draws[None], hdi_prob=hdi_prob))
