"""Where the catalogue's tables are: Delta folders by path, or Unity Catalog names; no Spark needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import ConfigError, PlatformConfig, is_uri
from pipelines.lake import Lake
from pipelines.tables import BUDGET_RECOMMENDATIONS, MODEL_INPUT, sql_literal


def test_a_folder_lake_names_its_tables_by_path_and_a_unity_catalog_lake_by_name() -> None:
    folder = Lake(Path("/data/lake"))
    assert folder.identifier(MODEL_INPUT) == "delta.`/data/lake/gold/model_input`"
    assert folder.location(MODEL_INPUT) == "/data/lake/gold/model_input"
    assert Lake.of("/data/lake") == folder and Lake.of(folder) is folder

    catalog = Lake(Path("/Volumes/c/s/lake"), "mmm_prod.weekly")
    assert catalog.identifier(BUDGET_RECOMMENDATIONS) == "mmm_prod.weekly.outputs_budget_recommendations"
    assert catalog.location(MODEL_INPUT) == "mmm_prod.weekly.gold_model_input"
    with pytest.raises(ValueError, match=r"Unity Catalog table mmm_prod\.weekly\.gold_model_input"):
        catalog.path(MODEL_INPUT)


def test_a_backtick_in_a_lake_path_cannot_end_the_identifier() -> None:
    assert Lake(Path("/tmp/a`b")).identifier(MODEL_INPUT) == "delta.`/tmp/a``b/gold/model_input`"


@pytest.mark.parametrize("schema", ["weekly", "a.b.c", "mmm.weekly; DROP TABLE x", "mmm.`weekly`", "1cat.s", "a.b-c"])
def test_a_tables_schema_must_be_a_plain_catalog_dot_schema(schema: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"catalog\.schema"):
        Lake(tmp_path, schema)
    platform = tmp_path / "platform.yaml"
    platform.write_text(f"tables: '{schema}'\n")
    with pytest.raises(ConfigError, match="tables"):
        PlatformConfig.from_yaml(platform)


def test_the_platform_puts_tables_in_unity_catalog_only_when_told(tmp_path: Path) -> None:
    platform = tmp_path / "platform.yaml"
    platform.write_text("lake: lake\n")
    local = PlatformConfig.from_yaml(platform).tables_lake()
    assert local == Lake(tmp_path / "lake") and local.schema is None
    assert PlatformConfig.from_yaml(platform).tables_lake("/elsewhere").root == Path("/elsewhere")
    platform.write_text("lake: lake\ntables: main.mmm\n")
    assert PlatformConfig.from_yaml(platform).tables_lake() == Lake(tmp_path / "lake", "main.mmm")


def test_sql_literals_escape_quotes_and_backslashes() -> None:
    import datetime as dt

    assert sql_literal("it's") == "'it\\'s'"
    assert sql_literal("a\\' OR 1=1 --") == "'a\\\\\\' OR 1=1 --'"
    assert sql_literal(dt.date(2026, 1, 5)) == "DATE'2026-01-05'"
    assert sql_literal(3) == "3"


def test_uris_are_told_from_paths() -> None:
    assert all(is_uri(v) for v in ("s3://bucket/x", "dbfs:/Volumes/c/s/v", "mlflow-artifacts:/mmm", "file:///tmp"))
    assert not any(is_uri(v) for v in ("outputs/mlartifacts", "/abs/path", "../mlartifacts"))
