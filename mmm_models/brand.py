"""Brand models: one hierarchical model over a brand's markets, read as one model per market.

``fit_brand`` validates every market on its own (a market that fails validation is reported and left
out; the others are fitted), stacks their designs, samples the pooled posterior once, and splits it
into one ``FittedModel`` per market: that market's slice of every market-level parameter. Everything
built on ``FittedModel`` (analysis, prediction, persistence, diagnostics, tracking) therefore works
unchanged for both units. Brand-level parameters (the pooled means and spreads, GP length scales)
stay in ``BrandFit.idata``.

The steps are public so that the training job can spread them: ``prepare_brand`` (validate, scale,
stack), ``sample_brand`` (one block of the chains, ``mmm_models.chains``), and ``BrandFit.of`` or
``market_view`` on the merged posterior. ``fit_brand`` runs them in one process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import arviz as az
import numpy as np
import pandas as pd

from mmm_models import constants as C
from mmm_models.chains import CHAIN, ChainBlock, brand_level_diagnostics, brand_level_summary
from mmm_models.data import (
    DataError,
    ScalingFactors,
    check_population,
    padded_length,
    per_capita_scalings,
    population_from_column,
)
from mmm_models.equations import ChannelLayout
from mmm_models.fitted import FittedModel, PreparedMarket, drop_padding_vars, prepare_market
from mmm_models.fitting import FitSettings, SamplerRun, sample
from mmm_models.hierarchy import BrandDesign, BrandLift
from mmm_models.lift import LiftDesign
from mmm_models.spec import ModelSpec

log = logging.getLogger(__name__)


class TooFewMarketsError(DataError):
    """Fewer than two markets of a brand are valid: there is nothing to pool."""


@dataclass
class BrandFit:
    """The brand's joint posterior, one ``FittedModel`` per fitted market, and the markets left out."""

    spec: ModelSpec
    brand: str
    idata: az.InferenceData
    markets: dict[str, FittedModel]
    failed: dict[str, str] = field(default_factory=dict)  # market -> why it was left out
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls, prepared: PreparedBrand, idata: az.InferenceData, settings: FitSettings, timings: dict[str, float]
    ) -> BrandFit:
        """The brand's fit from its (merged) posterior: one view per prepared market."""
        timings = {**timings, "markets": len(prepared.markets)}
        views = {
            m: market_view(prepared.spec, idata, p, settings, m, f"{prepared.brand}/{m}", timings)
            for m, p in prepared.markets.items()
        }
        return cls(
            spec=prepared.spec,
            brand=prepared.brand,
            idata=idata,
            markets=views,
            failed=dict(prepared.failed),
            timings=timings,
        )

    def brand_diagnostics(self) -> dict[str, float]:
        """Worst R-hat and bulk ESS of the brand-level parameters (the markets' views lack them)."""
        return brand_level_diagnostics(self._brand_level)

    def brand_summary(self) -> pd.DataFrame:
        """Summary (90% HDI) of the brand-level parameters: pooled means, spreads, GP hyperparameters."""
        return self._brand_level.copy()

    @cached_property
    def _brand_level(self) -> pd.DataFrame:
        return brand_level_summary(self.idata)


def fit_brand(
    spec: ModelSpec,
    frames: Mapping[str, pd.DataFrame],
    settings: FitSettings | None = None,
    scalings: Mapping[str, ScalingFactors] | None = None,
    brand: str = "brand",
    lift_tests: Mapping[str, pd.DataFrame] | None = None,
    allow_target_gaps: bool = False,
    populations: Mapping[str, float] | None = None,
) -> BrandFit:
    """Fit one hierarchical model over ``frames`` (market -> weekly frame) of one brand.

    Markets may have different history lengths: each is padded at the front and masked. A market
    whose data is invalid is left out with its reason in ``failed``; ``TooFewMarketsError`` is raised
    when fewer than two markets remain (a brand model of one market is the independent model).
    ``populations`` (market -> population, e.g. from a markets file), or the spec's
    ``pooling.population_column`` in the frames, scales target and spend per capita on one
    brand-wide scale (``data.per_capita_scalings``); a market's stored ``scalings`` win over both.
    The steps apart (``prepare_brand``, ``sample_brand``, ``BrandFit.of``) let the training job
    sample blocks of chains in separate tasks and merge them.
    """
    settings = settings or FitSettings()
    start = time.perf_counter()
    prepared = prepare_brand(spec, frames, settings, scalings, brand, lift_tests, allow_target_gaps, populations)
    block = ChainBlock(0, settings.chains)
    run = sample_brand(prepared, settings, block)
    timings = {"sampler_s": run.seconds, "wall_s": time.perf_counter() - start, "compiled": float(run.compiled)}
    log.info(
        "%s: brand model fitted in %.1f s%s", brand, timings["wall_s"], " (compiled first)" if run.compiled else ""
    )
    return BrandFit.of(prepared, run.idata, settings, timings)


@dataclass
class PreparedBrand:
    """A brand's valid markets, ready to sample as one model, and the markets left out (with why)."""

    spec: ModelSpec
    brand: str
    markets: dict[str, PreparedMarket]
    failed: dict[str, str]
    design: BrandDesign
    lift: BrandLift | None


