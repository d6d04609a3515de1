"""``fit`` and the fitted model: spec, scaling, posterior and training data, kept together.

The fitted model is what analysis, prediction and persistence work from. It is a thin facade: the
maths lives in ``equations``, ``analysis`` and ``prediction``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd

from mmm_models.data import WEEK_BUCKET, DataError, Design, ScalingFactors, build_design, validate_market_frame
from mmm_models.equations import ChannelLayout
from mmm_models.fitting import FitSettings, SamplerRun, sample, sample_batch
from mmm_models.lift import LiftDesign, build_lift_design, validate_lift_tests
from mmm_models.spec import ModelSpec

log = logging.getLogger(__name__)


@dataclass
class FittedModel:
    """A posterior together with everything needed to interpret and reuse it."""

    spec: ModelSpec
    scaling: ScalingFactors
    idata: az.InferenceData
    data: pd.DataFrame  # validated weekly frame: training weeks, then any held-out weeks
    settings: FitSettings
    market: str = "market"
    timings: dict[str, float] = field(default_factory=dict)
    lift_tests: pd.DataFrame | None = None  # the lift tests the fit was calibrated with

    @property
    def layout(self) -> ChannelLayout:
        return ChannelLayout.from_spec(self.spec)

    @property
    def train_weeks(self) -> int:
        return len(self.data) - self.settings.holdout_weeks

    def design(self) -> Design:
        """Design arrays of the whole frame, unpadded, held-out weeks masked."""
        return build_design(self.spec, self.data, self.scaling, self.settings.holdout_weeks, bucket=None)

    def draws(self, max_draws: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Posterior draws flattened over chains, optionally thinned to at most ``max_draws``."""
        stacked = self.idata.posterior.stack(sample=("chain", "draw"))
        total = stacked.sizes["sample"]
        index = np.arange(total)
        if max_draws is not None and max_draws < total:
            index = np.sort(np.random.default_rng(seed).choice(total, max_draws, replace=False))
        return {name: np.moveaxis(var.values, -1, 0)[index] for name, var in stacked.data_vars.items()}

    @property
    def channel_names(self) -> list[str]:
        return self.spec.channel_names

    def summary(self, var_names: list[str] | None = None) -> pd.DataFrame:
        """ArviZ summary (90% HDI) of the named posterior variables, by default all of them."""
        return az.summary(self.idata, var_names=var_names, hdi_prob=0.9)


@dataclass(frozen=True)
class PreparedMarket:
    """One market's validated data, scaling, design and lift tests, ready to sample."""

    data: pd.DataFrame
    scaling: ScalingFactors
    design: Design
    lift_tests: pd.DataFrame | None
    lift: LiftDesign | None


def prepare_market(
    spec: ModelSpec,
    frame: pd.DataFrame,
    settings: FitSettings,
    scaling: ScalingFactors | None = None,
    market: str = "market",
    lift_tests: pd.DataFrame | None = None,
    allow_target_gaps: bool = False,
    bucket: int | None = WEEK_BUCKET,
) -> PreparedMarket:
    """Validate one market's frame (``DataError`` on any problem) and build its design arrays."""
    data = validate_market_frame(spec, frame, market, allow_target_gaps=allow_target_gaps)
    train_weeks = len(data) - settings.holdout_weeks
    if train_weeks < spec.required_weeks():
        raise DataError(
            f"{market}: holding out {settings.holdout_weeks} of {len(data)} weeks leaves {train_weeks} to fit on; "
            f"the model needs at least {spec.required_weeks()}"
        )
    if scaling is None:
        scaling = ScalingFactors.compute(spec, data.iloc[:train_weeks])
    else:  # an earlier fit's value scales; time (trend, HSGP basis) always spans this training window
        scaling = scaling.for_window(spec, data.iloc[:train_weeks])
    scaling.check_matches(spec)
    design = build_design(spec, data, scaling, holdout_weeks=settings.holdout_weeks, bucket=bucket)
    lift = None
    if lift_tests is not None and len(lift_tests):
        lift_tests = validate_lift_tests(spec, lift_tests, data, market)
        lift = build_lift_design(spec, lift_tests, data, scaling)
    return PreparedMarket(data, scaling, design, lift_tests if lift is not None else None, lift)


