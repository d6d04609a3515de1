"""Market data: validation, scaling factors, and the design arrays the model is built on.

``validate_market_frame`` turns every data problem into a ``DataError`` that says what is wrong and
where (column, weeks). ``ScalingFactors`` are computed once per market and stored with the fitted
model, so a refit on newer data keeps the parameters' meaning. ``build_design`` turns a frame into
plain NumPy arrays, padded at the front to a bucket of weeks so markets of similar length share one
compiled sampler; padded and held-out weeks are masked out of the likelihood.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from mmm_models.spec import ModelSpec
from mmm_models.time_varying import basis

WEEK_BUCKET = 26  # weeks; markets are padded up to a multiple of this to share compiled samplers


class DataError(ValueError):
    """Market data that cannot be modelled, with the reason."""


def validate_market_frame(
    spec: ModelSpec,
    frame: pd.DataFrame,
    market: str = "market",
    is_plan: bool = False,
    allow_target_gaps: bool = False,
) -> pd.DataFrame:
    """Check one market's weekly data against the spec and return it sorted by week.

    Raises ``DataError`` for missing columns, unparseable or duplicate dates, weeks that do not
    start on Monday, missing weeks, NaN values, negative spend, a constant target, a non-positive
    target under a log link, and too little history. A spend plan (``is_plan``) has no target and
    may be of any length. With ``allow_target_gaps``, weeks whose target is NaN are kept as gaps:
    the model masks them out of the likelihood (their spend still feeds the adstock of later weeks).
    """
    target = [] if is_plan else [spec.target.column]
    # a plan may leave out the mediators: the model then uses their expected value
    mediators = [m.name for m in spec.mediators if not is_plan or m.name in frame.columns]
    inputs = [*spec.channel_names, *spec.spend_columns, *spec.frequency_columns, *(c.name for c in spec.controls)]
    inputs += [t.name for t in spec.treatments]
    columns = [spec.date_column, *target, *inputs, *mediators]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{market}: missing columns {missing}; found {sorted(map(str, frame.columns))}")
    if frame.empty:
        raise DataError(f"{market}: no rows")
    data = frame[columns].copy()
    try:
        data[spec.date_column] = pd.to_datetime(data[spec.date_column])
    except (ValueError, TypeError) as exc:
        raise DataError(f"{market}: column {spec.date_column!r} has values that are not dates ({exc})") from exc
    data = data.sort_values(spec.date_column).reset_index(drop=True)
    dates = data[spec.date_column]
    duplicated = dates[dates.duplicated()].dt.date.unique()
    if len(duplicated):
        raise DataError(f"{market}: duplicate weeks {_few(duplicated)}")
    not_monday = dates[dates.dt.dayofweek != 0].dt.date
    if len(not_monday):
        raise DataError(f"{market}: weeks must start on Monday; these do not: {_few(not_monday)}")
    gaps = dates.diff().dt.days.iloc[1:]
    if (gaps != 7).any():
        after = dates.iloc[:-1][(gaps != 7).to_numpy()].dt.date
        raise DataError(f"{market}: missing weeks after {_few(after)}; weekly data must be continuous")
    for column in columns[1:]:
        values = pd.to_numeric(data[column], errors="coerce")
        missing_ok = allow_target_gaps and not is_plan and column == spec.target.column
        bad = data.loc[values.isna() & ~(missing_ok & data[column].isna()), spec.date_column].dt.date
        if len(bad):
            raise DataError(f"{market}: column {column!r} has missing or non-numeric values in weeks {_few(bad)}")
        data[column] = values.astype(float)
    for channel in [*spec.channel_names, *spec.spend_columns, *spec.frequency_columns]:
        negative = data.loc[data[channel] < 0, spec.date_column].dt.date
        if len(negative):
            raise DataError(f"{market}: channel {channel!r} has negative spend in weeks {_few(negative)}")
    if is_plan:
        return data
    target = data[spec.target.column]
    if target.nunique() < 2:
        raise DataError(f"{market}: target {spec.target.column!r} is constant; there is nothing to explain")
    if spec.target.link == "log" and (target <= 0).any():
        raise DataError(f"{market}: a log link needs a positive target; {int((target <= 0).sum())} weeks are <= 0")
    observed = int(target.notna().sum())
    if observed < spec.required_weeks():
        raise DataError(
            f"{market}: {observed} weeks of history, the model needs at least {spec.required_weeks()} "
            f"(min_weeks {spec.min_weeks}, and twice the longest adstock l_max {spec.max_l_max})"
        )
    return data


def _few(values: object, limit: int = 5) -> str:
    items = [str(v) for v in list(values)]  # type: ignore[call-overload]
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _time_axis(spec: ModelSpec, data: pd.DataFrame) -> dict[str, str | float]:
    """Origin and span (in weeks) of a training window: time runs from 0 to 1 over it."""
    return {
        "time_origin": str(data[spec.date_column].iloc[0].date()),
        "time_span_weeks": float(max(len(data) - 1, 1)),
    }


@dataclass(frozen=True)
class ScalingFactors:
    """Fixed per market: how raw columns map to the model's unitless scale.

    Spend is divided by the channel's largest weekly spend, the target by its largest value (or, with
    a log link, by its mean before the log), controls by their largest absolute value. Time is
    measured in units of the training window from ``time_origin``.
    """

    target: float
    spend: dict[str, float]
    controls: dict[str, float]
    time_origin: str
    time_span_weeks: float
    changepoints: list[float] = field(default_factory=list)
    mediators: dict[str, float] = field(default_factory=dict)
    treatments: dict[str, float] = field(default_factory=dict)
    treatment_reference: dict[str, float] = field(default_factory=dict)  # the value a contribution is measured from
    cost_per_unit: dict[str, float] = field(default_factory=dict)  # money per media unit, channels in media units
    population: float | None = None  # set when target and spend are scaled per capita (see per_capita_scalings)

    @classmethod
    def compute(cls, spec: ModelSpec, data: pd.DataFrame) -> ScalingFactors:
        """Scaling factors from a validated training frame."""
        target = data[spec.target.column]
        target_scale = float(target.mean() if spec.target.link == "log" else target.abs().max())
        spend = {}
        for channel in spec.channel_names:
            largest = float(data[channel].max())
            if largest <= 0:
                raise DataError(
                    f"channel {channel!r} has no spend in the training window; its effect cannot be estimated"
                )
            spend[channel] = largest
        controls = {c.name: float(data[c.name].abs().max()) or 1.0 for c in spec.controls}
        mediators = {m.name: float(data[m.name].abs().max()) or 1.0 for m in spec.mediators}
        cost_per_unit = {}
        for channel in (c for c in spec.channels if c.spend_column):
            cost = float(data[channel.spend_column].sum())
            if cost <= 0:
                raise DataError(
                    f"channel {channel.name!r}: no spend in {channel.spend_column!r}; it has no cost per unit"
                )
            cost_per_unit[channel.name] = cost / float(data[channel.name].sum())
        treatments = {t.name: float(data[t.name].abs().max()) or 1.0 for t in spec.treatments}
        reference = {t.name: float(data[t.name].mean()) if t.reference == "mean" else 0.0 for t in spec.treatments}
        n_changepoints = spec.trend.changepoints if spec.trend.type == "piecewise" else 0
        return cls(
            target=target_scale,
            spend=spend,
            controls=controls,
            **_time_axis(spec, data),
            changepoints=[float(x) for x in np.linspace(0, 0.8, n_changepoints + 2)[1:-1]],
            mediators=mediators,
            treatments=treatments,
            treatment_reference=reference,
            cost_per_unit=cost_per_unit,
        )

    def for_window(self, spec: ModelSpec, data: pd.DataFrame) -> ScalingFactors:
        """These value scales with the time axis of another training window (a refit's): the trend
        and the HSGP basis are defined over the window they are fitted on."""
        return replace(self, **_time_axis(spec, data))

    def check_matches(self, spec: ModelSpec) -> None:
        """Refuse to reuse factors computed for a different set of channels or controls."""
        if set(self.spend) != set(spec.channel_names) or set(self.controls) != {c.name for c in spec.controls}:
            raise DataError("stored scaling factors are for other channels or controls than this spec")
        if set(self.mediators) != {m.name for m in spec.mediators}:
            raise DataError("stored scaling factors are for other mediators than this spec")
        if set(self.cost_per_unit) != {c.name for c in spec.channels if c.spend_column}:
            raise DataError("stored scaling factors are for other channels in media units than this spec")
        if set(self.treatments) != {t.name for t in spec.treatments}:
            raise DataError("stored scaling factors are for other treatments than this spec")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> ScalingFactors:
        return cls(**raw)  # type: ignore[arg-type]


def per_capita_scalings(
    spec: ModelSpec, training: Mapping[str, pd.DataFrame], populations: Mapping[str, float]
) -> dict[str, ScalingFactors]:
    """Scaling factors that put a brand's markets on one per-capita scale (as Meridian does).

    ``training`` holds each market's validated training weeks. A market's spend scale of a channel is
    its population times the brand's largest weekly spend per capita on that channel, and its target
    scale its population times the brand's largest target per capita (the mean of the markets'
    per-capita means under a log link). So the same spend per head is the same scaled spend in every
    market, and pooled saturation and effects compare markets of different sizes like for like; the
    factors turn every result back into business units. Controls and time keep the market's scales.
    """
    for market in training:
        check_population(market, populations.get(market))
    own = {market: ScalingFactors.compute(spec, data) for market, data in training.items()}
    per_head = {market: {"target": f.target, **f.spend} for market, f in own.items()}
    brand = {
        key: (np.mean if key == "target" and spec.target.link == "log" else max)(
            [values[key] / populations[market] for market, values in per_head.items()]
        )
        for key in ("target", *spec.channel_names)
    }
    return {
        market: replace(
            factors,
            target=float(brand["target"] * populations[market]),
            spend={c: float(brand[c] * populations[market]) for c in spec.channel_names},
            population=float(populations[market]),
        )
        for market, factors in own.items()
    }


def population_from_column(frame: pd.DataFrame, column: str, market: str) -> float:
    """A market's population from a column of its frame (one value repeated on every week)."""
    if column not in frame.columns:
        raise DataError(f"{market}: population column {column!r} is missing; found {sorted(map(str, frame.columns))}")
    values = pd.to_numeric(frame[column], errors="coerce").dropna().unique()
    if len(values) != 1:
        raise DataError(f"{market}: population column {column!r} must hold one number per market, found {values[:5]}")
    return check_population(market, float(values[0]))


