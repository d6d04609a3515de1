"""Brand and platform config validation, the default model spec, and the promotion gate's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import BrandConfig, ConfigError, GateSettings, PlatformConfig, load_brands
from pipelines.gate import evaluate_gate, failures


def test_shipped_configs_load_and_the_default_spec_follows_the_taxonomy() -> None:
    platform = PlatformConfig.from_yaml()
    assert platform.gate.max_rhat == 1.01 and platform.training.chains == 4
    brands = load_brands()
    assert set(brands) == {"acme", "bolt", "cobalt"}
    spec = brands["acme"].spec()
    assert spec.channel_names == ["tv", "search", "social"] and [c.name for c in spec.controls] == ["price_index"]
    assert spec.date_column == "week_start" and spec.target.column == "target"


def test_bad_brand_files_name_the_file_and_the_field(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("brand: a\ntaxonomy: {tv: [tv_linear], social: [tv_linear]}\n")
    with pytest.raises(ConfigError, match=r"a.yaml: taxonomy: .*'tv_linear' maps to both 'tv' and 'social'"):
        load_brands(tmp_path)
    (tmp_path / "a.yaml").write_text("brand: a\ntaxonomy: {tv: [x]}\ntarget: orders\n")
    with pytest.raises(ConfigError, match="target 'orders' is not one of the measures"):
        load_brands(tmp_path)
    (tmp_path / "a.yaml").write_text("brand: a\ntaxonomy: {tv: [x]}\nquality: {min_history_weeks: 0}\n")
    with pytest.raises(ConfigError, match=r"quality\.min_history_weeks"):
        load_brands(tmp_path)
    with pytest.raises(ConfigError, match="no brand files"):
        load_brands(tmp_path / "empty")


def test_gate_passes_fails_and_explains() -> None:
    gate = GateSettings()
    good = {
        "max_rhat": 1.004,
        "min_ess_bulk": 900.0,
        "divergences": 0,
        "wape_train": 0.05,
        "wape_holdout": 0.07,
        "mape_holdout": 0.9,  # a week near zero: large MAPE, and no absolute ceiling by default
        "holdout_weeks": 13,
    }
    assert failures(evaluate_gate(good, gate)) == []
    overfit = failures(evaluate_gate({**good, "wape_holdout": 0.2}, gate))
    assert [c.name for c in overfit] == ["holdout_wape_ratio"] and overfit[0].describe() == "FAIL: 4 <= 2.5"
    ceiling = GateSettings(max_holdout_mape=0.25)
    assert [c.name for c in failures(evaluate_gate(good, ceiling))] == ["holdout_mape"]
    bad = {**good, "max_rhat": 1.05, "divergences": 3}
    failed = failures(evaluate_gate(bad, gate))
    assert [c.name for c in failed] == ["max_rhat", "divergences"]
    assert failed[0].describe() == "FAIL: 1.05 <= 1.01"
    no_holdout = {**good, "holdout_weeks": 0, "wape_holdout": None}
    assert "holdout_wape_ratio" not in [c.name for c in evaluate_gate(no_holdout, gate)]
    assert failures(evaluate_gate({**good, "wape_holdout": float("nan")}, gate))[0].name == "holdout_wape_ratio"


def test_brand_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="taxonmy"):
        BrandConfig.model_validate({"brand": "a", "taxonomy": {"tv": ["x"]}, "taxonmy": {}})
