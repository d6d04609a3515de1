"""Simulated markets with known truth, for recovery tests and benchmarks.

A market has weekly spend per channel (always-on, flighted or pulsed patterns), geometric adstock,
logistic saturation, a baseline (level, trend, yearly seasonality, a price control) and Normal noise.
Optionally some channels work partly through a funnel mediator (branded search queries, the column
``branded_search``): they lift the mediator, and the mediator lifts the target.
The truth is returned in business units: contributions per week, ROAS, contribution shares, adstock
half-lives and half-saturation spend, so a fitted model can be scored on what users read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from mmm_models.constants import CHANNEL_COEF, HALF_FREQUENCY
from mmm_models.data import ScalingFactors, fourier_features, lag_tensor
from mmm_models.equations import ChannelLayout, lift_effects
from mmm_models.lift import build_lift_design
from mmm_models.optimizer import ResponseModel, average_frequency
from mmm_models.spec import ModelSpec
from mmm_models.transforms import GeometricAdstock, LogisticSaturation, half_life

SPEND_PATTERNS = ("always_on", "flighted", "pulsed")


@dataclass(frozen=True)
class SimulationConfig:
    """What kind of market to draw; each truth is drawn from ranges that real markets show."""

    weeks: int = 156
    channels: tuple[str, ...] = ("tv", "search", "social", "display")
    start: str = "2022-01-03"  # a Monday
    l_max: int = 8
    alpha_range: tuple[float, float] = (0.1, 0.7)  # geometric adstock decay
    lam_range: tuple[float, float] = (0.8, 4.0)  # logistic saturation, on max-scaled spend
    share_range: tuple[float, float] = (0.04, 0.15)  # each channel's share of the target
    spend_level_range: tuple[float, float] = (2_000.0, 50_000.0)  # mean weekly spend of a channel
    baseline_level: float = 100_000.0
    noise: float = 0.04  # noise sd as a fraction of the baseline level
    harmonics: int = 2
    correlated: tuple[str, str] | None = None  # the second channel's spend follows the first's (corr > 0.9)
    mediated: tuple[str, ...] = ()  # channels that also drive the mediator ``branded_search``
    mediator_level: float = 20_000.0  # weekly branded queries without media
    mediator_lift_range: tuple[float, float] = (0.3, 0.8)  # a channel's lift of it at full saturation, x level
    mediator_share: float = 0.1  # the mediator's baseline level x its effect, as a share of the target baseline
    mediator_noise: float = 0.05  # the mediator's noise sd as a fraction of its level
    organic: tuple[str, ...] = ()  # channels whose column is activity without spend (no ROAS, no budget)
    promo_lift: float = 0.0  # weeks with the ``promo`` flag lift the target by this fraction of the baseline
    # channels bought in media units (impressions) at a price that moves week to week: their column is the
    # impressions, which drive the effect, and ``<channel>_spend`` the money
    media_units: tuple[str, ...] = ()
    cost_per_unit: float = 0.01  # mean price of one impression
    price_sd: float = 0.3  # sd of the log price from week to week
    # reach and frequency channels: impressions bought as above, shown at a weekly frequency in 1.2..6; the
    # column is the reach, ``<channel>_frequency`` and ``<channel>_spend`` the rest. Media: reach x f / (f + half)
    reach_frequency: tuple[str, ...] = ()
    half_frequency: float = 2.5


@dataclass(frozen=True)
class Truth:
    """The parameters and business quantities a fit should recover."""

    alpha: dict[str, float]
    lam: dict[str, float]
    coef: dict[str, float]  # outcome units at full saturation
    contributions: pd.DataFrame  # weekly, one column per channel
    roas: dict[str, float]
    contribution_share: dict[str, float]
    adstock_half_life: dict[str, float]
    half_saturation_spend: dict[str, float]
    noise_sd: float
    multiplier: dict[str, np.ndarray] = field(default_factory=dict)  # weekly effectiveness paths, if any
    # through the mediator (mediated channels only): outcome units at full saturation, and over the window;
    # ``contributions``, ``roas`` and ``contribution_share`` are total effects (direct + indirect)
    indirect_coef: dict[str, float] = field(default_factory=dict)
    indirect_contribution: dict[str, float] = field(default_factory=dict)
    treatment_contribution: dict[str, float] = field(default_factory=dict)  # over the window, by treatment


@dataclass(frozen=True)
class SimulatedMarket:
    data: pd.DataFrame  # date, y, one spend column per channel, price_index
    truth: Truth
    config: SimulationConfig = field(default_factory=SimulationConfig)


def simulate_spend(pattern: str, weeks: int, level: float, rng: np.random.Generator) -> np.ndarray:
    """Weekly spend of one channel with mean around ``level``."""
    if pattern == "always_on":
        wave = 1 + 0.3 * np.sin(2 * np.pi * (np.arange(weeks) / 52 + rng.uniform()))
        return level * wave * rng.lognormal(0, 0.35, weeks)
    if pattern == "flighted":
        on = np.zeros(weeks, dtype=bool)
        week = int(rng.integers(0, 6))
        while week < weeks:
            length = int(rng.integers(3, 9))
            on[week : week + length] = True
            week += length + int(rng.integers(2, 8))
        return np.where(on, level * 1.8 * rng.lognormal(0, 0.3, weeks), 0.0)
    if pattern == "pulsed":
        spikes = rng.uniform(size=weeks) < 0.25
        return level * np.where(spikes, rng.uniform(2.0, 4.0, weeks), rng.uniform(0.0, 0.3, weeks))
    raise ValueError(f"unknown spend pattern {pattern!r}; choose one of {SPEND_PATTERNS}")


def simulate_market(
    config: SimulationConfig | None = None,
    seed: int = 0,
    truth: Mapping[str, Mapping[str, float]] | None = None,
    multiplier: Mapping[str, np.ndarray] | None = None,
) -> SimulatedMarket:
    """Draw one market and its truth.

    ``truth`` fixes some parameters instead of drawing them: ``{"alpha": {...}, "lam": {...},
    "roas": {...}}`` by channel (a fixed ROAS sets the coefficient that delivers it). ``multiplier``
    gives a channel's weekly effectiveness path (its effect is multiplied by it week by week).
    """
    config = config or SimulationConfig()
    rng = np.random.default_rng(seed)
    weeks, names = config.weeks, list(config.channels)
    dates = pd.date_range(config.start, periods=weeks, freq="7D")
    if dates[0].dayofweek != 0:
        raise ValueError(f"simulation start {config.start} is not a Monday")

    spend = np.stack(
        [
            simulate_spend(SPEND_PATTERNS[i % len(SPEND_PATTERNS)], weeks, rng.uniform(*config.spend_level_range), rng)
            for i in range(len(names))
        ],
        axis=1,
    )
    if config.correlated is not None:
        leader, follower = (names.index(c) for c in config.correlated)
        ratio = spend[:, follower].mean() / spend[:, leader].mean()
        spend[:, follower] = spend[:, leader] * ratio * rng.lognormal(0, 0.1, weeks)
    truth, multiplier = truth or {}, multiplier or {}
    alpha = _fixed_or(truth.get("alpha"), names, rng.uniform(*config.alpha_range, len(names)))
    lam = _fixed_or(truth.get("lam"), names, rng.uniform(*config.lam_range, len(names)))
    media = spend.copy()  # the channel's column: spend, impressions, or reach
    response = np.ones_like(spend)  # a reach and frequency channel's frequency response
    frequency = {}
    for i, channel in enumerate(names):
        if channel in (*config.media_units, *config.reach_frequency):
            media[:, i] = spend[:, i] / (config.cost_per_unit * rng.lognormal(0, config.price_sd, weeks))
        if channel in config.reach_frequency:
            frequency[channel] = rng.uniform(1.2, 6.0, weeks)
            media[:, i] /= frequency[channel]
            response[:, i] = frequency[channel] / (frequency[channel] + config.half_frequency)
    scale = media.max(axis=0)
    adstock = GeometricAdstock(l_max=config.l_max)
    saturated = LogisticSaturation().apply(
        np, adstock.apply(np, lag_tensor(media / scale * response, config.l_max), alpha=alpha), lam=lam
    )

    t = np.arange(weeks) / max(weeks - 1, 1)
    fourier = fourier_features(dates.to_numpy("datetime64[D]"), 365.25 / 7, config.harmonics)
    price_index = 1 + 0.05 * np.cumsum(rng.normal(0, 0.2, weeks)) / np.sqrt(weeks)
    baseline = config.baseline_level * (
        1.0 + 0.15 * t + fourier @ rng.normal(0, 0.06, fourier.shape[1]) - 0.8 * (price_index - 1)
    )
    paths = np.stack([np.asarray(multiplier.get(c, np.ones(weeks)), dtype=float) for c in names], axis=1)
    effective = saturated * paths
    share = rng.uniform(*config.share_range, len(names))
    coef = share * baseline.sum() / (1 - share.sum()) / effective.sum(axis=0)
    if "roas" in truth:
        roas = _fixed_or(truth["roas"], names, np.full(len(names), np.nan))
        coef = np.where(np.isnan(roas), coef, roas * spend.sum(axis=0) / effective.sum(axis=0))
    contributions = effective * coef
    noise_sd = config.noise * config.baseline_level
    y = baseline + contributions.sum(axis=1) + rng.normal(0, noise_sd, weeks)
    columns = {"date": dates, "y": y, **dict(zip(names, media.T, strict=True)), "price_index": price_index}
    priced = (*config.media_units, *config.reach_frequency)
    columns.update({f"{c}_spend": spend[:, i] for i, c in enumerate(names) if c in priced})
    columns.update({f"{c}_frequency": f for c, f in frequency.items()})
    indirect_coef = np.zeros(len(names))
    if config.mediated:
        mediator, indirect_coef = _simulate_mediator(config, names, saturated, fourier, rng)
        y += mediator * config.mediator_share * config.baseline_level / config.mediator_level
        contributions = contributions + saturated * indirect_coef
        columns.update(y=y, branded_search=mediator)
    treatment_contribution = {}
    if config.promo_lift:
        promo = (rng.uniform(size=weeks) < 0.15).astype(float)
        lift = config.promo_lift * config.baseline_level * promo
        y += lift
        columns.update(y=y, promo=promo)
        treatment_contribution["promo"] = float(lift.sum())

    data = pd.DataFrame(columns)
    totals = contributions.sum(axis=0)
    weights = adstock.weights(np, alpha=alpha)
    truth_out = Truth(
        alpha=dict(zip(names, alpha, strict=True)),
        lam=dict(zip(names, lam, strict=True)),
        coef=dict(zip(names, coef, strict=True)),
        contributions=pd.DataFrame(contributions, columns=names, index=dates),
        roas=dict(zip(names, totals / spend.sum(axis=0), strict=True)),
        contribution_share=dict(zip(names, totals / y.sum(), strict=True)),
        adstock_half_life=dict(zip(names, half_life(weights), strict=True)),
        half_saturation_spend=dict(  # in money: media units at the average price
            zip(names, LogisticSaturation().half_saturation(lam=lam) * scale * spend.sum(0) / media.sum(0), strict=True)
        ),
        noise_sd=noise_sd,
        multiplier={c: paths[:, i] for i, c in enumerate(names) if c in multiplier},
        indirect_coef={c: float(indirect_coef[i]) for i, c in enumerate(names) if c in config.mediated},
        indirect_contribution={
            c: float(indirect_coef[i] * saturated[:, i].sum()) for i, c in enumerate(names) if c in config.mediated
        },
        treatment_contribution=treatment_contribution,
    )
    return SimulatedMarket(data=data, truth=truth_out, config=config)


def _simulate_mediator(
    config: SimulationConfig, names: list[str], saturated: np.ndarray, fourier: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The mediator's weekly series (own seasonal baseline, the mediated channels' lift, noise) and each
    channel's indirect coefficient: outcome units per unit of saturation that run through the mediator."""
    unknown = sorted(set(config.mediated) - set(names))
    if unknown:
        raise ValueError(f"mediated channels {unknown} are not among the simulated channels {names}")
    level = config.mediator_level
    lift = np.array([rng.uniform(*config.mediator_lift_range) if c in config.mediated else 0.0 for c in names])
    own = level * (1.0 + fourier @ rng.normal(0, 0.05, fourier.shape[1]))
    mediator = own + level * saturated @ lift + rng.normal(0, config.mediator_noise * level, len(own))
    effect = config.mediator_share * config.baseline_level / level  # outcome units per query
    return mediator, effect * level * lift


