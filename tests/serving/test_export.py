"""``mmm export``: a run date's recommendations and the summaries of exactly the versions behind them, as CSV
and Excel, from a lake written with ``deltalake`` (no Spark anywhere)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from jobs.cli import main
from pipelines.tables import BUDGET_RECOMMENDATIONS, POSTERIOR_SUMMARIES
from tests.serving.conftest import write_table

WEEK1, WEEK2 = dt.date(2024, 6, 3), dt.date(2024, 6, 10)


def recommendation_rows(run_date: dt.date, version: str, spend: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_date": run_date,
            "brand": "acme",
            "market": "DE",
            "channel": ["tv", "search"],
            "status": "success",
            "model_name": "mmm_acme_de",
            "model_version": version,
            "recommended_spend": [spend, 2 * spend],
            "verdict": "hold",
            "recorded_at": pd.Timestamp("2024-06-10 06:00", tz="UTC"),
        }
    )


def summary_rows(version: str, roas: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "training_run_id": f"run{version}",
            "brand": "acme",
            "market": "DE",
            "model_name": "mmm_acme_de",
            "model_version": version,
            "channel": ["tv", "search"],
            "metric": "roas",
            "mean": [roas, roas / 2],
        }
    )


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """Two run dates, each recommended from its own version; summaries of both versions."""
    root = tmp_path / "lake"
    write_table(root, BUDGET_RECOMMENDATIONS, recommendation_rows(WEEK1, "1", 100.0))
    write_table(root, BUDGET_RECOMMENDATIONS, recommendation_rows(WEEK2, "2", 150.0))
    write_table(root, POSTERIOR_SUMMARIES, pd.concat([summary_rows("1", 1.5), summary_rows("2", 2.5)]))
    return root


def export(tmp_path: Path, lake: Path, *options: str) -> int:
    return main(["export", "--project", str(tmp_path), "--lake", str(lake), "--out", str(tmp_path / "out"), *options])


def test_the_latest_run_date_with_its_versions_summaries(tmp_path: Path, lake: Path, capsys) -> None:
    assert export(tmp_path, lake) == 0
    out = tmp_path / "out"
    rows = pd.read_csv(out / f"recommendations_{WEEK2}.csv")
    assert list(rows.channel) == ["search", "tv"] and set(rows.model_version) == {2}
    assert list(rows.recommended_spend) == [300.0, 150.0]
    summaries = pd.read_csv(out / f"channel_summaries_{WEEK2}.csv")
    assert set(summaries.model_version) == {2} and sorted(summaries["mean"]) == [1.25, 2.5]
    sheets = pd.read_excel(out / f"mmm_export_{WEEK2}.xlsx", sheet_name=None)
    assert list(sheets) == ["recommendations", "channel_summaries"]
    assert sheets["recommendations"]["recommended_spend"].tolist() == [300.0, 150.0]
    assert sheets["channel_summaries"]["mean"].tolist() == summaries["mean"].tolist()
    assert f"exported run date {WEEK2}: recommendations 2 rows, channel_summaries 2 rows" in capsys.readouterr().out


def test_an_earlier_run_date_exports_that_dates_version(tmp_path: Path, lake: Path) -> None:
    assert export(tmp_path, lake, "--run-date", str(WEEK1)) == 0
    summaries = pd.read_csv(tmp_path / "out" / f"channel_summaries_{WEEK1}.csv")
    assert set(summaries.model_version) == {1} and sorted(summaries["mean"]) == [0.75, 1.5]


def test_nothing_to_export_is_a_clear_error(tmp_path: Path, lake: Path, capsys) -> None:
    assert export(tmp_path, lake, "--run-date", "2024-07-01") == 1
    assert f"no budget recommendations on 2024-07-01; run dates: ['{WEEK1}', '{WEEK2}']" in capsys.readouterr().err
    assert export(tmp_path, tmp_path / "empty_lake") == 1
    assert "no budget recommendations in the lake yet" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