def check_population(market: str, population: float | None) -> float:
    """A population must be a positive, finite number."""
    if population is None or not np.isfinite(population) or population <= 0:
        raise DataError(f"{market}: population must be a positive number, got {population}")
    return float(population)


@dataclass(frozen=True)
class Design:
    """The arrays the model sees, all scaled; ``pad`` leading rows are padding, never observed."""

    dates: np.ndarray  # (weeks,) datetime64[D], padding included
    spend: np.ndarray  # (weeks, channels) original units: money, or a channel's media units
    cost: np.ndarray  # (weeks, channels) money: ``spend``, or the spend column of a channel in media units
    spend_lags: np.ndarray  # (weeks, l_max, channels) scaled spend, x[t, l, c] = spend[t - l, c]
    controls: np.ndarray  # (weeks, controls)
    events: np.ndarray  # (weeks, events)
    fourier: np.ndarray  # (weeks, 2 * harmonics)
    trend: np.ndarray  # (weeks, 1 + changepoints)
    target: np.ndarray  # (weeks,) scaled; log-scaled under a log link
    mask: np.ndarray  # (weeks,) 1 where the week enters the likelihood
    effect_scale: np.ndarray  # (channels,) turns a share or ROAS into a coefficient, see equations
    pad: int
    time_basis: dict[str, np.ndarray] = field(default_factory=dict)  # HSGP arrays, see time_varying
    mediators: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (weeks, mediators), NaN: unobserved
    treatments: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (weeks, treatments), from reference
    frequency_lags: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))  # (weeks, l_max, rf channels)

    def model_data(self) -> dict[str, np.ndarray]:
        """The arrays that change from market to market, by data-container name."""
        return {
            **({"mediators": self.mediators} if self.mediators.shape[-1] else {}),
            **({"treatments": self.treatments} if self.treatments.shape[-1] else {}),
            **({"frequency_lags": self.frequency_lags} if self.frequency_lags.shape[-1] else {}),
            "spend_lags": self.spend_lags,
            "controls": self.controls,
            "events": self.events,
            "fourier": self.fourier,
            "trend": self.trend,
            "target": self.target,
            "mask": self.mask,
            "effect_scale": self.effect_scale,
            **self.time_basis,
        }


