"""Brand and platform configuration: YAML files under ``conf/``, validated by pydantic.

A brand file says how that brand's raw data maps onto the model: which raw channel names make up
each model channel (the taxonomy), which sales measure is the target, which controls exist, and the
quality limits that decide whether a market is modelled this week.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    quality: QualityLimits = Field(default_factory=QualityLimits)

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

    @classmethod
    def from_yaml(cls, path: str | Path) -> BrandConfig:
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