def prepare_brand(
    spec: ModelSpec,
    frames: Mapping[str, pd.DataFrame],
    settings: FitSettings,
    scalings: Mapping[str, ScalingFactors] | None = None,
    brand: str = "brand",
    lift_tests: Mapping[str, pd.DataFrame] | None = None,
    allow_target_gaps: bool = False,
    populations: Mapping[str, float] | None = None,
) -> PreparedBrand:
    """Validate and scale every market (as ``fit_brand`` documents) and stack the valid ones' designs."""
    scalings, lift_tests = dict(scalings or {}), lift_tests or {}
    prepared: dict[str, PreparedMarket] = {}
    failed: dict[str, str] = {}

    def prepare(market: str) -> None:
        try:
            prepared[market] = prepare_market(
                spec,
                frames[market],
                settings,
                scalings.get(market),
                market,
                lift_tests.get(market),
                allow_target_gaps,
                None,
            )
        except DataError as exc:
            log.warning("%s/%s left out of the brand model: %s", brand, market, exc)
            failed[market] = str(exc)
            prepared.pop(market, None)

    for market in frames:
        prepare(market)
    per_capita = _per_capita(spec, frames, prepared, settings, populations, scalings, failed)
    for market, scaling in per_capita.items():  # the same frames again, on the per-capita scales
        scalings[market] = scaling
        prepare(market)
    if len(prepared) < 2:
        raise TooFewMarketsError(
            f"{brand}: a brand model needs at least two valid markets; left out: {failed or 'none'}"
        )
    weeks = padded_length(max(len(p.design.mask) for p in prepared.values()))
    design = BrandDesign(list(prepared), [p.design for p in prepared.values()], weeks)
    tested = [p.lift for p in prepared.values() if p.lift is not None]
    lift = BrandLift([p.lift or _no_tests(spec) for p in prepared.values()]) if tested else None
    return PreparedBrand(spec=spec, brand=brand, markets=prepared, failed=failed, design=design, lift=lift)


def sample_brand(prepared: PreparedBrand, settings: FitSettings, block: ChainBlock) -> SamplerRun:
    """Sample ``block``'s chains of the brand model (its own seed, ``ChainBlock.seed``); the posterior's
    ``chain`` coordinate holds the block's chain numbers, so blocks merge in order."""
    log.info(
        "%s: sampling one model over %d markets (%d weeks), chains %d-%d of %d x %d draws (%s)",
        prepared.brand, len(prepared.markets), prepared.design.weeks, block.first, block.first + block.count - 1,
        settings.chains, settings.draws, settings.sampler,
    )  # fmt: skip
    own = settings.model_copy(update={"chains": block.count, "seed": block.seed(settings.seed)})
    run = sample(prepared.spec, prepared.design, own, prepared.lift)
    run.idata = drop_padding_vars(run.idata)
    for group in ("posterior", "sample_stats"):
        if hasattr(run.idata, group):
            run.idata[group] = run.idata[group].assign_coords({CHAIN: block.chains})
    return run


def _per_capita(
    spec: ModelSpec,
    frames: Mapping[str, pd.DataFrame],
    prepared: dict[str, PreparedMarket],
    settings: FitSettings,
    populations: Mapping[str, float] | None,
    stored: Mapping[str, ScalingFactors],
    failed: dict[str, str],
) -> dict[str, ScalingFactors]:
    """Per-capita scaling factors of the valid markets without stored ones, when a population is
    given (``populations`` or the spec's ``population_column``); a market without a valid population
    is left out of the brand model with the reason, like any other data error."""
    column = spec.pooling.population_column
    if populations is None and column is None:
        return {}
    found: dict[str, float] = {}
    for market in list(prepared):
        try:
            if populations is not None:
                found[market] = check_population(market, populations.get(market))
            else:
                found[market] = population_from_column(frames[market], column, market)
        except DataError as exc:
            log.warning("%s left out of the brand model: %s", market, exc)
            failed[market] = str(exc)
            del prepared[market]
    training = {
        market: p.data.iloc[: len(p.data) - settings.holdout_weeks]
        for market, p in prepared.items()
        if market not in stored
    }
    return per_capita_scalings(spec, training, found) if training else {}


def market_view(
    spec: ModelSpec,
    idata: az.InferenceData,
    prepared: PreparedMarket,
    settings: FitSettings,
    market: str,
    label: str,
    timings: dict[str, float],
) -> FittedModel:
    """The market's slice of the joint posterior, as a single-market ``FittedModel`` named ``label``
    (``brand/market``, as the training job names an independent market's model)."""
    posterior = idata.posterior
    market_vars = [v for v, da in posterior.data_vars.items() if C.MARKET in da.dims]
    sliced = posterior[market_vars].sel({C.MARKET: market}, drop=True)
    shared = [v for v in _transform_variables(spec) if v in posterior and C.MARKET not in posterior[v].dims]
    view = az.InferenceData(posterior=sliced.assign(posterior[shared]), sample_stats=idata.sample_stats)
    return FittedModel(
        spec=spec,
        scaling=prepared.scaling,
        idata=view,
        data=prepared.data,
        settings=settings,
        market=label,
        timings=timings,
        lift_tests=prepared.lift_tests,
    )


def _transform_variables(spec: ModelSpec) -> list[str]:
    """Names of the adstock and saturation parameters (with ``transforms: shared``, brand-level ones
    that every market's view needs)."""
    layout = ChannelLayout.from_spec(spec)
    groups = (*layout.adstock, *layout.saturation)
    return [group.variable(param) for group in groups for param in group.transform.param_names]


def _no_tests(spec: ModelSpec) -> LiftDesign:
    """An empty lift design for a market without tests, so the brand's arrays stack."""
    channels, lags = len(spec.channel_names), spec.max_l_max
    basis = {C.GP_BASIS: np.zeros((0, spec.time_varying.basis_functions))} if spec.time_varying else {}
    return LiftDesign(
        base_lags=np.zeros((0, lags, channels)),
        changed_lags=np.zeros((0, lags, channels)),
        rows=np.zeros((0, 0)),
        channel=np.zeros((0, channels)),
        observed=np.zeros(0),
        se=np.ones(0),
        mask=np.zeros(0),
        time_basis=basis,
    )
