"""The PyMC model and the NumPy equations are the same model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
from pytensor.graph.traversal import ancestors
from pytensor.tensor.subtensor import AdvancedIncSubtensor, AdvancedIncSubtensor1, AdvancedSubtensor, AdvancedSubtensor1
from scipy import stats

from mmm_models import constants as C
from mmm_models.data import ScalingFactors, build_design, validate_market_frame
from mmm_models.equations import ChannelLayout, linear_predictor
from mmm_models.model import build_model
from mmm_models.simulator import SimulationConfig, simulate_market, simulation_spec
from mmm_models.spec import ModelSpec

MIXED = ModelSpec.from_dict(
    {
        "name": "mixed",
        "target": {"column": "y", "likelihood": "student_t"},
        "channels": [
            {"name": "tv", "adstock": {"type": "delayed", "l_max": 6}, "saturation": {"type": "hill"}},
            {"name": "search", "adstock": {"type": "geometric", "l_max": 3}},
            {
                "name": "social",
                "adstock": {"type": "weibull", "l_max": 5},
                "saturation": {"type": "michaelis_menten"},
                "effect": {"kind": "roas"},
            },
            {"name": "display", "effect": {"kind": "coefficient"}},
        ],
        "controls": [{"name": "price_index"}],
        "events": [{"name": "launch", "dates": ["2022-03-09"]}],
        "trend": {"type": "piecewise", "changepoints": 2},
    }
)


def mixed_design():
    sim = simulate_market(SimulationConfig(weeks=60), seed=3)
    frame = validate_market_frame(MIXED, sim.data)
    scaling = ScalingFactors.compute(MIXED, frame)
    return frame, scaling, build_design(MIXED, frame, scaling, holdout_weeks=5)


def test_numpy_equations_reproduce_the_model_log_likelihood() -> None:
    _, _, design = mixed_design()
    model = build_model(MIXED, design)
    point = model.initial_point()
    constrained = model.compile_fn(model.unobserved_value_vars, inputs=model.value_vars, on_unused_input="ignore")(
        point
    )
    params = dict(zip([v.name for v in model.unobserved_value_vars], constrained, strict=True))
    mu, _ = linear_predictor(np, ChannelLayout.from_spec(MIXED), design.model_data(), params)
    logp = stats.t.logpdf(design.target, df=params[C.NOISE_NU], loc=mu, scale=params[C.NOISE_SIGMA])
    loglik_numpy = float((logp * design.mask).sum())
    loglik_model = float(
        model.compile_fn(model.replace_rvs_by_values(model.potentials)[0], inputs=model.value_vars)(point)
    )
    np.testing.assert_allclose(loglik_numpy, loglik_model, rtol=1e-10)


def test_groups_keep_channel_order() -> None:
    layout = ChannelLayout.from_spec(MIXED)
    assert sorted(c for g in layout.adstock for c in g.channels) == [0, 1, 2, 3]
    assert {g.name for g in layout.adstock} == {
        "adstock_delayed",
        "adstock_geometric",
        "adstock_weibull",
        "adstock_geometric2",
    }


def test_derived_coefficient_matches_share() -> None:
    """A share-parameterised channel's coefficient reproduces its share of the observed target."""
    _, _, design = mixed_design()
    model = build_model(MIXED, design)
    point = model.initial_point()
    names = [v.name for v in model.unobserved_value_vars]
    values = dict(
        zip(
            names,
            model.compile_fn(model.unobserved_value_vars, inputs=model.value_vars, on_unused_input="ignore")(point),
            strict=True,
        )
    )
    from mmm_models.equations import channel_contributions

    terms = channel_contributions(np, ChannelLayout.from_spec(MIXED), design.model_data(), values)
    share_of_observed = (terms[:, 0] * design.mask).sum() / (design.target * design.mask).sum()
    np.testing.assert_allclose(share_of_observed, values[C.CHANNEL_EFFECT][0], rtol=1e-9)


def test_events_mark_their_week() -> None:
    frame, _, design = mixed_design()
    week = np.flatnonzero(design.events[:, 0])
    assert len(week) == 1 and pd.Timestamp(design.dates[week[0]]) == pd.Timestamp("2022-03-07")
    assert frame is not None


def test_one_transform_type_needs_no_gather() -> None:
    """With one adstock and one saturation type (the default spec), the log density and its gradient take
    the spend arrays whole: no gather, and no scatter in the gradient, at every evaluation."""
    spec = simulation_spec(SimulationConfig(weeks=60))
    frame = validate_market_frame(spec, simulate_market(SimulationConfig(weeks=60), seed=1).data)
    model = build_model(spec, build_design(spec, frame, ScalingFactors.compute(spec, frame)))
    logp = model.logp()
    graph = ancestors([logp, *pytensor.grad(logp, model.value_vars)])
    ops = {type(v.owner.op) for v in graph if v.owner is not None}
    assert not ops & {AdvancedSubtensor, AdvancedSubtensor1, AdvancedIncSubtensor, AdvancedIncSubtensor1}
