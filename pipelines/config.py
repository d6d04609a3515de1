"""Brand and platform configuration: YAML files under ``conf/``, validated by pydantic.

A brand file says how that brand's raw data maps onto the model: which raw channel names make up
each model channel (the taxonomy), which sales measure is the target, which controls exist, the
quality limits that decide whether a market is modelled this week, and the model spec (a file, or
a default built from the channels and controls). The platform file (``conf/platform.yaml``) holds
the paths, the MLflow stores, the sampler settings and the promotion gate.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if TYPE_CHECKING:
    from mmm_models.spec import ModelSpec

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


class ConfigError(ValueError):
    """A configuration file is missing or invalid; the message names the file and the field."""


class QualityLimits(BaseModel):
    """When a market is held back from modelling."""

    model_config = ConfigDict(extra="forbid")

    min_history_weeks: int = Field(52, ge=1, description="weeks with sales needed before a market is modelled")
    max_gap_weeks: int = Field(4, ge=0, description="weeks without sales (or a control) a market may have")


class BrandConfig(BaseModel):
    """One brand: its channel taxonomy, target measure, controls and quality limits."""

    model_config = ConfigDict(extra="forbid")

    brand: str = Field(min_length=1)
    target: str = Field("revenue", description="the sales measure that the model explains")
    measures: list[str] = Field(default_factory=lambda: ["revenue"], description="sales measures kept in silver")
    taxonomy: dict[str, list[str]] = Field(description="model channel -> raw channel names in the spend files")
    controls: list[str] = Field(default_factory=list)
    granularity: Literal["daily", "weekly"] = Field(
        "daily", description="raw rows per day, or one per week dated on its Monday; a week is complete with 7 or 1"
    )
    quality: QualityLimits = Field(default_factory=QualityLimits)
    model_spec: str | None = Field(None, description="model spec YAML, relative to conf/; default: built from channels")

    @field_validator("taxonomy")
    @classmethod
    def _each_raw_name_once(cls, taxonomy: dict[str, list[str]]) -> dict[str, list[str]]:
        if not taxonomy:
            raise ValueError("needs at least one model channel")
        seen: dict[str, str] = {}
        for channel, raw_names in taxonomy.items():
            if not raw_names:
                raise ValueError(f"model channel {channel!r} has no raw channel names")
            for raw in raw_names:
                if raw in seen:
                    raise ValueError(f"raw channel {raw!r} maps to both {seen[raw]!r} and {channel!r}")
                seen[raw] = channel
        return taxonomy

    @model_validator(mode="after")
    def _target_is_a_measure(self) -> BrandConfig:
        if self.target not in self.measures:
            raise ValueError(f"target {self.target!r} is not one of the measures {self.measures}")
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
            return ModelSpec.from_yaml(CONF_DIR / self.model_spec)
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
        return _load(cls, Path(path))


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

    unit: Literal["market"] = "market"
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

    def fit_settings(self):  # -> mmm_models.fitting.FitSettings (imported here: it loads JAX)
        """The sampler settings of ``mmm_models`` that these training settings stand for."""
        from mmm_models.fitting import FitSettings

        return FitSettings(
            **self.model_dump(exclude={"unit", "compile_dir", "cores_per_market"}), cores=self.cores_per_market
        )


class GateSettings(BaseModel):
    """The promotion gate: a version that breaks any threshold gets no alias."""

    model_config = ConfigDict(extra="forbid")

    max_rhat: float = 1.01
    min_ess_bulk: float = 400
    max_divergences: int = 0
    max_holdout_wape_ratio: float = Field(
        1.5, gt=0, description="holdout WAPE / in-sample WAPE: does the model forecast as well as it fits?"
    )
    max_holdout_mape: float | None = Field(None, gt=0, description="optional absolute ceiling; off by default")
    auto_promote: bool = True


class PlatformConfig(BaseModel):
    """Paths, tracking, training and gate settings for one environment."""

    model_config = ConfigDict(extra="forbid")

    landing: str = "outputs/landing"
    lake: str = "outputs/lake"
    brands: str = "conf/brands"
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    gate: GateSettings = Field(default_factory=GateSettings)

    @classmethod
    def from_yaml(cls, path: str | Path = CONF_DIR / "platform.yaml") -> PlatformConfig:
        return _load(cls, Path(path))


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


def _load(model: type[BaseModel], path: Path) -> BaseModel:
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    try:
        return model.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