def fit(
    spec: ModelSpec,
    frame: pd.DataFrame,
    settings: FitSettings | None = None,
    scaling: ScalingFactors | None = None,
    market: str = "market",
    lift_tests: pd.DataFrame | None = None,
    allow_target_gaps: bool = False,
) -> FittedModel:
    """Validate one market's weekly frame and sample its posterior.

    Pass ``scaling`` from an earlier fit of the same market to keep parameters comparable across
    refits (its spend, target and control scales; the time axis follows the new training window);
    otherwise it is computed from the training weeks. ``lift_tests`` (see ``mmm_models.lift``)
    enter the likelihood as extra observations. ``allow_target_gaps`` keeps weeks with a NaN target
    (no sales recorded) as masked gaps instead of refusing the frame.

    The numpyro sampler (the default) sets the process's JAX to the CPU and float64 on its first fit
    (``mmm_models.backend``); nutpie and pymc leave JAX alone.
    """
    settings = settings or FitSettings()
    start = time.perf_counter()
    prepared = prepare_market(spec, frame, settings, scaling, market, lift_tests, allow_target_gaps)
    log.info("%s: sampling %d chains x %d draws (%s)", market, settings.chains, settings.draws, settings.sampler)
    run = sample(spec, prepared.design, settings, prepared.lift)
    return _fitted(spec, prepared, run, settings, market, time.perf_counter() - start)


def fit_batch(
    spec: ModelSpec,
    frames: Mapping[str, pd.DataFrame],
    settings: FitSettings,
    scalings: Mapping[str, ScalingFactors] | None = None,
    lift_tests: Mapping[str, pd.DataFrame] | None = None,
    allow_target_gaps: bool = False,
) -> dict[str, FittedModel | DataError]:
    """Fit several independent markets of one spec together: ``fit`` for each, one compiled call (numpyro).

    Each market is validated on its own; one whose data is invalid gets its ``DataError`` in the result
    and the others are fitted. The markets' chains are lanes of one vectorised sampler
    (``fitting.sample_batch``), so each market's posterior is what ``fit`` gives it alone, up to the
    random numbers. A market's ``wall_s`` is its share of the batch's time.
    """
    scalings, lift_tests = scalings or {}, lift_tests or {}
    start = time.perf_counter()
    results: dict[str, FittedModel | DataError] = {}
    prepared: dict[str, PreparedMarket] = {}
    for market, frame in frames.items():
        try:
            prepared[market] = prepare_market(
                spec, frame, settings, scalings.get(market), market, lift_tests.get(market), allow_target_gaps
            )
        except DataError as exc:
            results[market] = exc
    if prepared:
        log.info(
            "sampling %d markets together, %d chains x %d draws each", len(prepared), settings.chains, settings.draws
        )
        runs = sample_batch(spec, [p.design for p in prepared.values()], settings, [p.lift for p in prepared.values()])
        share = (time.perf_counter() - start) / len(prepared)
        for (market, ready), run in zip(prepared.items(), runs, strict=True):
            results[market] = _fitted(spec, ready, run, settings, market, share)
    return {market: results[market] for market in frames}


def _fitted(
    spec: ModelSpec, prepared: PreparedMarket, run: SamplerRun, settings: FitSettings, market: str, wall_s: float
) -> FittedModel:
    """The fitted model of one sampled market."""
    timings = {"sampler_s": run.seconds, "wall_s": wall_s, "compiled": float(run.compiled)}
    log.info("%s: fitted in %.1f s%s", market, wall_s, " (compiled first)" if run.compiled else "")
    return FittedModel(
        spec=spec,
        scaling=prepared.scaling,
        idata=drop_padding_vars(run.idata),
        data=prepared.data,
        settings=settings,
        market=market,
        timings=timings,
        lift_tests=prepared.lift_tests,
    )


def drop_padding_vars(idata: az.InferenceData) -> az.InferenceData:
    """Keep the parameters only: data containers are stored separately, unpadded."""
    keep = [v for v in idata.posterior.data_vars if not v.endswith("__")]
    idata.posterior = idata.posterior[keep]
    return idata
