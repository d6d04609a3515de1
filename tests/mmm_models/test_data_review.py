"""The pre-fit data review on simulated markets whose truth is known: clean, correlated, constant,
mostly dark, no spend, a target of pure noise, a constant target."""

from __future__ import annotations

import numpy as np
import pytest

from mmm_models.data_review import EXCLUSION, WARNING, DataReviewThresholds, review_market_data
from mmm_models.simulator import SimulationConfig, simulate_market

CHANNELS = ["tv", "search", "social", "display"]
CONTROLS = ["price_index"]


def review(data, **thresholds):
    return review_market_data(data, CHANNELS, CONTROLS, target="y", thresholds=DataReviewThresholds(**thresholds))


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_a_clean_simulated_market_has_no_findings(seed):
    found = review(simulate_market(seed=seed).data)
    assert found.findings == ()
    assert not found.excluded
    assert found.summary() == ""


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_correlated_pair_is_named(seed):
    data = simulate_market(SimulationConfig(correlated=("tv", "search")), seed=seed).data
    found = review(data)
    pairs = [f for f in found.findings if f.check == "spend_correlation"]
    assert [f.subject for f in pairs] == ["tv~search"]
    assert pairs[0].severity == WARNING
    assert pairs[0].value == pytest.approx(abs(np.corrcoef(data["tv"], data["search"])[0, 1]))
    assert "tv and search" in pairs[0].message
    assert not found.excluded


def test_a_pair_below_the_limit_is_not_named():
    data = simulate_market(SimulationConfig(correlated=("tv", "search")), seed=0).data
    r = abs(np.corrcoef(data["tv"], data["search"])[0, 1])
    assert not [f for f in review(data, max_pair_correlation=r + 0.001).findings if f.check == "spend_correlation"]


def test_the_condition_number_names_the_collinear_channels():
    data = simulate_market(seed=0).data
    rng = np.random.default_rng(0)
    # display follows tv + search: no single pair is extreme, the three together are
    data["display"] = data["tv"] / data["tv"].mean() + data["search"] / data["search"].mean()
    data["display"] *= 1000 * rng.lognormal(0, 0.02, len(data))
    found = review(data, max_pair_correlation=0.99)
    collinear = [f for f in found.findings if f.check == "condition_number"]
    assert len(collinear) == 1
    assert collinear[0].value > 10
    assert set(collinear[0].subject.split(",")) == {"tv", "search", "display"}
    assert "social" not in collinear[0].message


def test_a_constant_channel_is_flagged():
    data = simulate_market(seed=0).data
    data["social"] = 5000.0
    found = review(data)
    flagged = [f for f in found.findings if f.check == "channel_spend_cv"]
    assert [f.subject for f in flagged] == ["social"]
    assert flagged[0].value == pytest.approx(0.0)
    assert not found.excluded  # the other channels still vary


def test_a_channel_that_barely_varies_is_flagged_against_its_threshold():
    data = simulate_market(seed=0).data
    rng = np.random.default_rng(1)
    data["tv"] = 20_000 * (1 + rng.normal(0, 0.03, len(data)))  # CV about 0.03
    assert [f.subject for f in review(data).findings if f.check == "channel_spend_cv"] == ["tv"]
    assert not [f for f in review(data, min_spend_cv=0.01).findings if f.check == "channel_spend_cv"]


def test_a_channel_dark_most_weeks_is_flagged():
    data = simulate_market(seed=0).data
    dark = np.ones(len(data), dtype=bool)
    dark[::10] = False  # on one week in ten
    data.loc[dark, "display"] = 0.0
    found = review(data)
    flagged = [f for f in found.findings if f.check == "channel_zero_weeks"]
    assert [f.subject for f in flagged] == ["display"]
    assert flagged[0].value == pytest.approx(dark.mean())
    assert f"{(~dark).sum()} weeks with spend" in flagged[0].message


def test_a_channel_without_spend_is_flagged_once():
    data = simulate_market(seed=0).data
    data["search"] = 0.0
    found = review(data)
    assert [(f.check, f.subject) for f in found.findings] == [("channel_no_spend", "search")]
    assert found.figures["design"]["vif"].keys() == {"tv", "social", "display"}  # the design leaves it out


def test_a_market_where_no_channel_varies_is_excluded():
    data = simulate_market(seed=0).data
    data["tv"], data["search"], data["social"], data["display"] = 1000.0, 0.0, 0.0, 250.0
    found = review(data)
    assert found.excluded
    assert [f.check for f in found.exclusions] == ["no_media_variation"]
    assert {"channel_spend_cv", "channel_no_spend"} <= {f.check for f in found.warnings}
    assert not review(data, exclude_when_no_channel_varies=False).excluded


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_target_of_pure_noise_does_not_move_with_anything(seed):
    data = simulate_market(seed=seed).data
    data["y"] = np.random.default_rng(seed).normal(100_000, 4_000, len(data))
    found = review(data)
    unexplained = [f for f in found.findings if f.check == "target_unexplained"]
    assert len(unexplained) == 1
    assert unexplained[0].value < 0.1
    assert "does not move with anything" in unexplained[0].message
    assert not found.excluded
    # the simulated target it replaced does move with its channels and controls
    assert review(simulate_market(seed=seed).data).figures["target"]["adjusted_r2"] > 0.5


def test_a_constant_target_excludes_the_market():
    data = simulate_market(seed=0).data
    data["y"] = 100_000.0
    found = review(data)
    assert [f.check for f in found.exclusions] == ["target_constant"]


def test_a_target_that_barely_varies_is_flagged():
    market = simulate_market(seed=0)
    data = market.data
    data["y"] = 1e7 + (data["y"] - data["y"].mean())  # the same movements on a level 100x higher
    found = review(data)
    assert [f.check for f in found.findings] == ["target_cv"]
    assert found.figures["target"]["cv"] < 0.01


def test_target_gaps_are_left_out_of_the_target_checks():
    data = simulate_market(seed=0).data
    data.loc[[5, 50, 100], "y"] = np.nan
    found = review(data)
    assert found.findings == ()
    assert found.figures["target"]["weeks"] == len(data) - 3


def test_a_short_market_skips_the_target_checks():
    data = simulate_market(SimulationConfig(weeks=12), seed=0).data
    data["y"] = 5.0
    assert [f.check for f in review(data).findings if f.severity == EXCLUSION] == []


def test_summary_lists_every_finding_by_check():
    data = simulate_market(SimulationConfig(correlated=("tv", "search")), seed=0).data
    data["social"] = 0.0
    found = review(data)
    assert found.summary().split("; ")[0].startswith("channel_no_spend: social has no spend")
    assert "spend_correlation: tv and search spend together" in found.summary()


def test_thresholds_are_validated():
    with pytest.raises(ValueError, match="max_zero_share"):
        DataReviewThresholds(max_zero_share=1.5)


def test_a_channel_that_copies_another_is_named_and_the_others_are_not():
    data = simulate_market(seed=0).data
    data["search"] = 0.5 * data["tv"]  # exactly: the design is singular
    found = review(data)
    collinear = next(f for f in found.findings if f.check == "condition_number")
    assert set(collinear.subject.split(",")) == {"tv", "search"}
    vif = found.figures["design"]["vif"]
    assert vif["tv"] == vif["search"] == float("inf") and vif["social"] < 2