def _fixed_or(fixed: Mapping[str, float] | None, names: list[str], drawn: np.ndarray) -> np.ndarray:
    """The fixed value of each channel where given, else the drawn one."""
    fixed = fixed or {}
    return np.array([fixed.get(c, drawn[i]) for i, c in enumerate(names)], dtype=float)


@dataclass(frozen=True)
class SimulatedBrand:
    """A brand's markets, simulated from one brand-level distribution of channel parameters."""

    markets: dict[str, SimulatedMarket]
    brand_roas: dict[str, float]  # the brand-level (median) ROAS each market's is drawn around


def simulate_brand(
    weeks: Mapping[str, int],
    channels: tuple[str, ...] = ("tv", "search", "social", "display"),
    market_sd: float = 0.25,
    end: str = "2024-12-30",
    seed: int = 0,
    noise: float = SimulationConfig.noise,
) -> SimulatedBrand:
    """Markets (name -> weeks of history, all ending at ``end``) whose ROAS, adstock decay and
    saturation are drawn around brand-level values: log ROAS and log lam with sd ``market_sd``,
    logit alpha with sd ``market_sd``. Spend levels and baseline sizes differ by market; ``noise``
    is each market's noise sd as a fraction of its baseline level."""
    rng = np.random.default_rng(seed)
    brand_roas = np.exp(rng.uniform(np.log(0.8), np.log(3.0), len(channels)))
    brand_alpha = rng.uniform(0.2, 0.6, len(channels))
    brand_lam = rng.uniform(1.0, 3.0, len(channels))
    markets = {}
    for index, (market, length) in enumerate(weeks.items()):
        baseline = float(rng.uniform(50_000, 200_000))
        start = pd.Timestamp(end) - pd.Timedelta(weeks=length - 1)
        config = SimulationConfig(
            weeks=length,
            channels=channels,
            start=str(start.date()),
            baseline_level=baseline,
            spend_level_range=(0.02 * baseline, 0.08 * baseline),
            noise=noise,
        )
        logit_alpha = np.log(brand_alpha / (1 - brand_alpha)) + rng.normal(0, market_sd, len(channels))

        def by_channel(values: np.ndarray) -> dict[str, float]:
            return dict(zip(channels, values.tolist(), strict=True))

        truth = {
            "roas": by_channel(brand_roas * np.exp(rng.normal(0, market_sd, len(channels)))),
            "alpha": by_channel(1 / (1 + np.exp(-logit_alpha))),
            "lam": by_channel(brand_lam * np.exp(rng.normal(0, market_sd, len(channels)))),
        }
        markets[market] = simulate_market(config, seed=seed * 1000 + index + 1, truth=truth)
    return SimulatedBrand(markets=markets, brand_roas=dict(zip(channels, brand_roas.tolist(), strict=True)))


