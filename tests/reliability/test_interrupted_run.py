"""An interrupted run, then a rerun: ``mmm pipeline`` killed with SIGKILL (its Spark JVM too) after it ingested
sales, with spend in bronze and controls not yet. The rerun takes the lake's lock at once (the kill released
it), ingests what is left, and the lake ends as an uninterrupted run leaves it: every file once in bronze,
every market's weeks in silver and gold, and rows in = rows passed + rows quarantined at every stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.data.run import run_pipeline
from pipelines.lock import lake_lock
from pipelines.tables import BRONZE, MARKET_STATUS, MODEL_INPUT, QUARANTINE, WEEKLY_SPEND
from tests.reliability.scenarios import AS_OF, SMALL, each_file_once, kill_pipeline_after, write_cli_project

pytestmark = pytest.mark.slow


def test_a_run_killed_mid_way_is_completed_by_the_next(spark, tmp_path: Path) -> None:
    brands = write_cli_project(tmp_path)
    killed_at = kill_pipeline_after(tmp_path, "lake", "ingest sales")
    assert killed_at is not None and killed_at.startswith("ingest sales: 1 new files")
    lake, landing = tmp_path / "lake", tmp_path / "landing"
    assert BRONZE["sales"].count(spark, lake) > 0 and not BRONZE["controls"].exists(spark, lake)  # killed mid-way

    with lake_lock(lake, "rerun", wait_s=0):  # a killed holder leaves no lock behind
        report = run_pipeline(spark, landing, lake, brands, AS_OF, progress=lambda _: None)
    ingested = {r.source: (r.files_ingested, r.files_skipped) for r in report.ingest}
    assert ingested == {
        "spend": ([], ["acme_batch1.csv"]),
        "sales": ([], ["acme_batch1.csv"]),
        "controls": (["acme_batch1.csv"], []),
    }
    assert each_file_once(spark, lake, landing)
    for stage in report.stages:
        assert stage.rows_in == stage.rows_passed + stage.rows_quarantined
    markets, weeks = len(SMALL.markets["acme"]), SMALL.weeks
    assert WEEKLY_SPEND.count(spark, lake) == markets * weeks * len(SMALL.taxonomy)
    assert MODEL_INPUT.count(spark, lake) == markets * weeks and QUARANTINE.count(spark, lake) == 0
    assert set(MARKET_STATUS.read(spark, lake).status) == {"included"}
