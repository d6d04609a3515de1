"""Brand and platform configuration: YAML files under ``conf/``, validated by pydantic.

A brand file says how that brand's raw data maps onto the model: which raw channel names make up
each model channel (the taxonomy), which sales measure is the target, which controls exist, the
quality limits that decide whether a market is modelled this week, and the model spec (a file, or
a default built from the channels and controls). The platform file (``conf/platform.yaml``) holds
the paths, the MLflow stores, the sampler settings and the promotion gate.

Where files are: a project folder (``--project``, ``$MMM_PROJECT``, else the working folder) holds the
user's ``conf/`` and ``outputs/``. A config file the project lacks is read from the defaults shipped
in the package (``mmm_conf``, the repository's ``conf/``). A relative path that a file names resolves
against that file's folder; a path it leaves out takes its default under the project folder
(``outputs/landing``, ``outputs/lake``, ``outputs/mlflow.db``...), so nothing is written inside the
installed package.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mmm_models.data_review import DataReviewThresholds
from pipelines import names
from pipelines.lake import UC_SCHEMA_PATTERN, Lake


def is_uri(value: str) -> bool:
    """Whether ``value`` is a URI (``s3://``, ``dbfs:/``, ``mlflow-artifacts:/``: a scheme of two or more
    characters and a colon) rather than a file path."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", value) is not None


if TYPE_CHECKING:
    from mmm_models.spec import ModelSpec

# Where the code is (a checkout, or site-packages): only for the git commit a run records, never for data.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROJECT_VARIABLE = "MMM_PROJECT"  # the project folder when --project is not given
DEFAULTS_PACKAGE = "mmm_conf"  # the default configuration: the repository's conf/, installed as a package
ENVIRONMENT_VARIABLE = "MMM_ENVIRONMENT"  # picks the environment of a platform file with ``environments:``


class ConfigError(ValueError):
    """A configuration file is missing or invalid; the message names the file and the field."""


def project_dir(project: str | Path | None = None) -> Path:
    """The project folder (absolute): ``project``, else ``$MMM_PROJECT``, else the working folder."""
    return Path(project or os.environ.get(PROJECT_VARIABLE) or Path.cwd()).expanduser().resolve()


def default_conf() -> Path:
    """The folder of the packaged default configuration (read-only: never written to)."""
    return Path(str(resources.files(DEFAULTS_PACKAGE)))


def conf_file(name: str, project: str | Path | None = None) -> Path:
    """``<project>/conf/<name>`` when the project has it, else the packaged default of that name."""
    own = project_dir(project) / "conf" / name
    return own if own.exists() else default_conf() / name


_DATA_REVIEW = DataReviewThresholds()


class DataReviewSettings(BaseModel):
    """The pre-fit data review (``mmm_models.data_review``), run by gold on every market.

    The defaults, and why each is where it is, are ``DataReviewThresholds``'; a brand overrides them
    under ``quality: data_review:``. A warning is written to ``market_status`` and the market is modelled;
    an exclusion (no channel varies, a constant target) holds the market back like a failed quality check.
    """

    model_config = ConfigDict(extra="forbid")

    min_spend_cv: float = Field(_DATA_REVIEW.min_spend_cv, ge=0, description="a channel's weekly spend CV below: warn")
    max_zero_share: float = Field(
        _DATA_REVIEW.max_zero_share, ge=0, le=1, description="share of dark weeks above: warn"
    )
    max_pair_correlation: float = Field(
        _DATA_REVIEW.max_pair_correlation, ge=0, le=1, description="|r| of two channels' spends above: warn"
    )
    max_condition_number: float = Field(
        _DATA_REVIEW.max_condition_number, ge=1, description="condition number of the standardised spends above: warn"
    )
    max_vif: float = Field(_DATA_REVIEW.max_vif, ge=1, description="a channel's VIF above this is named as collinear")
    min_target_cv: float = Field(_DATA_REVIEW.min_target_cv, ge=0, description="the target's weekly CV below: warn")
    min_target_r2: float = Field(
        _DATA_REVIEW.min_target_r2, le=1, description="adjusted R^2 of the target on everything below: warn"
    )
    min_weeks: int = Field(_DATA_REVIEW.min_weeks, ge=3, description="weeks with a target before the target checks")
    exclude_when_no_channel_varies: bool = _DATA_REVIEW.exclude_when_no_channel_varies
    exclude_constant_target: bool = _DATA_REVIEW.exclude_constant_target

    def thresholds(self) -> DataReviewThresholds:
        return DataReviewThresholds(**self.model_dump())


