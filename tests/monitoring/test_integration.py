"""Monitoring on real Spark, Delta and MLflow: two training runs of one market, a lift test the model
contradicts, the four tables, alerts that a rerun does not duplicate, a promotion held back by a
critical alert, the dashboard of that lake in Chromium, and the market report of its champion."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from monitoring.dashboard import write_dashboard
from monitoring.job import run_monitoring
from monitoring.report import REPORT_CHARTS, write_dashboard_and_reports
from pipelines.config import GateSettings, MlflowSettings, PlatformConfig, QualityLimits, TrainingSettings
from pipelines.data.run import run_pipeline
from pipelines.data.synthetic_raw import RawDataConfig, brand_configs, generate_raw_landing
from pipelines.recommend.job import recommend
from pipelines.registry.promotion import promote
from pipelines.tables import LIFT_CALIBRATION, POSTERIOR_DRIFT
from pipelines.training.driver import train
from tests.monitoring.browser import ARTIFACTS, open_in_chromium

pytestmark = pytest.mark.slow
AS_OF = dt.date(2024, 6, 3)


@pytest.fixture(scope="module")
def monitored(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("monitoring")
    config = RawDataConfig(markets={"acme": ["DE"]}, weeks=78, campaigns_per_raw_channel=1)
    landing = generate_raw_landing(folder / "landing", config)
    brands = brand_configs(config, QualityLimits(min_history_weeks=52))
    root = folder / "lake"
    run_pipeline(spark, landing.folder, root, brands, AS_OF, progress=lambda _: None)
    platform = PlatformConfig(
        mlflow=MlflowSettings(tracking_uri=f"sqlite:///{folder}/mlflow.db", artifact_location=str(folder / "art")),
        training=TrainingSettings(sampler="numpyro", chains=2, draws=300, tune=300, holdout_weeks=8),
        # 2 chains x 300 draws keep the test quick; the gate only has to let both versions through
        gate=GateSettings(max_rhat=1.2, min_ess_bulk=10, max_divergences=20),
    )
    quiet = lambda _: None  # noqa: E731
    first = train(spark, root, brands, platform, AS_OF, progress=quiet)
    promote(spark, root, platform, first.training_run_id)  # v1: champion
    second = train(spark, root, brands, platform, AS_OF, progress=quiet)  # v2, not promoted yet
    assert set(first.runs.status) == set(second.runs.status) == {"success"}, (first.table(), second.table())
    # Then an experiment lands that no model of this market can agree with: 10,000 extra on tv "returned"
    # 10 million. It lands after both fits (training calibrates on the lift tests it has), as a new test would.
    (landing.folder / "lift_tests").mkdir()
    pd.DataFrame(
        [{"brand": "acme", "market": "DE", "channel": "tv_linear", "start": "2023-09-04", "end": "2023-09-25",
          "spend_delta": 10_000, "lift": 10_000_000, "lift_se": 1_000}]
    ).to_csv(landing.folder / "lift_tests" / "tests.csv", index=False)  # fmt: skip
    run_pipeline(spark, landing.folder, root, brands, AS_OF, progress=lambda _: None)
    lines: list[str] = []
    report = run_monitoring(spark, root, brands, platform, AS_OF, progress=lines.append)
    assert not report.errors, f"monitoring failed: {report.errors}\n" + "\n".join(lines)
    counts = {t: _count(spark, root, t) for t in ("posterior_drift", "lift_calibration", "data_drift", "alerts")}
    rerun = run_monitoring(spark, root, brands, platform, AS_OF, progress=quiet)
    recounts = {t: _count(spark, root, t) for t in counts}
    promotions = promote(spark, root, platform, second.training_run_id)
    return locals()


def lake_path(root, layer: str, name: str) -> str:
    """Where a table lives under a lake root, spelled out here so the tests check the catalogue's layout."""
    return str(Path(root) / layer / name)


def _count(spark, root, table: str) -> int:
    return spark.read.format("delta").load(lake_path(root, "outputs", table)).count()


