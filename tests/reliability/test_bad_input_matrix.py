"""The bad-input matrix (issue 18, acceptance 1): every bad input of the hardening issue and the ten of the
pipelines issue in one landing folder, run through the real pipeline twice.

Each case must end in quarantine (or an exclusion) with a reason that names its problem, while the clean
markets reach ``model_input`` exactly as simulated, and rows in = rows passed + rows quarantined at every
stage. The cases themselves live in ``tests/reliability/scenarios.py`` (``benchmarks/fault_matrix.py``
runs the same ones). Brand files and names that must be refused are checked without Spark.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import BrandConfig
from pipelines.data.ingest import ingest_source
from pipelines.data.run import run_pipeline
from pipelines.data.silver import SALES, SPEND, build_weekly
from pipelines.tables import BRONZE, MARKET_STATUS, QUARANTINE, WEEKLY_SPEND
from tests.reliability.scenarios import (
    AS_OF,
    CONFIG_CASES,
    MATRIX_CASES,
    build_matrix,
    config_refusal,
    escaping_brand_refusal,
    sources_missing,
)

TABLES = [*BRONZE.values(), QUARANTINE, MARKET_STATUS, WEEKLY_SPEND]


@pytest.fixture(scope="module")
def matrix(spark, tmp_path_factory):
    """The matrix landing, run once and then again on the same files."""
    folder = tmp_path_factory.mktemp("matrix")
    built = build_matrix(folder / "landing")
    root = folder / "lake"
    first = run_pipeline(spark, built.folder, root, built.brands, AS_OF, progress=lambda _: None)
    counts = {t.name: t.count(spark, root) for t in TABLES}
    again = run_pipeline(spark, built.folder, root, built.brands, AS_OF, progress=lambda _: None)
    return {"matrix": built, "root": root, "first": first, "again": again, "counts": counts}


@pytest.mark.slow
@pytest.mark.parametrize("case", MATRIX_CASES)
def test_each_bad_input_is_quarantined_with_its_reason(spark, matrix, case: str) -> None:
    assert matrix["matrix"].problem(spark, matrix["root"], case) is None


@pytest.mark.slow
def test_the_clean_markets_flow_on_exactly_and_nothing_is_lost(spark, matrix) -> None:
    built, root = matrix["matrix"], matrix["root"]
    assert built.flows_on(spark, root) is None
    assert [s.status for s in matrix["first"].statuses] == ["excluded", "included", "excluded", "included"]
    assert built.rows_lost(spark, root, matrix["first"]) == 0
    assert built.rows_lost(spark, root, matrix["again"]) == 0
    # nothing new the second time: silver checked no record again (and changed nothing: the test below)
    silver = [s for s in matrix["again"].stages if s.table.startswith("weekly_")]
    assert len(silver) == 3 and all(s.rows_in == 0 and not s.every_record for s in silver)


@pytest.mark.slow
def test_a_second_run_on_the_same_files_changes_nothing(spark, matrix) -> None:
    again, root = matrix["again"], matrix["root"]
    assert {t.name: t.count(spark, root) for t in TABLES} == matrix["counts"]
    assert again.run_key == matrix["first"].run_key
    for ingested in again.ingest:
        assert ingested.files_ingested == [] and ingested.files_quarantined == {}
    refused = sum(len(r.files_quarantined) for r in matrix["first"].ingest)
    assert sum(len(r.files_quarantined_before) for r in again.ingest) == refused


@pytest.mark.slow
def test_great_expectations_counts_the_records_the_quarantine_holds(spark, matrix) -> None:
    """Each record rule, the new ``names_present`` and the finite-number rules included, is counted the same
    by its GX expectation as by the quarantine."""
    quarantine = QUARANTINE.read(spark, matrix["root"])
    records = quarantine[~quarantine.check.isin(["parse", "superseded", "unique_key"])]
    for outcome in (o for o in matrix["first"].outcomes if o.suite.endswith(".records")):
        table = outcome.suite.split(".")[1]
        held = ((records.table == table) & (records.check == outcome.check)).sum()
        assert outcome.unexpected_count == held, (outcome.suite, outcome.check)
    assert set(records.check) >= {"names_present", "valid_names", "spend_not_null", "known_measure"}


@pytest.mark.slow
def test_a_source_without_any_ingested_file_does_not_stop_the_run(spark, tmp_path: Path) -> None:
    """No ``controls/`` folder and a refused sales file: no bronze table for either. The run completes, the
    refused file is quarantined, and the market is held back for want of sales (it crashed before)."""
    landing, brands = sources_missing(tmp_path / "landing")
    root = tmp_path / "lake"
    report = run_pipeline(spark, landing, root, brands, AS_OF, progress=lambda _: None)
    stages = {s.table: s for s in report.stages}
    assert stages["weekly_sales"].rows_in == stages["weekly_controls"].rows_in == 0
    assert stages["weekly_spend"].rows_in == BRONZE["spend"].count(spark, root) > 0
    (refused,) = QUARANTINE.read(spark, root).query("check == 'parse'").itertuples()
    assert refused.source_file == "acme_batch1.csv" and refused.reason.startswith("missing columns")
    (status,) = report.statuses
    assert status.status == "excluded" and "min_history" in status.checks and "0 weeks with sales" in status.reason


@pytest.mark.slow
def test_a_corrected_file_resent_under_its_name_supersedes_the_first(spark, tmp_path: Path) -> None:
    """Suppliers re-send a corrected file with the same name: the older record is ``superseded`` (not a
    "duplicate in one file"), and the week takes the new value."""
    landing, root = tmp_path / "landing", tmp_path / "lake"
    (landing / "spend").mkdir(parents=True)
    brands = {"acme": BrandConfig(brand="acme", taxonomy={"tv": ["tv_linear"]})}
    columns = ["date", "brand", "market", "channel", "campaign", "spend"]
    for spend in (10.0, 12.5):
        pd.DataFrame([("2024-01-01", "acme", "DE", "tv_linear", "c1", spend)], columns=columns).to_csv(
            landing / "spend" / "acme.csv", index=False
        )
        ingest_source(spark, root, landing, "spend")
        report, records = build_weekly(spark, root, SPEND, brands, dt.date(2024, 6, 1))
        records.unpersist()
    assert (report.rows_in, report.rows_passed, report.rows_quarantined) == (2, 1, 1)
    assert WEEKLY_SPEND.read(spark, root).spend.tolist() == [12.5]
    (old,) = QUARANTINE.read(spark, root).itertuples()
    assert (old.check, old.reason) == ("superseded", "restated by a later file: acme.csv")
    assert '"spend":"10.0"' in old.record


@pytest.mark.slow
def test_sales_whose_measure_was_renamed_in_the_brand_file_do_not_stop_silver(spark, tmp_path: Path) -> None:
    """Bronze holds ``revenue``; the brand now calls its measure ``net_revenue``: no sales records (the market is
    then held back for want of sales), where silver raised before on every run."""
    landing, root = tmp_path / "landing", tmp_path / "lake"
    (landing / "sales").mkdir(parents=True)
    (landing / "sales" / "acme.csv").write_text("date,brand,market,revenue\n2024-01-01,acme,DE,100\n")
    ingest_source(spark, root, landing, "sales", measures=["revenue"])
    renamed = BrandConfig(brand="acme", taxonomy={"tv": ["tv_linear"]}, measures=["net_revenue"], target="net_revenue")
    report, records = build_weekly(spark, root, SALES, {"acme": renamed}, dt.date(2024, 6, 1))
    records.unpersist()
    assert (report.rows_in, report.rows_out) == (0, 0) and BRONZE["sales"].count(spark, root) == 1


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_a_bad_brand_file_is_refused_naming_the_problem(tmp_path: Path, case: str) -> None:
    message = config_refusal(tmp_path / "brands", case)
    for part in CONFIG_CASES[case][1]:
        assert part in message
    assert str(tmp_path / "brands") in message  # the file (or folder) is named


def test_a_brand_name_never_writes_outside_the_landing_folder(tmp_path: Path) -> None:
    assert "'../../x_batch1.csv' is not a safe file name" in escaping_brand_refusal(tmp_path)
