"""Brand and platform configuration: YAML files under ``conf/``, validated by pydantic.

A brand file says how that brand's raw data maps onto the model: which raw channel names make up
each model channel (the taxonomy), which sales measure is the target, which controls exist, the
quality limits that decide whether a market is modelled this week, and the model spec (a file, or
a default built from the channels and controls). The platform file (``conf/platform.yaml``) holds
the paths, the MLflow stores, the sampler settings and the promotion gate.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines import names

if TYPE_CHECKING:
    from mmm_models.spec import ModelSpec

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the checkout; relative local paths resolve against it
CONF_DIR = PROJECT_ROOT / "conf"
ENVIRONMENT_VARIABLE = "MMM_ENVIRONMENT"  # picks the environment of a platform file with ``environments:``


class ConfigError(ValueError):
    """A configuration file is missing or invalid; the message names the file and the field."""


class QualityLimits(BaseModel):
    """When a market is held back from modelling."""

    model_config = ConfigDict(extra="forbid")

    min_history_weeks: int = Field(52, ge=1, description="weeks with sales needed before a market is modelled")
    max_gap_weeks: int = Field(4, ge=0, description="weeks without sales (or a control) a market may have")


class ChannelBudget(BaseModel):
    """A channel's spend limits over the period, as multiples of its current spend (the run-rate)."""

    model_config = ConfigDict(extra="forbid")

    min_factor: float = Field(0.5, ge=0, description="at least this x current spend")
    max_factor: float = Field(2.0, ge=0, description="at most this x current spend")

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
            return ModelSpec.from_yaml(CONF_DIR / self.model_spec)  # from_yaml made a brand file's path absolute
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
    tune: int = Field(1000, ge=0)
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

    def fit_settings(self):  # -> mmm_models.fitting.FitSettings (imported here: it loads JAX)
        """The sampler settings of ``mmm_models`` that these training settings stand for."""
        from mmm_models.fitting import FitSettings

        return FitSettings(
            **self.model_dump(exclude={"unit", "compile_dir", "cores_per_market", "market_timeout_s"}),
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


class PlatformConfig(BaseModel):
    """Paths, tracking, training and gate settings for one environment."""

    model_config = ConfigDict(extra="forbid")

    landing: str = "outputs/landing"
    lake: str = "outputs/lake"
    brands: str = "conf/brands"
    lock_wait_s: float = Field(
        600,
        ge=0,
        description="how long a run waits for another run's lock on the same lake, then exits saying who holds it",
    )
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    recommend: RecommendSettings = Field(default_factory=RecommendSettings)

    @classmethod
    def from_yaml(cls, path: str | Path = CONF_DIR / "platform.yaml", environment: str | None = None) -> PlatformConfig:
        """A platform file; one with ``environments:`` (``conf/databricks.yaml``) is a template per environment.

        There ``environment`` (default: ``$MMM_ENVIRONMENT``, which the Databricks bundle sets to its target)
        picks the names (catalog, schema...) filled into the ``platform:`` template's ``{placeholders}``.
        A relative ``brands`` folder that exists beside the file is taken from there (the bundle syncs
        ``conf/`` as a whole, wherever its per-user root is); otherwise it is relative to the working folder.
        """
        config = _load(cls, Path(path), lambda raw: _for_environment(raw, Path(path), environment))
        beside = Path(path).parent / config.brands
        if not Path(config.brands).is_absolute() and beside.is_dir():
            config = config.model_copy(update={"brands": str(beside.resolve())})
        return config


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


def load_brands(folder: str | Path = CONF_DIR / "brands") -> dict[str, BrandConfig]:
    """Every ``*.yaml`` brand file in ``folder``, by brand name."""
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
