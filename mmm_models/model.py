"""Spec + design -> PyMC model, built on data containers so one graph serves every market."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from mmm_models import constants as C
from mmm_models.data import Design
from mmm_models.equations import ChannelLayout, baseline_components, lift_effects, saturated_spend
from mmm_models.lift import LiftDesign
from mmm_models.priors import stacked_variable
from mmm_models.spec import ModelSpec
from mmm_models.transforms import Adstock, Saturation


def model_coords(spec: ModelSpec, layout: ChannelLayout) -> dict[str, list[str]]:
    """Coordinates of the parameter dimensions (none of them depend on the market's data)."""
    coords: dict[str, list[str]] = {
        C.CHANNEL: spec.channel_names,
        C.CONTROL: [c.name for c in spec.controls],
        C.EVENT: [e.name for e in spec.events],
        C.FOURIER: [f"{f}_{k}" for k in range(1, spec.seasonality.harmonics + 1) for f in ("sin", "cos")],
        C.TREND_TERM: ["slope"] + [f"changepoint_{k}" for k in range(1, spec.trend.changepoints + 1)],
    }
    for group in (*layout.adstock, *layout.saturation):
        coords[group.dim] = [spec.channel_names[i] for i in group.channels]
    return coords


def model_data(spec: ModelSpec, design: Design, lift: LiftDesign | None = None) -> dict[str, np.ndarray]:
    """The design arrays this spec's graph uses (and the lift tests' arrays), by data-container name."""
    unused = {
        "trend": spec.trend.type == "none",
        "fourier": spec.seasonality.harmonics == 0,
        "controls": not spec.controls,
        "events": not spec.events,
    }
    arrays = {name: value for name, value in design.model_data().items() if not unused.get(name, False)}
    return {**arrays, **(lift.model_data() if lift is not None else {})}


def build_model(spec: ModelSpec, design: Design, lift: LiftDesign | None = None) -> pm.Model:
    """The PyMC model of ``spec``, holding ``design`` (and any lift tests) in data containers.

    Channel effects are drawn on the scale the spec states their prior on (contribution share, ROAS
    or coefficient) and turned into ``channel_coef`` deterministically, using the saturated spend
    summed over the weeks in the likelihood.
    """
    layout = ChannelLayout.from_spec(spec)
    with pm.Model(coords=model_coords(spec, layout)) as model:
        data = {name: pm.Data(name, value) for name, value in model_data(spec, design, lift).items()}
        params: dict[str, pt.TensorVariable] = {}
        level = spec.intercept_prior.create_variable(C.MEAN_LEVEL)
        params[C.INTERCEPT] = pt.zeros(())  # placeholder until the level is known, see below
        if spec.trend.type != "none":
            trend_priors = [spec.trend.slope_prior] + [spec.trend.changepoint_prior] * spec.trend.changepoints
            params[C.TREND_COEF] = stacked_variable(C.TREND_COEF, trend_priors, C.TREND_TERM)
        if spec.seasonality.harmonics:
            params[C.FOURIER_COEF] = stacked_variable(
                C.FOURIER_COEF, [spec.seasonality.prior] * 2 * spec.seasonality.harmonics, C.FOURIER
            )
        if spec.controls:
            params[C.CONTROL_COEF] = stacked_variable(C.CONTROL_COEF, [c.prior for c in spec.controls], C.CONTROL)
        if spec.events:
            params[C.EVENT_COEF] = stacked_variable(C.EVENT_COEF, [e.prior for e in spec.events], C.EVENT)
        for group in (*layout.adstock, *layout.saturation):
            for param in group.transform.param_names:
                priors = [_transform_of(spec, group.transform.kind, i).prior(param) for i in group.channels]
                params[group.variable(param)] = stacked_variable(group.variable(param), priors, group.dim)

        saturated = saturated_spend(pt, layout, data["spend_lags"], params)
        effect = stacked_variable(C.CHANNEL_EFFECT, [c.effect.resolved_prior() for c in spec.channels], C.CHANNEL)
        saturation_total = (saturated * data["mask"][:, None]).sum(axis=0)
        derived = np.array([c.effect.kind != "coefficient" for c in spec.channels])
        coef = pt.where(derived, effect * data["effect_scale"] / pt.maximum(saturation_total, 1e-9), effect)
        params[C.CHANNEL_COEF] = pm.Deterministic(C.CHANNEL_COEF, coef, dims=C.CHANNEL)

        # The sampler moves the mean level of mu over the observed weeks, not the intercept: an
        # always-on channel near saturation or a slowly moving control is almost a constant, and
        # would otherwise trade off against the intercept along a long, curved ridge.
        rest = sum(baseline_components(pt, data, params).values()) + (saturated * coef).sum(axis=-1)
        weights = data["mask"] / pt.maximum(data["mask"].sum(), 1.0)
        params[C.INTERCEPT] = pm.Deterministic(C.INTERCEPT, level - (rest * weights).sum())
        mu = rest + params[C.INTERCEPT]
        sigma = spec.target.noise_prior.create_variable(C.NOISE_SIGMA)
        if spec.target.likelihood == "student_t":
            nu = spec.target.nu_prior.create_variable(C.NOISE_NU)
            noise = pm.StudentT.dist(nu=nu, mu=mu, sigma=sigma)
        else:
            noise = pm.Normal.dist(mu=mu, sigma=sigma)
        # Padding and held-out weeks stay in the graph (fixed shapes) but carry zero weight.
        pm.Potential(C.LOG_LIKELIHOOD, (pm.logp(noise, data["target"]) * data["mask"]).sum())
        if lift is not None:
            # Each lift test is one more observation: its observed lift, with its standard error.
            modelled = lift_effects(pt, layout, data, params)
            test_fit = pm.logp(pm.Normal.dist(mu=modelled, sigma=data["lift_se"]), data["lift_observed"])
            pm.Potential(C.LIFT_LIKELIHOOD, (test_fit * data["lift_mask"]).sum())
    return model


def _transform_of(spec: ModelSpec, kind: str, channel: int) -> Adstock | Saturation:
    return spec.channels[channel].adstock if kind == "adstock" else spec.channels[channel].saturation
