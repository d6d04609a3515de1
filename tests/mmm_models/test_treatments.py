"""Organic media and non-media treatments: first-class inputs with their own contributions."""

from __future__ import annotations

import numpy as np
import pytest

from mmm_models import analysis
from mmm_models.data import ScalingFactors, build_design, validate_market_frame
from mmm_models.fitted import fit
from mmm_models.fitting import FitSettings
from mmm_models.optimizer import BudgetProblem, optimize_budget
from mmm_models.simulator import SimulationConfig, simulate_market, simulation_spec
from mmm_models.spec import ModelSpec, SpecError
from mmm_models.treatments import treatment_summary

CONFIG = SimulationConfig(weeks=104, channels=("tv", "search", "social"), organic=("social",), promo_lift=0.08)


def test_an_organic_channel_has_no_roas_prior() -> None:
    raw = simulation_spec(CONFIG).model_dump(mode="json")
    raw["channels"][2]["effect"] = {"kind": "roas"}
    with pytest.raises(SpecError, match="organic channels have no spend"):
        ModelSpec.from_dict(raw)


def test_a_treatment_is_measured_from_its_reference() -> None:
    """A price-like treatment (reference: the mean) is centred over the training window; a promo flag is not."""
    spec = ModelSpec.from_dict(
        {
            **simulation_spec(CONFIG).model_dump(mode="json"),
            "controls": [],
            "treatments": [{"name": "promo"}, {"name": "price_index", "reference": "mean"}],
        }
    )
    frame = validate_market_frame(spec, simulate_market(CONFIG, seed=1).data)
    design = build_design(spec, frame, ScalingFactors.compute(spec, frame), bucket=None)
    np.testing.assert_allclose(design.treatments[:, 0], frame["promo"])
    np.testing.assert_allclose(design.treatments[:, 1].mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(
        design.treatments[:, 1], (frame["price_index"] - frame["price_index"].mean()) / frame["price_index"].max()
    )


@pytest.mark.slow
def test_organic_media_and_a_promotion_are_recovered() -> None:
    """One simulated market (104 weeks; social is organic; a promo flag lifts 8% of baseline), 2 x 500 draws.

    The promotion's and the organic channel's true contributions lie in their 90% HDIs (each check alone
    fails a calibrated model 10% of the time at most); the organic channel has no ROAS and no budget.
    """
    sim = simulate_market(CONFIG, seed=21)
    model = fit(simulation_spec(CONFIG), sim.data, FitSettings(chains=2, draws=500, tune=500, seed=3))
    promo = treatment_summary(model).set_index("treatment").loc["promo"]
    truth = sim.truth.treatment_contribution["promo"]
    assert promo["contribution_hdi_low"] <= truth <= promo["contribution_hdi_high"]
    summary = analysis.channel_summary(model).set_index("channel")
    social = summary.loc["social"]
    assert social["contribution_hdi_low"] <= sim.truth.contributions["social"].sum() <= social["contribution_hdi_high"]
    assert np.isnan(social["roas_mean"]) and summary.drop(index="social")["roas_mean"].notna().all()
    recommendation = optimize_budget(model, BudgetProblem(horizon_weeks=7), max_draws=200)
    assert list(recommendation.table["channel"]) == ["tv", "search"]
    budget = sim.data[["tv", "search"]].iloc[-7:].to_numpy().sum()  # the current plan: the last weeks, paid only
    np.testing.assert_allclose(recommendation.total_budget, budget, rtol=1e-6)
