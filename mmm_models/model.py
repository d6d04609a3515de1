"""Spec + design -> PyMC model, built on data containers so one graph serves every market."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from mmm_models import constants as C
from mmm_models.data import Design
from mmm_models.equations import (
    ChannelLayout,
    baseline_components,
    latest_log_multiplier,
    lift_effects,
    media_lags,
    media_multiplier,
    mediator_expected,
    saturated_spend,
)
from mmm_models.hierarchy import BrandDesign, BrandLift, brand_effect_location, grouped_coords, pooled_variable
from mmm_models.lift import LiftDesign
from mmm_models.priors import stacked_variable
from mmm_models.spec import ModelSpec
from mmm_models.time_varying import TimeVaryingSpec, spectral_coefficients
from mmm_models.transforms import Adstock, Saturation


def model_coords(spec: ModelSpec, layout: ChannelLayout, markets: list[str] | None = None) -> dict[str, list[str]]:
    """Coordinates of the parameter dimensions (none of them depend on the market's data)."""
    coords: dict[str, list[str]] = {
        C.CHANNEL: spec.channel_names,
        C.CONTROL: [c.name for c in spec.controls],
        C.EVENT: [e.name for e in spec.events],
        **({C.TREATMENT: [t.name for t in spec.treatments]} if spec.treatments else {}),
        C.FOURIER: [f"{f}_{k}" for k in range(1, spec.seasonality.harmonics + 1) for f in ("sin", "cos")],
        C.TREND_TERM: ["slope"] + [f"changepoint_{k}" for k in range(1, spec.trend.changepoints + 1)],
    }
    for group in (*layout.adstock, *layout.saturation):
        coords[group.dim] = [spec.channel_names[i] for i in group.channels]
    if spec.time_varying is not None:
        coords[C.GP_BASIS] = [f"phi_{j}" for j in range(1, spec.time_varying.basis_functions + 1)]
        coords[C.MEDIA_MULTIPLIER] = [m.label for m in spec.time_varying.media]
    if spec.reach_frequency_channels:
        coords[C.RF_CHANNEL] = spec.reach_frequency_channels
    if spec.mediators:
        coords[C.MEDIATOR] = [m.name for m in spec.mediators]
        coords[C.MEDIATOR_LINK] = [f"{c}->{m.name}" for m in spec.mediators for c in m.channels]
    if markets is not None:
        coords[C.MARKET] = list(markets)
        coords.update(grouped_coords(spec))
    return coords


def model_data(
    spec: ModelSpec, design: Design | BrandDesign, lift: LiftDesign | BrandLift | None = None
) -> dict[str, np.ndarray]:
    """The design arrays this spec's graph uses (and the lift tests' arrays), by data-container name."""
    unused = {
        "trend": spec.trend.type == "none",
        "fourier": spec.seasonality.harmonics == 0,
        "controls": not spec.controls,
        "events": not spec.events,
        "mediators": not spec.mediators,
        "treatments": not spec.treatments,
    }
    arrays = {name: value for name, value in design.model_data().items() if not unused.get(name, False)}
    return {**arrays, **(lift.model_data() if lift is not None else {})}


def build_model(spec: ModelSpec, design: Design | BrandDesign, lift: LiftDesign | BrandLift | None = None) -> pm.Model:
    """The PyMC model of ``spec``, holding ``design`` (and any lift tests) in data containers.

    Channel effects are drawn on the scale the spec states their prior on (contribution share, ROAS
    or coefficient) and turned into ``channel_coef`` deterministically, using the saturated spend
    summed over the weeks in the likelihood. With a ``BrandDesign`` the model is one hierarchical
    model over the brand's markets: every parameter gets a leading market axis, channel effects
    (and, if configured, adstock and saturation) are partially pooled, the rest is per market.
    """
    layout = ChannelLayout.from_spec(spec)
    markets = design.markets if isinstance(design, BrandDesign) else None
    if markets is not None and (spec.mediators or spec.treatments or spec.reach_frequency_channels):
        raise ValueError(
            "mediators, treatments and reach and frequency channels are modelled for one market at a time; "
            "fit the brand's markets one by one"
        )
    batch = (C.MARKET,) if markets is not None else ()
    with pm.Model(coords=model_coords(spec, layout, markets)) as model:
        data = {name: pm.Data(name, value) for name, value in model_data(spec, design, lift).items()}
        params: dict[str, pt.TensorVariable] = {}
        level = spec.intercept_prior.create_variable(C.MEAN_LEVEL, dims=batch or None)
        if spec.trend.type != "none":
            trend_priors = [spec.trend.slope_prior] + [spec.trend.changepoint_prior] * spec.trend.changepoints
            params[C.TREND_COEF] = stacked_variable(C.TREND_COEF, trend_priors, C.TREND_TERM, batch)
        if spec.seasonality.harmonics:
            params[C.FOURIER_COEF] = stacked_variable(
                C.FOURIER_COEF, [spec.seasonality.prior] * 2 * spec.seasonality.harmonics, C.FOURIER, batch
            )
        if spec.controls:
            params[C.CONTROL_COEF] = stacked_variable(
                C.CONTROL_COEF, [c.prior for c in spec.controls], C.CONTROL, batch
            )
        if spec.events:
            params[C.EVENT_COEF] = stacked_variable(C.EVENT_COEF, [e.prior for e in spec.events], C.EVENT, batch)
        if spec.treatments:
            priors = [t.prior for t in spec.treatments]
            params[C.TREATMENT_COEF] = stacked_variable(C.TREATMENT_COEF, priors, C.TREATMENT, batch)
        params.update(_transform_parameters(spec, layout, markets is not None))
        if spec.time_varying is not None:
            params.update(_time_varying_coefficients(spec.time_varying, data, batch))

        if spec.reach_frequency_channels:
            priors = [c.reach_frequency.half_frequency_prior for c in spec.channels if c.reach_frequency]
            params[C.HALF_FREQUENCY] = stacked_variable(C.HALF_FREQUENCY, priors, C.RF_CHANNEL)
        saturated = saturated_spend(pt, layout, media_lags(pt, layout, data, params), params)
        effect_priors = [c.effect.resolved_prior() for c in spec.channels]
        if markets is None:
            effect = stacked_variable(C.CHANNEL_EFFECT, effect_priors, C.CHANNEL)
        else:
            location = brand_effect_location(spec, effect_priors)
            effect = pooled_variable(C.CHANNEL_EFFECT, effect_priors, C.CHANNEL, spec.pooling.effect_sd, location)
        effective = saturated * media_multiplier(pt, layout, data, params)
        saturation_total = (effective * data["mask"][..., None]).sum(axis=-2)
        derived = np.array([c.effect.kind != "coefficient" for c in spec.channels])
        coef = pt.where(derived, effect * data["effect_scale"] / pt.maximum(saturation_total, 1e-9), effect)
        params[C.CHANNEL_COEF] = pm.Deterministic(C.CHANNEL_COEF, coef, dims=(*batch, C.CHANNEL))

        # The sampler moves the mean level of mu over the observed weeks, not the intercept: an
        # always-on channel near saturation or a slowly moving control is almost a constant, and
        # would otherwise trade off against the intercept along a long, curved ridge.
        baseline = baseline_components(pt, data, {**params, C.INTERCEPT: pt.zeros_like(level)})
        rest = sum(baseline.values()) + (effective * pt.expand_dims(coef, -2)).sum(axis=-1)
        if spec.mediators:
            params.update(_mediator_coefficients(spec))
            rest = rest + (data["mediators"] * params[C.MEDIATOR_COEF]).sum(axis=-1)
        weights = data["mask"] / pt.maximum(data["mask"].sum(axis=-1, keepdims=True), 1.0)
        intercept = level - (rest * weights).sum(axis=-1)
        params[C.INTERCEPT] = pm.Deterministic(C.INTERCEPT, intercept, dims=batch or None)
        mu = rest + pt.expand_dims(intercept, -1)
        sigma = spec.target.noise_prior.create_variable(C.NOISE_SIGMA, dims=batch or None)
        scale = pt.expand_dims(sigma, -1)
        if spec.target.likelihood == "student_t":
            nu = spec.target.nu_prior.create_variable(C.NOISE_NU, dims=batch or None)
            noise = pm.StudentT.dist(nu=pt.expand_dims(nu, -1), mu=mu, sigma=scale)
        else:
            noise = pm.Normal.dist(mu=mu, sigma=scale)
        # Padding and held-out weeks stay in the graph (fixed shapes) but carry zero weight.
        pm.Potential(C.LOG_LIKELIHOOD, (pm.logp(noise, data["target"]) * data["mask"]).sum())
        if spec.mediators:
            _mediator_likelihood(spec, layout, data, params)
        if lift is not None:
            # Each lift test is one more observation: its observed lift, with its standard error.
            modelled = lift_effects(pt, layout, data, params)
            test_fit = pm.logp(pm.Normal.dist(mu=modelled, sigma=data["lift_se"]), data["lift_observed"])
            pm.Potential(C.LIFT_LIKELIHOOD, (test_fit * data["lift_mask"]).sum())
    return model


def _mediator_coefficients(spec: ModelSpec) -> dict[str, pt.TensorVariable]:
    """Each mediator's effect on the target, and each listed channel's effect on its mediator
    (scattered into a dense mediator x channel matrix, zero where a channel does not drive it)."""
    effect = stacked_variable(C.MEDIATOR_COEF, [m.effect_prior for m in spec.mediators], C.MEDIATOR)
    links = stacked_variable(
        C.MEDIATOR_LINK_COEF, [m.channel_prior for m in spec.mediators for _ in m.channels], C.MEDIATOR_LINK
    )
    rows, columns = np.nonzero(spec.mediator_map())  # row-major: the order of MEDIATOR_LINK
    dense = pt.zeros((len(spec.mediators), len(spec.channels)))[rows, columns].set(links)
    channel_coef = pm.Deterministic(C.MEDIATOR_CHANNEL_COEF, dense, dims=(C.MEDIATOR, C.CHANNEL))
    return {C.MEDIATOR_COEF: effect, C.MEDIATOR_CHANNEL_COEF: channel_coef}


def _mediator_likelihood(
    spec: ModelSpec, layout: ChannelLayout, data: dict[str, pt.TensorVariable], params: dict[str, pt.TensorVariable]
) -> None:
    """The mediators' own regressions: baseline (level, trend, seasonality) plus the media that drive them.

    As for the target, the sampler moves each mediator's mean level over the observed weeks and the
    intercept derives from it.
    """
    names = [m.name for m in spec.mediators]
    level = pm.Normal(C.MEDIATOR_MEAN_LEVEL, mu=0.5, sigma=0.5, dims=C.MEDIATOR)
    terms = dict(params)
    sd = np.array([[m.baseline_sd] for m in spec.mediators])
    for coef, size in (
        (C.MEDIATOR_TREND_COEF, 1 + spec.trend.changepoints if spec.trend.type != "none" else 0),
        (C.MEDIATOR_FOURIER_COEF, 2 * spec.seasonality.harmonics),
    ):
        if size:
            terms[coef] = pm.Normal(coef, mu=0.0, sigma=sd, shape=(len(names), size))
    terms[C.MEDIATOR_INTERCEPT] = pt.zeros(len(names))
    rest = mediator_expected(pt, layout, data, terms)
    weights = (data["mask"] / pt.maximum(data["mask"].sum(), 1.0))[:, None]
    intercept = level - (rest * weights).sum(axis=0)
    pm.Deterministic(C.MEDIATOR_INTERCEPT, intercept, dims=C.MEDIATOR)
    sigma = stacked_variable(C.MEDIATOR_SIGMA, [m.noise_prior for m in spec.mediators], C.MEDIATOR)
    fit = pm.logp(pm.Normal.dist(mu=rest + intercept, sigma=sigma), data["mediators"])
    pm.Potential(C.MEDIATOR_LIKELIHOOD, (fit * data["mask"][:, None]).sum())


def _time_varying_coefficients(
    spec: TimeVaryingSpec, data: dict[str, pt.TensorVariable], batch: tuple[str, ...]
) -> dict[str, pt.TensorVariable]:
    """HSGP weights of the time-varying baseline and media multipliers (length scales and
    amplitudes shared by a brand's markets, paths per market), and each multiplier's latest value."""
    out: dict[str, pt.TensorVariable] = {}
    dims = (*batch, C.GP_BASIS)
    if spec.intercept is not None:
        weights = spectral_coefficients("intercept_gp", spec.intercept, data["gp_frequencies"], dims)
        out[C.INTERCEPT_GP_COEF] = pm.Deterministic(C.INTERCEPT_GP_COEF, weights, dims=dims)
    if spec.media:
        columns = [
            spectral_coefficients(f"media_gp{k}", component, data["gp_frequencies"], dims)
            for k, component in enumerate(spec.media)
        ]
        coef = pm.Deterministic(C.MEDIA_GP_COEF, pt.stack(columns, axis=-1), dims=(*dims, C.MEDIA_MULTIPLIER))
        out[C.MEDIA_GP_COEF] = coef
        latest = latest_log_multiplier(pt, data, {C.MEDIA_GP_COEF: coef})
        out[C.MEDIA_LOG_MULTIPLIER_LATEST] = pm.Deterministic(
            C.MEDIA_LOG_MULTIPLIER_LATEST, latest, dims=(*batch, C.MEDIA_MULTIPLIER)
        )
    return out


def _transform_parameters(spec: ModelSpec, layout: ChannelLayout, brand: bool) -> dict[str, pt.TensorVariable]:
    """Adstock and saturation parameters: per market (independent), pooled around the brand's, or the
    brand's own shared by every market (no market axis; the equations broadcast it)."""
    mode = spec.pooling.transforms if brand else "shared"
    out = {}
    for group in (*layout.adstock, *layout.saturation):
        for param in group.transform.param_names:
            name = group.variable(param)
            priors = [_transform_of(spec, group.transform.kind, i).prior(param) for i in group.channels]
            if mode == "pooled":
                out[name] = pooled_variable(name, priors, group.dim, spec.pooling.transform_sd)
            else:
                out[name] = stacked_variable(name, priors, group.dim, (C.MARKET,) if mode == "independent" else ())
    return out


def _transform_of(spec: ModelSpec, kind: str, channel: int) -> Adstock | Saturation:
    return spec.channels[channel].adstock if kind == "adstock" else spec.channels[channel].saturation
