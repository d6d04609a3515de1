"""Name rules: one normalisation everywhere, one pattern, injective model names, paths that stay put."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from pipelines import names
from pipelines.config import BrandConfig, ConfigError
from pipelines.data.ingest import ingest_source
from pipelines.data.silver import SPEND, build_weekly
from pipelines.tables import QUARANTINE, WEEKLY_SPEND

BRAND = BrandConfig(brand="acme", taxonomy={"tv": ["tv_linear"]})


def test_spellings_of_one_market_normalise_to_one_name() -> None:
    assert {names.normalise(m, "market") for m in ("DE", "de", "DE ", " d e ")} == {"DE", "D E"}
    assert names.normalise("  Acme   Corp ", "brand") == "acme corp"
    assert names.check("north-east 2", "market") == "NORTH-EAST 2"


@pytest.mark.slow
def test_the_spark_normalisation_is_the_python_one(spark) -> None:
    """Landing records (Spark) and brand files (Python) must agree, or a market would not find its config."""
    values = ["de", " DE ", "d e", "d  e", "d\te", "\tde\n", "d \t\r\n e", "d\x0be", "d\fe", "  ", "", None, "ü  x"]
    frame = spark.createDataFrame([(v,) for v in values], "name string")
    got = frame.select(
        "name", names.normalise_column("name", "market").alias("market"), names.normalise_column("name").alias("value")
    ).collect()
    for row in got:
        python = (None, None) if row.name is None else (names.normalise(row.name, "market"), names.normalise(row.name))
        assert (row.market, row.value) == python, row.name


@pytest.mark.parametrize("bad", ["D/E", "..", "a.b", "", "-de", "x" * 65, "de\x00", "ü"])
def test_a_name_outside_the_pattern_is_refused_with_the_rule(bad: str) -> None:
    with pytest.raises(names.InvalidNameError, match="letters, digits"):
        names.check(bad, "market", "market")


def test_model_names_are_injective_and_valid_for_unity_catalog() -> None:
    pairs = [("acme", "DE"), ("acme", "de"), ("a_b", "c"), ("a", "b_c"), ("a b", "c"), ("a-b", "c"), ("ab", "c")]
    built = {pair: names.model_name("mmm", *pair) for pair in pairs}
    assert built[("acme", "DE")] == built[("acme", "de")] == "mmm_acme_de"  # one market, and today's name kept
    distinct_markets = {(names.normalise(b, "brand"), names.normalise(m, "market")) for b, m in pairs}
    assert len(set(built.values())) == len(distinct_markets)
    assert all(name.replace("_", "").isalnum() and name == name.lower() for name in built.values())


@pytest.mark.parametrize("bad", ["../x.csv", "/etc/cron.d", "..", "a/b", "", "a\\b"])
def test_safe_path_keeps_a_file_inside_its_folder(tmp_path: Path, bad: str) -> None:
    with pytest.raises(names.InvalidNameError):
        names.safe_path(tmp_path, bad)
    assert names.safe_path(tmp_path, "acme_batch1.csv") == (tmp_path / "acme_batch1.csv").resolve()


def test_brand_files_normalise_names_and_refuse_duplicate_keys_and_missing_specs(tmp_path: Path) -> None:
    config = BrandConfig(brand=" Acme ", taxonomy={"TV": ["TV_Linear "]}, controls=["Price"])
    assert (config.brand, config.taxonomy, config.controls) == ("acme", {"tv": ["tv_linear"]}, ["price"])
    with pytest.raises(ValueError, match="model channel"):
        BrandConfig(brand="acme", taxonomy={"paid social": ["fb"]})  # becomes a column name: no spaces
    twice = tmp_path / "twice.yaml"
    twice.write_text("brand: acme\ntaxonomy:\n  tv: [tv_linear]\ntaxonomy:\n  search: [google]\n")
    with pytest.raises(ConfigError, match="duplicate keys \\['taxonomy'\\]"):
        BrandConfig.from_yaml(twice)
    missing = tmp_path / "missing.yaml"
    missing.write_text("brand: acme\ntaxonomy:\n  tv: [tv_linear]\nmodel_spec: models/nowhere.yaml\n")
    with pytest.raises(ConfigError, match=re.escape("model_spec 'models/nowhere.yaml' not found")):
        BrandConfig.from_yaml(missing)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "here.yaml").write_text("name: x\n")
    beside = tmp_path / "beside.yaml"
    beside.write_text("brand: acme\ntaxonomy:\n  tv: [tv_linear]\nmodel_spec: models/here.yaml\n")
    assert BrandConfig.from_yaml(beside).model_spec == str((tmp_path / "models" / "here.yaml").resolve())


@pytest.mark.slow
def test_silver_merges_spellings_of_a_market_and_quarantines_bad_names(spark, tmp_path: Path) -> None:
    landing, root = tmp_path / "landing", tmp_path / "lake"
    (landing / "spend").mkdir(parents=True)
    rows = [
        ("2024-01-01", "acme", "DE", "tv_linear", "c1", 10.0),
        ("2024-01-02", "Acme", "de", "TV_Linear", "c1", 20.0),
        ("2024-01-03", "acme ", "DE ", "tv_linear", "c1", 30.0),
        ("2024-01-04", "acme", "D/E", "tv_linear", "c1", 40.0),
    ]
    frame = pd.DataFrame(rows, columns=["date", "brand", "market", "channel", "campaign", "spend"])
    frame.to_csv(landing / "spend" / "spend.csv", index=False)
    ingest_source(spark, root, landing, "spend")
    report, _ = build_weekly(spark, root, SPEND, {"acme": BRAND}, today=dt.date(2024, 6, 1))
    assert (report.rows_in, report.rows_passed, report.rows_quarantined) == (4, 3, 1)
    weekly = WEEKLY_SPEND.read(spark, root)
    assert weekly[["brand", "market", "spend"]].values.tolist() == [["acme", "DE", 60.0]]
    (bad,) = QUARANTINE.read(spark, root).itertuples()
    assert bad.check == "valid_names" and "D/E" in bad.reason and "letters, digits" in bad.reason