class QualityLimits(BaseModel):
    """When a market is held back from modelling."""

    model_config = ConfigDict(extra="forbid")

    min_history_weeks: int = Field(52, ge=1, description="weeks with sales needed before a market is modelled")
    max_gap_weeks: int = Field(4, ge=0, description="weeks without sales (or a control) a market may have")
    data_review: DataReviewSettings = Field(
        default_factory=DataReviewSettings, description="the pre-fit data review's thresholds"
    )


class ChannelBudget(BaseModel):
    """A channel's spend limits over the period, as multiples of its current spend (the run-rate).

    Default +-30%, as Meridian's: a response curve is known only around the spend a market has run, and
    at 0.5x-2x the optimiser pushed 56% of the channels of issue 19's 40-geo demo to a bound on
    intervals that included zero, i.e. it extrapolated the curves. A larger move needs a test first
    (the recommendation's ``test`` verdict says which), or an explicit wider bound here.
    """

    model_config = ConfigDict(extra="forbid")

    min_factor: float = Field(0.7, ge=0, description="at least this x current spend")
    max_factor: float = Field(1.3, ge=0, description="at most this x current spend")

    @model_validator(mode="after")
    def _min_below_max(self) -> ChannelBudget:
        if self.min_factor > self.max_factor:
            raise ValueError(f"min_factor {self.min_factor} is above max_factor {self.max_factor}")
        return self


class BudgetSettings(BaseModel):
    """The budget question a brand's recommendations answer: how to split the next period's spend.

    Current spend is the run-rate: mean weekly spend over the last ``run_rate_weeks`` x ``period_weeks``.
    Bounds are relative to it, so a channel that spends nothing now is kept at nothing (say so in
    ``channels`` with absolute numbers once there is a plan to start it).
    """

    model_config = ConfigDict(extra="forbid")

    period_weeks: int = Field(13, ge=1, le=104, description="planning period: the next weeks")
    run_rate_weeks: int = Field(13, ge=1, description="recent weeks whose mean weekly spend is the current spend")
    total: float | None = Field(None, gt=0, description="budget over the period; default: current spend (run-rate)")
    bounds: ChannelBudget = Field(default_factory=ChannelBudget, description="every channel's limits")
    channels: dict[str, ChannelBudget] = Field(default_factory=dict, description="per-channel limits instead")
    # The posterior mean: the split is the best guess, and the risk is stated beside it, not mixed into it
    # (each recommendation's P(uplift > 0) and its act / hold / test verdict). A risk-aware objective
    # (mean_minus_sd, cvar) also favours channels merely because they are better measured.
    objective: Literal["mean", "mean_minus_sd", "cvar"] = "mean"

    def bound(self, channel: str) -> ChannelBudget:
        return self.channels.get(channel, self.bounds)