def simulation_spec(
    config: SimulationConfig | None = None,
    name: str = "simulated",
    mediator: Literal["model", "control", "omit"] = "model",
) -> ModelSpec:
    """The model structure that matches the simulator (the structure is known; the values are not).

    With mediated channels, ``mediator`` says what to do with ``branded_search``: model it as a
    mediator (the matching structure), or, as comparisons, use it as a plain control or leave it out.
    """
    config = config or SimulationConfig()
    controls: list[dict[str, str]] = [{"name": "price_index"}]
    mediators = []
    if config.mediated and mediator == "model":
        mediators = [{"name": "branded_search", "channels": list(config.mediated)}]
    elif config.mediated and mediator == "control":
        controls.append({"name": "branded_search"})
    return ModelSpec.from_dict(
        {
            "name": name,
            "date_column": "date",
            "target": {"column": "y"},
            "channels": [
                {
                    "name": c,
                    "adstock": {"type": "geometric", "l_max": config.l_max},
                    "saturation": {"type": "logistic"},
                    "organic": c in config.organic,
                    "spend_column": f"{c}_spend" if c in (*config.media_units, *config.reach_frequency) else None,
                    "reach_frequency": {"frequency_column": f"{c}_frequency"} if c in config.reach_frequency else None,
                }
                for c in config.channels
            ],
            "controls": controls,
            "seasonality": {"harmonics": config.harmonics},
            "trend": {"type": "linear"},
            "mediators": mediators,
            "treatments": [{"name": "promo"}] if config.promo_lift else [],
        }
    )