def padded_length(weeks: int, bucket: int = WEEK_BUCKET) -> int:
    """Weeks after front padding: the next multiple of ``bucket``."""
    return int(np.ceil(weeks / bucket) * bucket)


def build_design(
    spec: ModelSpec,
    data: pd.DataFrame,
    scaling: ScalingFactors,
    holdout_weeks: int = 0,
    history: pd.DataFrame | None = None,
    bucket: int | None = WEEK_BUCKET,
) -> Design:
    """Design arrays for a validated frame.

    ``holdout_weeks`` masks the last weeks out of the likelihood. ``history`` (earlier weeks of the
    same market) feeds the adstock of the first weeks, as used for what-if plans. ``bucket`` pads the
    front with masked zero-spend weeks; ``None`` disables padding.
    """
    weeks = len(data)
    pad = padded_length(weeks, bucket) - weeks if bucket else 0
    first = data[spec.date_column].iloc[0]
    pad_dates = pd.date_range(end=first - pd.Timedelta(weeks=1), periods=pad, freq="7D") if pad else []
    dates = np.concatenate(
        [np.asarray(pad_dates, dtype="datetime64[D]"), data[spec.date_column].to_numpy("datetime64[D]")]
    )

    spend = np.zeros((pad + weeks, len(spec.channels)))
    spend[pad:] = data[spec.channel_names].to_numpy(float)
    scaled = spend / np.array([scaling.spend[c] for c in spec.channel_names])
    prior_spend = carry_over_spend(spec, history, first, scaling)
    spend_lags = lag_tensor(np.concatenate([prior_spend, scaled]), spec.max_l_max)[len(prior_spend) :]

    frequency = np.zeros((pad + weeks, len(spec.frequency_columns)))
    frequency[pad:] = data[spec.frequency_columns].to_numpy(float)
    prior_frequency = weeks_before(spec, history, first, spec.frequency_columns)
    frequency_lags = lag_tensor(np.concatenate([prior_frequency, frequency]), spec.max_l_max)[len(prior_frequency) :]

    controls = np.zeros((pad + weeks, len(spec.controls)))
    for k, control in enumerate(spec.controls):
        controls[pad:, k] = data[control.name].to_numpy(float) / scaling.controls[control.name]

    mediators = np.zeros((pad + weeks, len(spec.mediators)))
    for k, mediator in enumerate(spec.mediators):
        raw = data[mediator.name].to_numpy(float) if mediator.name in data else np.full(weeks, np.nan)
        mediators[pad:, k] = raw / scaling.mediators[mediator.name]

    treatments = np.zeros((pad + weeks, len(spec.treatments)))
    for k, treatment in enumerate(spec.treatments):
        shifted = data[treatment.name].to_numpy(float) - scaling.treatment_reference[treatment.name]
        treatments[pad:, k] = shifted / scaling.treatments[treatment.name]

    target = np.zeros(pad + weeks)
    raw_target = data[spec.target.column].to_numpy(float) if spec.target.column in data else np.full(weeks, np.nan)
    scaled_target = raw_target / scaling.target
    target[pad:] = np.log(scaled_target) if spec.target.link == "log" else scaled_target
    mask = np.zeros(pad + weeks)
    mask[pad : pad + weeks - holdout_weeks] = 1.0
    mask[pad:][np.isnan(raw_target) & (np.arange(weeks) < weeks - holdout_weeks)] = 0.0  # gaps, when allowed
    target = np.where(mask > 0, target, 0.0)
    cost = spend.copy()
    for i, channel in enumerate(spec.channels):
        if channel.spend_column:
            cost[pad:, i] = data[channel.spend_column].to_numpy(float)
    observed_spend = (mask[:, None] * cost).sum(axis=0)
    effect_scale = np.array(
        [
            observed_spend[i] / scaling.target if channel.effect.kind == "roas" else float(target.sum())
            for i, channel in enumerate(spec.channels)
        ]
    )

    return Design(
        dates=dates,
        spend=spend,
        cost=cost,
        spend_lags=spend_lags,
        controls=controls,
        events=event_dummies(spec, dates),
        fourier=fourier_features(dates, spec.seasonality.period_weeks, spec.seasonality.harmonics),
        trend=trend_features(dates, scaling),
        target=target,
        mask=mask,
        effect_scale=effect_scale,
        pad=pad,
        mediators=mediators,
        treatments=treatments,
        frequency_lags=frequency_lags,
        time_basis=(
            basis(dates, scaling.time_origin, scaling.time_span_weeks, spec.time_varying) if spec.time_varying else {}
        ),
    )