class BrandConfig(BaseModel):
    """One brand: its channel taxonomy, target measure, controls and quality limits."""

    model_config = ConfigDict(extra="forbid")

    brand: str = Field(min_length=1)
    target: str = Field("revenue", description="the sales measure that the model explains")
    measures: list[str] = Field(default_factory=lambda: ["revenue"], description="sales measures kept in silver")
    taxonomy: dict[str, list[str]] = Field(description="model channel -> raw channel names in the spend files")
    controls: list[str] = Field(default_factory=list)
    extra_columns: list[str] = Field(
        default_factory=list,
        description="landing columns kept in bronze beyond the declared ones; any other column quarantines the file",
    )
    granularity: Literal["daily", "weekly"] = Field(
        "daily", description="raw rows per day, or one per week dated on its Monday; a week is complete with 7 or 1"
    )
    quality: QualityLimits = Field(default_factory=QualityLimits)
    model_spec: str | None = Field(
        None, description="model spec YAML, beside the brand file or one folder up; default: built from channels"
    )
    budget: BudgetSettings = Field(default_factory=BudgetSettings, description="the budget recommendations' question")

    @field_validator("brand")
    @classmethod
    def _brand_name(cls, brand: str) -> str:
        return names.check(brand, "brand", "brand")

    @field_validator("target")
    @classmethod
    def _target_name(cls, target: str) -> str:
        return names.check(target, "identifier", "target")

    @field_validator("measures", "controls")
    @classmethod
    def _identifiers(cls, values: list[str]) -> list[str]:
        checked = [names.check(v, "identifier", "measure or control") for v in values]
        repeated = sorted({v for v in checked if checked.count(v) > 1})
        if repeated:
            raise ValueError(f"named twice (after normalising): {repeated}")
        return checked

    @field_validator("taxonomy")
    @classmethod
    def _each_raw_name_once(cls, taxonomy: dict[str, list[str]]) -> dict[str, list[str]]:
        if not taxonomy:
            raise ValueError("needs at least one model channel")
        normal: dict[str, list[str]] = {}
        seen: dict[str, str] = {}
        for channel, raw_names in taxonomy.items():
            channel = names.check(channel, "identifier", "model channel")
            if channel in normal:
                raise ValueError(f"model channel {channel!r} is named twice (after normalising)")
            if not raw_names:
                raise ValueError(f"model channel {channel!r} has no raw channel names")
            normal[channel] = []
            for raw in raw_names:
                raw = names.check(raw, "value", "raw channel")
                if raw in seen:
                    raise ValueError(f"raw channel {raw!r} maps to both {seen[raw]!r} and {channel!r}")
                seen[raw] = channel
                normal[channel].append(raw)
        return normal

    @model_validator(mode="after")
    def _target_is_a_measure(self) -> BrandConfig:
        if self.target not in self.measures:
            raise ValueError(f"target {self.target!r} is not one of the measures {self.measures}")
        return self

    @model_validator(mode="after")
    def _budget_channels_known(self) -> BrandConfig:
        unknown = sorted(set(self.budget.channels) - set(self.taxonomy))
        if unknown:
            raise ValueError(f"budget.channels names unknown channels {unknown}; the channels are {self.channels}")
        return self

    @property
    def channels(self) -> list[str]:
        return list(self.taxonomy)

    def raw_to_model(self) -> dict[str, str]:
        return {raw: channel for channel, raws in self.taxonomy.items() for raw in raws}

    def spec(self) -> ModelSpec:
        """The brand's model spec, over the model-input columns ``week_start``, ``target``, channels and controls.

        Without a spec file: geometric adstock (8 weeks) and logistic saturation per channel, effects as
        contribution shares, two yearly harmonics, a linear trend and the controls.
        """
        from mmm_models.spec import ModelSpec  # here, not at the top: the data pipeline never needs JAX

        if self.model_spec is not None:
            return ModelSpec.from_yaml(self.model_spec)  # from_yaml made a brand file's path absolute
        return ModelSpec.from_dict(
            {
                "name": f"{self.brand}_default",
                "date_column": "week_start",
                "target": {"column": "target"},
                "channels": [
                    {"name": c, "adstock": {"type": "geometric", "l_max": 8}, "saturation": {"type": "logistic"}}
                    for c in self.channels
                ],
                "controls": [{"name": c} for c in self.controls],
                "seasonality": {"harmonics": 2},
                "trend": {"type": "linear"},
            }
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> BrandConfig:
        """A brand file; its ``model_spec`` is resolved beside the file (or, as in ``conf/``, one folder up)
        and must exist, so a wrong path fails here and not later inside a Spark worker."""
        path = Path(path)
        config = _load(cls, path)
        if config.model_spec is not None and not Path(config.model_spec).is_absolute():
            candidates = [(folder / config.model_spec).resolve() for folder in (path.parent, path.parent.parent)]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                tried = ", ".join(str(c) for c in candidates)
                raise ConfigError(f"{path}: model_spec {config.model_spec!r} not found (looked at {tried})")
            config = config.model_copy(update={"model_spec": str(found)})
        elif config.model_spec is not None and not Path(config.model_spec).is_file():
            raise ConfigError(f"{path}: model_spec {config.model_spec!r} does not exist")
        return config


class MlflowSettings(BaseModel):
    """Where runs and models go. Local default: a SQLite store and an artifact folder under ``outputs/``."""

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str = "sqlite:///outputs/mlflow.db"
    registry_uri: str | None = None  # default: the tracking store; "databricks-uc" on Databricks
    artifact_location: str = "outputs/mlartifacts"
    experiment: str = "mmm-weekly"
    model_prefix: str = Field("mmm", description="registered model name: <prefix>_<brand>_<market>")


class TrainingSettings(BaseModel):
    """How each group is fitted."""

    model_config = ConfigDict(extra="forbid")

    # market: one independent model per brand x market. brand: one hierarchical model per brand over
    # its markets (partial pooling as the brand's spec says, see mmm_models.hierarchy); every market
    # still gets its own registered model, gate and summaries, read from the brand's posterior.
    unit: Literal["market", "brand"] = "market"
    # nutpie: on one core per market it samples 2-3x faster than numpyro (numpyro's NUTS loop costs
    # ~200 us per leapfrog step on XLA CPU against a 40 us gradient); its numba compile (~50 s) is
    # paid once per Spark worker and model structure.
    sampler: Literal["numpyro", "nutpie", "pymc"] = "nutpie"
    cores_per_market: int = Field(1, ge=1, description="chains in parallel within one market (= spark.task.cpus)")
    chains: int = Field(4, ge=1)
    draws: int = Field(1000, ge=10)
    # 500, not PyMC's 1000: on 8 simulated markets nutpie converged as well after 500 tuning steps (R-hat <= 1.00,
    # bulk ESS 1383-2108, 0 divergences; 1000 steps: R-hat <= 1.01, ESS 1368-2446) in ~20% less time.
    tune: int = Field(500, ge=0)
    # 0.95, not PyMC's 0.8: the gate allows no divergences, and the smaller steps cost ~10% more time.
    target_accept: float = Field(0.95, gt=0, lt=1)
    holdout_weeks: int = Field(13, ge=0)
    seed: int = 0
    compile_dir: str = Field("/tmp/mmm-pytensor", description="each Spark Python worker compiles in its own subfolder")
    # A market whose sampler hangs is stopped here and reported failed ("timed out after N s"); its fit
    # process is killed and replaced. The limit covers the whole market (process start, compile, sampling,
    # summaries, tracking): generous, since a first market per worker also compiles (nutpie ~50 s). A brand
    # model (unit brand) gets the limit times its number of markets.
    market_timeout_s: float = Field(3600, gt=0, description="seconds one market may take before it is stopped")
    # unit market with numpyro: markets of one brand are fitted this many at a time in one compiled call, their
    # chains vectorised (one Spark task per batch). 1 fits each market in its own task.
    batch_size: int = Field(1, ge=1, description="markets per compiled call (numpyro, unit market)")
    # unit brand: the brand model's chains are sampled in this many Spark tasks (blocks of chains, each with
    # its own seed), merged on the driver; then each market is finished (gate, review, tracking) in a task
    # of its own. auto: min(chains, the cluster's task slots). 1 samples every chain in one task.
    brand_chain_tasks: int | Literal["auto"] = Field("auto", description="Spark tasks per brand model's chains")

    @model_validator(mode="after")
    def _batching_needs_numpyro(self) -> TrainingSettings:
        if self.batch_size > 1 and self.sampler != "numpyro":
            raise ValueError(f"training.batch_size {self.batch_size} needs sampler numpyro, not {self.sampler}")
        return self

    @field_validator("brand_chain_tasks")
    @classmethod
    def _at_least_one_task(cls, value: int | str) -> int | str:
        if value != "auto" and value < 1:
            raise ValueError(f"training.brand_chain_tasks must be auto or at least 1, not {value}")
        return value

    def chain_tasks(self, slots: int) -> int:
        """Tasks a brand model's chains are sampled in, on a cluster of ``slots`` task slots."""
        wanted = max(slots, 1) if self.brand_chain_tasks == "auto" else self.brand_chain_tasks
        return min(self.chains, wanted)

    def fit_settings(self):  # -> mmm_models.fitting.FitSettings (imported here: it loads JAX)
        """The sampler settings of ``mmm_models`` that these training settings stand for."""
        from mmm_models.fitting import FitSettings

        return FitSettings(
            **self.model_dump(
                exclude={
                    "unit",
                    "compile_dir",
                    "cores_per_market",
                    "market_timeout_s",
                    "batch_size",
                    "brand_chain_tasks",
                }
            ),
            cores=self.cores_per_market,
        )


class GateSettings(BaseModel):
    """The promotion gate: a version that breaks any threshold gets no alias."""

    model_config = ConfigDict(extra="forbid")

    max_rhat: float = 1.01
    min_ess_bulk: float = 400
    max_divergences: int = 0
    # Calibrated on 40 well-specified simulated markets (benchmarks/train_scale.py, 13 holdout weeks): the
    # ratio ran from 0.74 to 2.12, median 1.24, so 1.5 rejected a quarter of correct models. 2.5 passes
    # them all; a model that breaks on new weeks lands far above it.
    max_holdout_wape_ratio: float = Field(
        2.5, gt=0, description="holdout WAPE / in-sample WAPE: does the model forecast about as well as it fits?"
    )
    max_holdout_mape: float | None = Field(None, gt=0, description="optional absolute ceiling; off by default")
    auto_promote: bool = True


class ReviewSettings(BaseModel):
    """The model review (``pipelines.training.review``): thresholds of the checks that go beyond convergence.

    A REVIEW version is registered and becomes ``challenger``, never ``champion`` by itself; a FAIL is
    rejected like a gate failure. Each default says why it is where it is.
    """

    model_config = ConfigDict(extra="forbid")

    # Goodness of fit. Issue 19's Meridian demo fitted with in-sample R^2 0.32 and holdout R^2 -0.05 and
    # passed the WAPE-ratio gate, because its holdout was as poor as its fit. A model that explains less
    # than half the weekly variance it was fitted on credits media with what it cannot tell from noise.
    min_r2_train: float = Field(0.5, le=1, description="in-sample R^2 below this: REVIEW")
    # Not beating a forecast that needs no model (last year's week, or the recent level) on weeks the
    # model never saw means its structure adds nothing out of sample: REVIEW, whatever its in-sample fit.
    max_naive_wape_ratio: float = Field(
        1.0, gt=0, description="holdout WAPE / the better naive forecast's holdout WAPE above this: REVIEW"
    )
    # Informativeness, per channel, on ROAS. Learned: the data cut the prior sd by at least 30%, or moved
    # the mean by a prior sd or more; below both, the posterior is the prior (within Monte Carlo error
    # and the prior's own arbitrariness). Identified: learned, and the 90% HDI no wider than the mean
    # (for a near-normal posterior, sd <= 0.3 x mean: the channel's ROAS is known to about +-50%, enough to
    # rank it; the demo had intervals twice the mean). Either missing: REVIEW.
    min_roas_contraction: float = Field(0.3, ge=0, le=1, description="1 - posterior sd / prior sd for 'learned'")
    min_roas_shift_sd: float = Field(1.0, ge=0, description="|posterior - prior mean| / prior sd for 'learned'")
    max_roas_relative_width: float = Field(1.0, gt=0, description="90% HDI width / mean for 'identified'")
    # Baseline sanity, as Meridian's baseline check: the probability that the baseline (sales without
    # media) is negative over the training window; 0.2 asks for a look, 0.8 is a model that is wrong.
    negative_baseline_review: float = Field(0.2, ge=0, le=1, description="P(baseline share < 0) above this: REVIEW")
    negative_baseline_fail: float = Field(0.8, ge=0, le=1, description="P(baseline share < 0) above this: FAIL")
    # One channel credited with more than half of all sales is rarely real: it has usually absorbed trend
    # or seasonality that shares its timing.
    max_channel_share: float = Field(0.5, gt=0, le=1, description="a channel's mean contribution share above: REVIEW")
    # PSIS-LOO (Vehtari, Gelman & Gabry 2017): a Pareto k above 0.7 makes that week's LOO estimate
    # unreliable. A few such weeks (a promotion, an outlier) are normal; above 10% of the weeks the ELPD
    # itself, and the champion comparison built on it, cannot be trusted.
    max_pareto_k: float = Field(0.7, gt=0, description="a week's Pareto k above this is 'bad'")
    max_bad_k_share: float = Field(0.1, ge=0, le=1, description="share of bad-k weeks above this: REVIEW")
    # Challenger vs champion on the weeks both were fitted on: worse by more than 2 standard errors of the
    # paired difference is a real loss of predictive accuracy, not noise (as az.compare reads it).
    max_elpd_loss_se: float = Field(2.0, gt=0, description="challenger ELPD below champion's by > this x se: REVIEW")
    # What the saved InferenceData keeps (see mmm_models.predictive): sizes in the version's review message.
    max_predictive_draws: int = Field(1000, ge=100, description="posterior predictive draws kept")
    prior_draws: int = Field(500, ge=100, description="prior draws (prior ROAS for informativeness)")

    @model_validator(mode="after")
    def _fail_beyond_review(self) -> ReviewSettings:
        if self.negative_baseline_fail < self.negative_baseline_review:
            raise ValueError("negative_baseline_fail must not be below negative_baseline_review")
        return self


class MonitoringSettings(BaseModel):
    """Thresholds of the monitoring alert rules (``monitoring.rules`` explains each default)."""

    model_config = ConfigDict(extra="forbid")

    drift_warning_sd: float = Field(2.0, gt=0, description="|mean shift| in champion sds that warns")
    drift_critical_sd: float = Field(3.0, gt=0, description="|mean shift| that is critical when the HDIs also part")
    drift_critical_max_overlap: float = Field(0.1, ge=0, le=1, description="90% HDI overlap at most this: HDIs part")
    drift_metrics: list[Literal["roas", "contribution_share", "adstock_half_life", "half_saturation_spend"]] = Field(
        default_factory=lambda: ["roas", "contribution_share", "adstock_half_life", "half_saturation_spend"]
    )
    max_draws: int = Field(1000, ge=100, description="posterior draws per version used for drift")
    lift_warning_z: float = Field(2.5, gt=0, description="|z| of an observed lift against the model that warns")
    lift_critical_z: float = Field(4.0, gt=0, description="|z| that is critical")
    min_lift_coverage: float = Field(0.5, ge=0, le=1, description="share of a channel's tests inside the 90% interval")
    min_tests_for_coverage: int = Field(3, ge=1, description="tests a channel needs before its coverage is judged")
    recent_weeks: int = Field(13, ge=1, description="latest weeks compared with the training window (data drift)")
    spend_mix_psi_warning: float = Field(0.25, gt=0, description="PSI of the spend mix that warns")
    target_shift_warning_sd: float = Field(2.0, gt=0, description="|recent - training mean| / training sd that warns")

    @model_validator(mode="after")
    def _critical_beyond_warning(self) -> MonitoringSettings:
        if self.drift_critical_sd < self.drift_warning_sd or self.lift_critical_z < self.lift_warning_z:
            raise ValueError("critical thresholds must not be below the warning thresholds")
        return self


class RecommendSettings(BaseModel):
    """How budget recommendations are made from each market's registered model."""

    model_config = ConfigDict(extra="forbid")

    alias: str = Field("champion", min_length=1, description="the registry alias whose version is optimised")
    max_draws: int = Field(1000, ge=100, description="posterior draws the optimiser averages over")
    # The verdict of each market's recommendation (pipelines.recommend.budget.decide). act: the move beats
    # the current split in at least 90% of posterior draws (the one-sided twin of the 90% HDIs shown
    # everywhere else) and every channel it moves is identified. A channel is identified, as in the model
    # review, when its 90% ROAS HDI is no wider than its mean: otherwise its ROAS, and so the move, comes
    # from the prior as much as from the data (a share prior gives a small channel a high ROAS before any
    # data; measured on simulated markets with no media effect at all, the optimiser's moves then beat the
    # current split in 98-99% of draws). test: the move hinges on such a channel; the experiment is on the
    # moved, unidentified channel whose ROAS is worth most to the decision (its value of information, with
    # the money moved on it breaking ties). hold: otherwise (the evidence does not support moving).
    # A channel counts as moved when its spend changes by 5% or more: less is within the week-to-week
    # variation of its run-rate.
    act_probability: float = Field(0.9, gt=0.5, lt=1, description="P(uplift > 0) needed to act")
    max_roas_relative_width: float = Field(1.0, gt=0, description="90% ROAS HDI width / mean for 'identified'")
    min_moved_share: float = Field(0.05, ge=0, description="|spend change| / current spend for 'moved'")
    # The experiment: a go-dark test (the usual geo-experiment design that calibrates an MMM) of the
    # shortest duration that is expected to narrow the channel's 90% ROAS HDI by a third, else the longest.
    test_weeks: list[int] = Field(default_factory=lambda: [4, 6, 8], min_length=1, description="durations tried")
    test_spend_change: float = Field(-1.0, ge=-1, description="relative spend change of the test (-1: go dark)")
    test_se_factor: float = Field(1.0, gt=0, description="test lift se / (weekly noise sd x sqrt(weeks))")
    target_narrowing: float = Field(1 / 3, gt=0, lt=1, description="HDI narrowing a test should bring")


class PrefectSettings(BaseModel):
    """The weekly flow on Prefect (``jobs.flow``)."""

    model_config = ConfigDict(extra="forbid")

    failure_notification: str | None = Field(
        None,
        description='a Prefect notification block, "<block type>/<name>" (e.g. "slack-webhook/mmm-alerts"), told '
        "when a step fails; none: no message",
    )


class PlatformConfig(BaseModel):
    """Paths, tracking, training and gate settings for one environment."""

    model_config = ConfigDict(extra="forbid")

    landing: str = "outputs/landing"
    lake: str = "outputs/lake"
    tables: str | None = Field(
        None,
        pattern=UC_SCHEMA_PATTERN,
        description="a Unity Catalog schema (catalog.schema) that holds the tables as managed tables "
        "<layer>_<name> (Databricks); none: Delta folders under lake",
    )
    brands: str = "conf/brands"
    lock_wait_s: float = Field(
        600,
        ge=0,
        description="how long a run waits for another run's lock on the same lake, then exits saying who holds it",
    )
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    recommend: RecommendSettings = Field(default_factory=RecommendSettings)
    prefect: PrefectSettings = Field(default_factory=PrefectSettings)

    def tables_lake(self, root: str | Path | None = None) -> Lake:
        """Where this environment's tables are: the ``tables`` Unity Catalog schema, else Delta folders under
        the lake (or under ``root``, a ``--lake`` given to a command)."""
        return Lake(Path(root or self.lake), self.tables)

    @classmethod
    def from_yaml(
        cls, path: str | Path | None = None, environment: str | None = None, project: str | Path | None = None
    ) -> PlatformConfig:
        """A platform file (default: the project's ``conf/platform.yaml``, else the packaged one), paths made absolute.

        One with ``environments:`` (``conf/databricks.yaml``) is a template per environment: ``environment``
        (default: ``$MMM_ENVIRONMENT``, which the Databricks bundle sets to its target) picks the names
        (catalog, schema...) filled into the ``platform:`` template's ``{placeholders}``.
        """
        path = Path(path) if path is not None else conf_file("platform.yaml", project)
        config = _load(cls, path, lambda raw: _for_environment(raw, path, environment))
        return config.resolved(path.resolve().parent, project_dir(project))

    def resolved(self, folder: Path, project: Path) -> PlatformConfig:
        """Relative paths made absolute: those the file named against its ``folder``, defaults under ``project``.

        Brands left out are the project's ``conf/brands``, or the packaged brands when the project has none.
        """

        def place(value: str, named: bool) -> str:
            return value if Path(value).is_absolute() else str(((folder if named else project) / value).resolve())

        def uri(value: str, named: bool) -> str:  # a relative SQLite file; other URIs (servers, databricks) as they are
            if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
                return f"sqlite:///{place(value.removeprefix('sqlite:///'), named)}"
            return value

        named, mlflow, training = self.model_fields_set, self.mlflow, self.training
        brands = place(self.brands, "brands" in named)
        if "brands" not in named and not Path(brands).is_dir():
            brands = str(default_conf() / "brands")
        stores = {
            "tracking_uri": uri(mlflow.tracking_uri, "tracking_uri" in mlflow.model_fields_set),
            "registry_uri": mlflow.registry_uri and uri(mlflow.registry_uri, True),
            "artifact_location": mlflow.artifact_location
            if is_uri(mlflow.artifact_location)  # s3://, dbfs:/, mlflow-artifacts:/ (a tracking server's proxy)
            else place(mlflow.artifact_location, "artifact_location" in mlflow.model_fields_set),
        }
        compile_dir = place(training.compile_dir, "compile_dir" in training.model_fields_set)
        return self.model_copy(
            update={
                "landing": place(self.landing, "landing" in named),
                "lake": place(self.lake, "lake" in named),
                "brands": brands,
                "mlflow": mlflow.model_copy(update=stores),
                "training": training.model_copy(update={"compile_dir": compile_dir}),
            }
        )


def _for_environment(raw: dict, path: Path, environment: str | None) -> dict:
    if "environments" not in raw:
        return raw
    names = raw["environments"] or {}
    environment = environment or os.environ.get(ENVIRONMENT_VARIABLE)
    if environment not in names:
        raise ConfigError(
            f"{path}: environment {environment!r} is not one of {sorted(names)}; pass one or set {ENVIRONMENT_VARIABLE}"
        )
    values = {"environment": environment, **names[environment]}

    def fill(node: object) -> object:
        if isinstance(node, str):
            return node.format(**values)
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        return [fill(item) for item in node] if isinstance(node, list) else node

    try:
        return fill(raw.get("platform") or {})
    except KeyError as exc:
        raise ConfigError(f"{path}: placeholder {exc} is not one of {sorted(values)}") from exc


def load_brands(folder: str | Path | None = None) -> dict[str, BrandConfig]:
    """Every ``*.yaml`` brand file in ``folder`` (default: the platform file's brands), by brand name."""
    folder = folder if folder is not None else PlatformConfig.from_yaml().brands
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise ConfigError(f"no brand files (*.yaml) in {folder}")
    brands = [BrandConfig.from_yaml(path) for path in files]
    names = [b.brand for b in brands]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"brands configured twice in {folder}: {duplicated}")
    return {b.brand: b for b in brands}


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key repeated in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
        if repeated:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {repeated}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _load(model: type[BaseModel], path: Path, prepare: Callable[[dict], dict] | None = None) -> BaseModel:
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
        return model.model_validate(prepare(raw) if prepare else raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