def truth_response_model(market: SimulatedMarket) -> ResponseModel:
    """The optimiser's view of the *true* market: one "draw" holding the true parameters (a channel in
    media units at its average price over the history).

    Used to score recommendations: a plan's true response is what the market would really deliver.
    """
    config = market.config
    names = list(config.channels)
    priced = (*config.media_units, *config.reach_frequency)
    spend = market.data[[f"{c}_spend" if c in priced else c for c in names]].to_numpy(float)
    media = market.data[names].to_numpy(float)
    layout = ChannelLayout.from_spec(simulation_spec(config))
    (adstock,), (saturation,) = layout.adstock, layout.saturation
    lags = config.l_max - 1
    frequency, half_frequency = None, {}
    if config.reach_frequency:  # reach is bought at the history's average frequency
        reach = market.data[list(config.reach_frequency)].to_numpy(float)
        shown = market.data[[f"{c}_frequency" for c in config.reach_frequency]].to_numpy(float)
        frequency = average_frequency(reach, shown)
        half_frequency = {HALF_FREQUENCY: np.full((1, len(config.reach_frequency)), config.half_frequency)}
    return ResponseModel(
        channels=names,
        layout=layout,
        params={
            adstock.variable("alpha"): np.array([[market.truth.alpha[c] for c in names]]),
            saturation.variable("lam"): np.array([[market.truth.lam[c] for c in names]]),
            # the true total effect: direct plus through the mediator
            CHANNEL_COEF: np.array([[market.truth.coef[c] + market.truth.indirect_coef.get(c, 0.0) for c in names]]),
            **half_frequency,
        },
        spend_scale=media.max(axis=0) * spend.sum(axis=0) / media.sum(axis=0),  # at the average price
        target_scale=1.0,
        l_max=config.l_max,
        history=spend[-lags:] if lags else np.zeros((0, len(names))),
        frequency=frequency,
    )