def carry_over_spend(
    spec: ModelSpec, history: pd.DataFrame | None, first_week: pd.Timestamp, scaling: ScalingFactors
) -> np.ndarray:
    """Scaled spend of the ``l_max - 1`` weeks before ``first_week``, by date (absent weeks spend 0)."""
    scales = np.array([scaling.spend[c] for c in spec.channel_names])
    return weeks_before(spec, history, first_week, spec.channel_names) / scales


def weeks_before(
    spec: ModelSpec, history: pd.DataFrame | None, first_week: pd.Timestamp, columns: list[str]
) -> np.ndarray:
    """``columns`` in the ``l_max - 1`` weeks before ``first_week``, by date (absent weeks are 0)."""
    lags = spec.max_l_max - 1
    out = np.zeros((lags, len(columns)))
    if history is None or not len(history) or not lags or not columns:
        return out
    by_week = history.set_index(pd.to_datetime(history[spec.date_column]))[columns]
    for row in range(lags):
        week = first_week - pd.Timedelta(weeks=lags - row)
        if week in by_week.index:
            out[row] = by_week.loc[week].to_numpy(float)
    return out


def lag_tensor(values: np.ndarray, l_max: int) -> np.ndarray:
    """``out[t, l, c] = values[t - l, c]``, zero before the first row."""
    weeks, channels = values.shape
    out = np.zeros((weeks, l_max, channels))
    for lag in range(l_max):
        out[lag:, lag, :] = values[: weeks - lag]
    return out


