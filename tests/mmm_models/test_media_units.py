"""Channels in their own media units (impressions, reach and frequency): the effect runs on the units, ROAS
and budgets stay in money."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mmm_models import analysis
from mmm_models import constants as C
from mmm_models.data import ScalingFactors, build_design, validate_market_frame
from mmm_models.equations import ChannelLayout, linear_predictor
from mmm_models.fitted import fit
from mmm_models.fitting import FitSettings
from mmm_models.model import build_model
from mmm_models.optimizer import BudgetProblem, optimize_budget
from mmm_models.simulator import SimulationConfig, simulate_market, simulation_spec
from mmm_models.spec import ModelSpec, SpecError

CONFIG = SimulationConfig(weeks=104, channels=("tv", "search", "social"), media_units=("tv",))


def test_a_channel_in_media_units_keeps_its_spend_in_money() -> None:
    spec = simulation_spec(CONFIG)
    sim = simulate_market(CONFIG, seed=4)
    frame = validate_market_frame(spec, sim.data)
    scaling = ScalingFactors.compute(spec, frame)
    np.testing.assert_allclose(scaling.cost_per_unit["tv"], frame["tv_spend"].sum() / frame["tv"].sum())
    assert set(scaling.cost_per_unit) == {"tv"}
    design = build_design(spec, frame, scaling, bucket=None)
    np.testing.assert_allclose(design.spend[:, 0], frame["tv"])  # the model's input: impressions
    np.testing.assert_allclose(design.cost[:, 0], frame["tv_spend"])  # ROAS and budgets: money
    np.testing.assert_allclose(design.cost[:, 1:], design.spend[:, 1:])


def test_media_units_are_checked() -> None:
    raw = simulation_spec(CONFIG).model_dump(mode="json")
    raw["channels"][0]["organic"] = True
    with pytest.raises(SpecError, match="organic channels have no spend column"):
        ModelSpec.from_dict(raw)
    spec = simulation_spec(CONFIG)
    with pytest.raises(Exception, match="tv_spend"):
        validate_market_frame(spec, simulate_market(CONFIG, seed=4).data.drop(columns="tv_spend"))


@pytest.mark.slow
def test_roas_of_a_channel_in_media_units_is_recovered_in_money() -> None:
    """One simulated market (104 weeks; tv's impressions cost a price with 30% weekly sd), 2 x 500 draws.

    tv's true ROAS (money in, outcome out) lies in its 90% HDI (fails a calibrated model 10% of the time
    at most); the summary's spend and the optimiser's budget are the money columns.
    """
    sim = simulate_market(CONFIG, seed=31)
    model = fit(simulation_spec(CONFIG), sim.data, FitSettings(chains=2, draws=500, tune=500, seed=3))
    tv = analysis.channel_summary(model).set_index("channel").loc["tv"]
    assert tv["roas_hdi_low"] <= sim.truth.roas["tv"] <= tv["roas_hdi_high"]
    np.testing.assert_allclose(tv["spend"], sim.data["tv_spend"].sum())
    recommendation = optimize_budget(model, BudgetProblem(horizon_weeks=7), max_draws=200)
    budget = sim.data[["tv_spend", "search", "social"]].iloc[-7:].to_numpy().sum()  # current plan: the last weeks
    np.testing.assert_allclose(recommendation.total_budget, budget, rtol=1e-6)


RF = SimulationConfig(weeks=104, channels=("tv", "search", "social"), reach_frequency=("tv",))


def test_reach_and_frequency_need_a_spend_column() -> None:
    raw = simulation_spec(RF).model_dump(mode="json")
    raw["channels"][0]["spend_column"] = None
    with pytest.raises(SpecError, match="need a spend_column"):
        ModelSpec.from_dict(raw)


def test_numpy_equations_reproduce_the_model_log_likelihood_with_reach_and_frequency() -> None:
    """The frequency response enters the PyMC graph and the NumPy equations the same way."""
    spec = simulation_spec(RF)
    frame = validate_market_frame(spec, simulate_market(RF, seed=5).data)
    design = build_design(spec, frame, ScalingFactors.compute(spec, frame), holdout_weeks=4)
    model = build_model(spec, design)
    point = {k: v + 0.1 for k, v in model.initial_point().items()}
    names = [v.name for v in model.unobserved_value_vars]
    values = model.compile_fn(model.unobserved_value_vars, inputs=model.value_vars, on_unused_input="ignore")(point)
    params = dict(zip(names, values, strict=True))
    mu, terms = linear_predictor(np, ChannelLayout.from_spec(spec), design.model_data(), params)
    numpy_loglik = (stats.norm.logpdf(design.target, loc=mu, scale=params[C.NOISE_SIGMA]) * design.mask).sum()
    potentials = model.compile_fn(model.replace_rvs_by_values(model.potentials), inputs=model.value_vars)(point)
    np.testing.assert_allclose(numpy_loglik, float(sum(potentials)), rtol=1e-10)
    # and frequency matters: at a higher frequency the same reach does more
    higher = {**design.model_data(), "frequency_lags": design.frequency_lags * 2}
    _, more = linear_predictor(np, ChannelLayout.from_spec(spec), higher, params)
    assert (more[:, 0][design.mask > 0] > terms[:, 0][design.mask > 0]).all()


@pytest.mark.slow
def test_roas_of_a_reach_and_frequency_channel_is_recovered_in_money() -> None:
    """One simulated market (104 weeks; tv bought as reach at a weekly frequency in 1.2..6, true half
    frequency 2.5), 2 x 500 draws: tv's money ROAS lies in its 90% HDI, and the optimiser buys reach in money."""
    sim = simulate_market(RF, seed=41)
    model = fit(simulation_spec(RF), sim.data, FitSettings(chains=2, draws=500, tune=500, seed=3))
    tv = analysis.channel_summary(model).set_index("channel").loc["tv"]
    assert tv["roas_hdi_low"] <= sim.truth.roas["tv"] <= tv["roas_hdi_high"]
    recommendation = optimize_budget(model, BudgetProblem(horizon_weeks=7), max_draws=200)
    budget = sim.data[["tv_spend", "search", "social"]].iloc[-7:].to_numpy().sum()
    np.testing.assert_allclose(recommendation.total_budget, budget, rtol=1e-6)
    assert recommendation.current_roas_draws[:, 0].mean() > 0  # the current plan's tv reach does something