def simulate_lift_tests(
    market: SimulatedMarket,
    channels: list[str] | None = None,
    weeks: int = 4,
    spend_change: float = -1.0,
    relative_se: float = 0.1,
    bias: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """One lift test per channel, generated from the truth (columns as in ``mmm_models.lift``).

    Each test changes the channel's spend by ``spend_change`` times its actual spend, for ``weeks``
    weeks at a random place in the history where the channel spends (-1, the default, is a go-dark
    holdout, the usual geo-experiment design for calibrating an MMM). The observed lift is the true
    lift (window and carry-over, adstock included) times ``bias`` (1 = honest), plus noise with
    standard error ``relative_se`` of the true lift.
    """
    rng = np.random.default_rng(seed)
    config, data = market.config, market.data
    channels = channels or list(config.channels)
    rows = []
    for channel in channels:
        starts = np.arange(config.l_max, len(data) - weeks - config.l_max)
        window_min = np.array([data[channel].iloc[s : s + weeks].min() for s in starts])
        candidates = starts[window_min > 0] if (window_min > 0).any() else starts[[np.argmax(window_min)]]
        first = int(rng.choice(candidates))
        delta = spend_change * data[channel].iloc[first : first + weeks].sum()
        rows.append(
            {
                "channel": channel,
                "start": data["date"].iloc[first],
                "end": data["date"].iloc[first + weeks - 1],
                "spend_delta": delta,
            }
        )
    tests = pd.DataFrame(rows)
    true_lift = true_lifts(market, tests)
    se = relative_se * np.abs(true_lift)
    return tests.assign(lift=bias * true_lift + rng.normal(0, se), lift_se=se, true_lift=true_lift)


def true_lifts(market: SimulatedMarket, tests: pd.DataFrame) -> np.ndarray:
    """The true lift of each test (columns ``channel, start, end, spend_delta``; window and carry-over, as
    ``mmm_models.lift`` models it), from the simulator's parameters."""
    truth, data = truth_response_model(market), market.data
    scaling = ScalingFactors(
        target=1.0,
        spend=dict(zip(truth.channels, truth.spend_scale, strict=True)),
        controls={},
        time_origin=str(data["date"].iloc[0].date()),
        time_span_weeks=float(len(data) - 1),
    )
    frame = tests[["channel", "start", "end", "spend_delta"]].assign(lift=0.0, lift_se=1.0)
    design = build_lift_design(simulation_spec(market.config), frame, data, scaling)
    return lift_effects(np, truth.layout, design.model_data(), truth.params)[0, : len(tests)]