def fourier_features(dates: np.ndarray, period_weeks: float, harmonics: int) -> np.ndarray:
    """Sine and cosine pairs of the date's position in the year, for ``harmonics`` frequencies."""
    days = (dates - np.datetime64("1970-01-05", "D")).astype(float)  # a Monday, so phase is stable
    phase = 2 * np.pi * days / (7 * period_weeks)
    columns = [f(k * phase) for k in range(1, harmonics + 1) for f in (np.sin, np.cos)]
    return np.stack(columns, axis=1) if columns else np.zeros((len(dates), 0))


def trend_features(dates: np.ndarray, scaling: ScalingFactors) -> np.ndarray:
    """Time in units of the training window, then one hinge ``max(0, t - c)`` per changepoint."""
    origin = np.datetime64(dt.date.fromisoformat(scaling.time_origin), "D")
    t = (dates - origin).astype(float) / 7 / scaling.time_span_weeks
    hinges = [np.maximum(0.0, t - c) for c in scaling.changepoints]
    return np.stack([t, *hinges], axis=1)


def event_dummies(spec: ModelSpec, dates: np.ndarray) -> np.ndarray:
    """1 in each week (Monday to Sunday) that contains one of the event's dates."""
    out = np.zeros((len(dates), len(spec.events)))
    for k, event in enumerate(spec.events):
        for day in event.dates:
            week_start = np.datetime64(day - dt.timedelta(days=day.weekday()), "D")
            out[dates == week_start, k] = 1.0
    return out