def test_drift_calibration_and_data_drift_rows(monitored) -> None:
    report, spark, root = monitored["report"], monitored["spark"], monitored["root"]
    assert report.errors == {} and len(report.markets) == 1
    assert list(report.markets[["champion", "challenger"]].iloc[0]) == ["1", "2"]
    drift = spark.read.format("delta").load(POSTERIOR_DRIFT.path(root)).toPandas()
    assert len(drift) == 3 * 4  # channels x business metrics
    assert set(drift.metric) == {"roas", "contribution_share", "adstock_half_life", "half_saturation_spend"}
    assert (drift.champion_sd > 0).all() and drift.hdi_overlap.between(0, 1).all()
    calibration = spark.read.format("delta").load(LIFT_CALIBRATION.path(root)).toPandas()
    assert len(calibration) == 1 and calibration.channel.iloc[0] == "tv"  # the raw name mapped to the model's
    assert calibration.z_score.iloc[0] > 4 and not calibration.inside_predictive_interval.iloc[0]
    assert monitored["counts"]["data_drift"] > 0
    assert any("acme/DE: v1 -> v2" in line for line in monitored["lines"])


def test_alerts_are_raised_once_across_reruns(monitored) -> None:
    assert monitored["counts"] == monitored["recounts"]
    assert monitored["report"].new_alerts == monitored["counts"]["alerts"] > 0
    assert monitored["rerun"].new_alerts == 0
    assert monitored["rerun"].counts == monitored["report"].counts and monitored["report"].counts["critical"] >= 1
    assert "critical" in monitored["report"].summary()


def test_a_critical_alert_holds_the_challenger_back(monitored) -> None:
    (promotion,) = monitored["promotions"]
    assert promotion.version == "2" and promotion.action.startswith("challenger (held back")
    platform = monitored["platform"]
    client = MlflowClient(platform.mlflow.tracking_uri)
    assert str(client.get_model_version_by_alias("mmm_acme_de", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("mmm_acme_de", "challenger").version) == "2"
    assert int(client.get_model_version("mmm_acme_de", "2").tags["monitoring.critical_alerts"]) >= 1


def test_dashboard_of_the_lake_renders_in_chromium(monitored) -> None:
    path = write_dashboard(
        monitored["spark"], monitored["root"], monitored["platform"], ARTIFACTS / "dashboard_lake.html"
    )
    check = open_in_chromium(path, ARTIFACTS / "dashboard_lake.png")
    assert check.errors == [] and check.network == []
    assert check.charts and all(count > 0 for count in check.charts.values()), check.charts
    assert "no recommendations yet" in check.text and "lift_calibration" in check.text


def test_the_market_report_of_the_champion(monitored) -> None:
    """Last (it adds recommendations to the lake): the report of the champion (v1: the alert held v2 back), with
    its recommendation, its review and the lift test (computed for v1: monitoring checked v2), logged to v1's run."""
    spark, root, platform = monitored["spark"], monitored["root"], monitored["platform"]
    recommend(spark, root, monitored["brands"], platform, AS_OF, progress=lambda _: None)
    lines: list[str] = []
    dashboard, written = write_dashboard_and_reports(
        spark, root, platform, ARTIFACTS / "lake" / "dashboard.html", lines.append
    )
    assert written.missing == {} and set(written.reports) == {"acme/DE"}, lines
    report = written.reports["acme/DE"]
    assert report == dashboard.parent / "reports" / "acme_de.html" and written.index.parent == report.parent
    print(f"\nreport of acme/DE in {written.seconds['acme/DE']:.1f} s (champion loaded, rendered, logged)")
    client = MlflowClient(platform.mlflow.tracking_uri)
    run_id = client.get_model_version("mmm_acme_de", "1").run_id
    assert [a.path for a in client.list_artifacts(run_id, "report")] == ["report/acme_de.html"]
    index = written.index.read_text()
    assert '<a href="acme_de.html">acme/DE</a>' in index and "<td>1</td>" in index  # the champion's version
    check = open_in_chromium(report, ARTIFACTS / "report_lake.png")
    assert check.errors == [] and check.network == []
    assert set(check.charts) == set(REPORT_CHARTS) and all(n > 0 for n in check.charts.values()), check.charts
    assert "Champion v1 of acme/DE" in check.text and "tv" in check.text
    board = open_in_chromium(dashboard, ARTIFACTS / "dashboard_lake_reports.png")
    assert board.errors == [] and board.network == [] and "all markets with their verdicts" in board.text
