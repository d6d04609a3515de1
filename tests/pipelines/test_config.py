"""Brand and platform config validation and the default model spec."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelines.config import BrandConfig, ConfigError, PlatformConfig, TrainingSettings, load_brands


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


def test_brand_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="taxonmy"):
        BrandConfig.model_validate({"brand": "a", "taxonomy": {"tv": ["x"]}, "taxonmy": {}})


def test_a_brand_sets_the_data_review_thresholds_and_the_defaults_are_the_librarys(tmp_path: Path) -> None:
    from mmm_models.data_review import DataReviewThresholds

    assert load_brands()["acme"].quality.data_review.thresholds() == DataReviewThresholds()
    (tmp_path / "a.yaml").write_text(
        "brand: a\ntaxonomy: {tv: [x]}\nquality: {data_review: {max_pair_correlation: 0.8, min_target_r2: 0.2}}\n"
    )
    thresholds = load_brands(tmp_path)["a"].quality.data_review.thresholds()
    assert thresholds.max_pair_correlation == 0.8 and thresholds.min_target_r2 == 0.2
    assert thresholds.max_zero_share == DataReviewThresholds().max_zero_share
    (tmp_path / "a.yaml").write_text("brand: a\ntaxonomy: {tv: [x]}\nquality: {data_review: {max_pair_corr: 0.8}}\n")
    with pytest.raises(ConfigError, match=r"quality\.data_review\.max_pair_corr"):
        load_brands(tmp_path)


def test_brand_chain_tasks_is_auto_or_a_count_never_more_than_the_chains() -> None:
    assert TrainingSettings().brand_chain_tasks == "auto"
    assert TrainingSettings(chains=4).chain_tasks(slots=2) == 2  # auto: the cluster's task slots
    assert TrainingSettings(chains=4).chain_tasks(slots=16) == 4  # never a task without a chain
    assert TrainingSettings(chains=4, brand_chain_tasks=1).chain_tasks(slots=16) == 1
    assert TrainingSettings(chains=2, brand_chain_tasks=3).chain_tasks(slots=16) == 2
    for bad in (0, -1, "many"):
        with pytest.raises(ValidationError):
            TrainingSettings(brand_chain_tasks=bad)
    assert "brand_chain_tasks" not in TrainingSettings(brand_chain_tasks=2).fit_settings().model_dump()
