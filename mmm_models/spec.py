"""Model specification: a frozen pydantic model, loaded from YAML and validated once.

An invalid spec is rejected here with a message that names the field, so it never reaches the
sampler. The spec says *what* to model; the data and its scaling say *where*.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mmm_models.priors import Prior
from mmm_models.time_varying import TimeVaryingSpec
from mmm_models.transforms import (
    DelayedAdstock,
    GeometricAdstock,
    HillSaturation,
    LogisticSaturation,
    MichaelisMentenSaturation,
    WeibullAdstock,
)

AdstockSpec = Annotated[GeometricAdstock | DelayedAdstock | WeibullAdstock, Field(discriminator="type")]
SaturationSpec = Annotated[LogisticSaturation | HillSaturation | MichaelisMentenSaturation, Field(discriminator="type")]

EFFECT_DEFAULT_PRIORS: dict[str, Prior] = {
    # Share of the target's total over the training window that the channel contributes.
    "contribution_share": Prior(dist="Beta", params={"alpha": 1, "beta": 4}),
    # Outcome units per unit of spend over the training window; state it in your business's units.
    "roas": Prior(dist="LogNormal", params={"mu": 0, "sigma": 1}),
    # The channel's effect at full saturation, in units of the scaled target.
    "coefficient": Prior(dist="HalfNormal", params={"sigma": 1}),
}


OPTIONAL_INPUTS = ("mediators", "treatments")  # spec fields that are empty unless a spec opts in
OPTIONAL_CHANNEL_FIELDS: dict[str, Any] = {
    "organic": False,
    "spend_column": None,
    "reach_frequency": None,
}  # channel fields, and their default


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChannelEffect(_Frozen):
    """How a channel's effect size is parameterised, and its prior.

    ``contribution_share`` (the default) and ``roas`` put the prior on a business quantity and
    derive the coefficient from it; this also decorrelates the effect from the saturation
    parameters, which keeps the sampler's trees shallow.
    """

    kind: Literal["contribution_share", "roas", "coefficient"] = "contribution_share"
    prior: Prior | None = None

    def resolved_prior(self) -> Prior:
        return self.prior or EFFECT_DEFAULT_PRIORS[self.kind]


class ReachFrequency(_Frozen):
    """A reach and frequency channel (as Meridian's R&F channels): the channel's own column is its reach
    (people reached in the week) and ``frequency_column`` the average exposures per person reached.

    Its media is ``reach x f / (f + half_frequency)``: reach counts in full, frequency with diminishing
    returns (``half_frequency``: the frequency that gives half of the most a person can yield). Adstock and
    saturation then act as on any channel. Budgets buy reach at the historical average frequency.
    """

    frequency_column: str = Field(min_length=1)
    half_frequency_prior: Prior = Prior(dist="LogNormal", params={"mu": 1.1, "sigma": 0.5})  # median 3


class ChannelSpec(_Frozen):
    """One media channel: its spend column, adstock, saturation and effect prior.

    An ``organic`` channel (email sends, organic social posts) has no spend: its column is its
    activity. It gets adstock, saturation and a contribution, but no ROAS, and the budget optimiser
    does not allocate to it.

    With ``spend_column``, the channel's own column is its media in its own units (impressions,
    GRPs, reach x frequency), which is what adstock and saturation act on, and ``spend_column`` holds
    its spend: ROAS, ROAS priors and the optimiser's budgets stay in money, converted with the
    channel's cost per unit over the training window.
    """

    name: str = Field(min_length=1)
    organic: bool = False
    spend_column: str | None = Field(default=None, min_length=1)
    reach_frequency: ReachFrequency | None = None
    adstock: AdstockSpec = Field(default_factory=GeometricAdstock)
    saturation: SaturationSpec = Field(default_factory=LogisticSaturation)
    effect: ChannelEffect = Field(default_factory=ChannelEffect)

    @model_validator(mode="before")
    @classmethod
    def _default_transform_types(cls, value: Any) -> Any:
        """``adstock: {l_max: 4}`` means the default (geometric) adstock with that l_max."""
        if isinstance(value, dict):
            value = dict(value)
            for key, default in (("adstock", "geometric"), ("saturation", "logistic")):
                if isinstance(value.get(key), dict) and "type" not in value[key]:
                    value[key] = {"type": default, **value[key]}
        return value


class ControlSpec(_Frozen):
    """A control variable (a data column, scaled by its largest absolute value) with a learned weight."""

    name: str = Field(min_length=1)
    prior: Prior = Prior(dist="Normal", params={"mu": 0, "sigma": 1})


class TreatmentSpec(_Frozen):
    """A non-media treatment (a promotion's depth or flag, a price): a data column whose effect is
    reported as a contribution, like a channel's, not absorbed into the baseline.

    Its term is linear: ``coef x (x - reference) / scale``, ``scale`` the column's largest absolute
    value. The contribution is measured against ``reference``: zero (no promotion) or the training
    window's mean (a price). The prior sets the sign: Normal for either, HalfNormal for a positive
    effect, a TruncatedNormal with ``upper: 0`` for a negative one.
    """

    name: str = Field(min_length=1)
    reference: Literal["zero", "mean"] = "zero"
    prior: Prior = Prior(dist="Normal", params={"mu": 0, "sigma": 1})


class EventSpec(_Frozen):
    """A one-off or recurring event: the weeks containing ``dates`` get a dummy with a learned weight."""

    name: str = Field(min_length=1)
    dates: list[dt.date] = Field(min_length=1)
    prior: Prior = Prior(dist="Normal", params={"mu": 0, "sigma": 1})


class MediatorSpec(_Frozen):
    """A funnel mediator: a data column (e.g. branded search queries) that upper-funnel channels drive.

    The mediator gets its own likelihood: its scaled series is a regression on the listed channels'
    adstocked, saturated media (``channel_prior``: each channel's lift of the mediator at full
    saturation, in units of the scaled mediator) plus its own baseline (level, trend, seasonality).
    The target gets ``effect_prior`` x the observed, scaled mediator. A channel's total effect is
    its direct effect plus the part that runs through the mediator (channel -> mediator -> target).
    """

    name: str = Field(min_length=1)
    channels: list[str] = Field(min_length=1)
    effect_prior: Prior = Prior(dist="Normal", params={"mu": 0, "sigma": 1})
    channel_prior: Prior = Prior(dist="HalfNormal", params={"sigma": 1})
    baseline_sd: float = Field(default=0.5, gt=0, description="sd of its trend and seasonality coefficients")
    noise_prior: Prior = Prior(dist="HalfNormal", params={"sigma": 0.25})


class SeasonalitySpec(_Frozen):
    """Fourier seasonality; ``harmonics: 0`` turns it off."""

    period_weeks: float = Field(default=365.25 / 7, gt=1)
    harmonics: int = Field(default=2, ge=0, le=20)
    prior: Prior = Prior(dist="Normal", params={"mu": 0, "sigma": 0.5})


class TrendSpec(_Frozen):
    """Linear trend, or piecewise-linear with changepoints spread over the first 80% of history."""

    type: Literal["none", "linear", "piecewise"] = "linear"
    changepoints: int = Field(default=0, ge=0, le=50)
    slope_prior: Prior = Prior(dist="Normal", params={"mu": 0, "sigma": 1})
    changepoint_prior: Prior = Prior(dist="Laplace", params={"mu": 0, "b": 0.25})

    @model_validator(mode="after")
    def _check_changepoints(self) -> TrendSpec:
        if self.type == "piecewise" and self.changepoints < 1:
            raise ValueError("a piecewise trend needs changepoints >= 1")
        if self.type != "piecewise" and self.changepoints:
            raise ValueError(f"changepoints are only used by a piecewise trend, not {self.type!r}")
        return self


class TargetSpec(_Frozen):
    """The outcome column and its likelihood."""

    column: str = Field(min_length=1)
    likelihood: Literal["normal", "student_t"] = "normal"
    link: Literal["identity", "log"] = "identity"
    noise_prior: Prior = Prior(dist="HalfNormal", params={"sigma": 0.25})
    nu_prior: Prior = Prior(dist="Gamma", params={"alpha": 2, "beta": 0.1})


class PoolingSpec(_Frozen):
    """How a brand model (one model over a brand's markets) shares strength between markets.

    Each market's channel effect is the brand's effect moved by ``effect_sd`` x a standard normal, on
    the link scale of the effect's prior (logit for a share, log for a positive ROAS or coefficient,
    identity for a Normal coefficient): a non-centred hierarchy. Adstock and saturation parameters
    are pooled the same way when ``transforms`` is ``pooled``; ``shared`` gives the brand one value
    for every market (only the effect varies by market: fewer parameters, faster sampling);
    ``independent`` gives every market its own, with the channel's prior.
    Channels listed together in ``channel_groups`` (e.g. upper-funnel video; they must share one
    effect kind and prior) draw their brand-level effects around one group effect, drawn from that
    prior, with spread ``group_sd``. Used only when the unit is a brand.
    ``population_column`` names a column holding each market's population (one value per market):
    target and spend are then scaled per capita on one brand-wide scale, so that markets of different
    sizes pool on comparable parameters (``data.per_capita_scalings``); results stay in business units.
    """

    effect_sd: Prior = Prior(dist="HalfNormal", params={"sigma": 0.3})
    transforms: Literal["pooled", "shared", "independent"] = "pooled"
    transform_sd: Prior = Prior(dist="HalfNormal", params={"sigma": 0.3})
    channel_groups: dict[str, list[str]] = Field(default_factory=dict)
    group_sd: Prior = Prior(dist="HalfNormal", params={"sigma": 0.3})
    population_column: str | None = Field(default=None, min_length=1)

    def group_of(self, channel: str) -> str | None:
        return next((name for name, members in self.channel_groups.items() if channel in members), None)


class ModelSpec(_Frozen):
    """Everything that defines one MMM, independent of which market's data it is fitted to."""

    name: str = Field(min_length=1)
    date_column: str = "date"
    target: TargetSpec
    channels: list[ChannelSpec] = Field(min_length=1)
    controls: list[ControlSpec] = Field(default_factory=list)
    events: list[EventSpec] = Field(default_factory=list)
    seasonality: SeasonalitySpec = Field(default_factory=SeasonalitySpec)
    trend: TrendSpec = Field(default_factory=TrendSpec)
    intercept_prior: Prior = Prior(dist="Normal", params={"mu": 0, "sigma": 1})
    min_weeks: int = Field(default=26, ge=1, description="shortest history a market may be fitted on")
    time_varying: TimeVaryingSpec | None = None
    pooling: PoolingSpec = Field(default_factory=PoolingSpec)
    mediators: list[MediatorSpec] = Field(default_factory=list)
    treatments: list[TreatmentSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_names(self) -> ModelSpec:
        names = [c.name for c in self.channels] + [c.name for c in self.controls] + [e.name for e in self.events]
        names += [m.name for m in self.mediators] + [t.name for t in self.treatments] + self.spend_columns
        names += self.frequency_columns
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"channel, control and event names must be unique; repeated: {duplicates}")
        if self.target.column in names or self.date_column in names:
            raise ValueError("the target and date columns cannot also be another input (channel, control, ...)")
        channels = set(self.channel_names)
        listed = [c for m in (self.time_varying.media if self.time_varying else []) for c in m.channels]
        listed += [c for members in self.pooling.channel_groups.values() for c in members]
        unknown = sorted(set(listed) - channels)
        if unknown:
            raise ValueError(f"time_varying and pooling name channels that are not in the spec: {unknown}")
        grouped = [c for members in self.pooling.channel_groups.values() for c in members]
        if len(grouped) != len(set(grouped)):
            raise ValueError("a channel can belong to one channel group only")
        effects = {c.name: (c.effect.kind, c.effect.resolved_prior().model_dump_json()) for c in self.channels}
        for group, members in self.pooling.channel_groups.items():
            if not members:
                raise ValueError(f"channel group {group!r} lists no channels")
            if len({effects[c] for c in members}) > 1:
                raise ValueError(
                    f"the channels of group {group!r} ({members}) must share one effect kind and prior: the "
                    "group effect is drawn from it"
                )
        if self.target.link == "log" and any(c.effect.kind != "coefficient" for c in self.channels):
            bad = [c.name for c in self.channels if c.effect.kind != "coefficient"]
            raise ValueError(
                f"with a log link, channel effects are multiplicative: use effect kind 'coefficient' for {bad}"
            )
        self._check_mediators()
        organic_spend = [c.name for c in self.channels if c.organic and c.spend_column]
        if organic_spend:
            raise ValueError(f"organic channels have no spend column: {organic_spend}")
        unpriced = [c.name for c in self.channels if c.reach_frequency and not c.spend_column]
        if unpriced:
            raise ValueError(f"reach and frequency channels need a spend_column: {unpriced}")
        organic_roas = [c.name for c in self.channels if c.organic and c.effect.kind == "roas"]
        if organic_roas:
            raise ValueError(f"organic channels have no spend, so no ROAS prior: {organic_roas}")
        return self

    def _check_mediators(self) -> None:
        for mediator in self.mediators:
            unknown = sorted(set(mediator.channels) - set(self.channel_names))
            if unknown:
                raise ValueError(f"mediator {mediator.name!r} names channels that are not in the spec: {unknown}")
            if len(set(mediator.channels)) != len(mediator.channels):
                raise ValueError(f"mediator {mediator.name!r} lists a channel twice")
        if self.mediators and self.target.link != "identity":
            raise ValueError("mediators need an identity link: direct and indirect effects then add up")

    def mediator_map(self) -> np.ndarray:
        """(mediators, channels): 1 where the channel drives the mediator."""
        return np.array([[float(c in m.channels) for c in self.channel_names] for m in self.mediators]).reshape(
            len(self.mediators), len(self.channels)
        )

    @property
    def channel_names(self) -> list[str]:
        return [c.name for c in self.channels]

    @property
    def paid_channels(self) -> list[str]:
        """Channels with spend: the ones with a ROAS and a budget."""
        return [c.name for c in self.channels if not c.organic]

    @property
    def spend_columns(self) -> list[str]:
        """The spend columns of channels whose own column is in media units."""
        return [c.spend_column for c in self.channels if c.spend_column]

    @property
    def frequency_columns(self) -> list[str]:
        """The frequency columns of reach and frequency channels."""
        return [c.reach_frequency.frequency_column for c in self.channels if c.reach_frequency]

    @property
    def reach_frequency_channels(self) -> list[str]:
        return [c.name for c in self.channels if c.reach_frequency]

    @property
    def max_l_max(self) -> int:
        return max(c.adstock.l_max for c in self.channels)

    def required_weeks(self) -> int:
        """Fewest weeks a market needs: ``min_weeks``, and at least twice the longest adstock."""
        return max(self.min_weeks, 2 * self.max_l_max)

    def structure_key(self) -> str:
        """A hash of what shapes the model graph; equal keys can share one compiled sampler.

        Prior *values* are data of the graph too, but they are baked in as constants, so they are
        part of the key; the spec's name, market data and scaling are not: two brands with the same
        structure share one compilation.
        """
        # inputs added later are left out while unused, so existing specs keep their key
        unused = {field for field in OPTIONAL_INPUTS if not getattr(self, field)}
        shape = self.model_dump(mode="json", exclude={"name", *unused})
        for channel in shape["channels"]:
            for option, default in OPTIONAL_CHANNEL_FIELDS.items():
                if channel[option] == default:
                    del channel[option]
        if shape["pooling"]["population_column"] is None:
            del shape["pooling"]["population_column"]
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_yaml(cls, path: str | Path) -> ModelSpec:
        """Load and validate a spec file; errors name the file and the offending field."""
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise SpecError(f"{path}: not valid YAML: {exc}") from exc
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: Any, source: str = "spec") -> ModelSpec:
        """Validate a spec given as a dict."""
        if not isinstance(raw, dict):
            raise SpecError(f"{source}: a model spec must be a mapping, got {type(raw).__name__}")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise SpecError(f"{source}: invalid model spec\n{format_validation_error(exc)}") from exc

    def to_yaml(self) -> str:
        """The complete spec as YAML (defaults written out, so the file says what was fitted)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


class SpecError(ValueError):
    """A model spec that cannot be used, with the field that is wrong."""


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: the dotted field path, then what is wrong with it."""
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(root)"
        lines.append(f"  {location}: {error['msg']}")
    return "\n".join(lines)
