"""The dashboard in a real browser: headless Chromium loads it with no console errors, every chart renders
(Plotly draws SVG), and the screenshot lands in ``outputs/test_artifacts/``. No Spark: the tables are
small frames in the lake's schemas; the integration test renders the real lake's tables."""

from __future__ import annotations

import pandas as pd

from monitoring.dashboard import DashboardData, render
from tests.monitoring.browser import ARTIFACTS, open_in_chromium


def tables(with_recommendations: bool) -> DashboardData:
    markets = [("acme", "DE"), ("acme", "FR"), ("bolt", "US")]
    channels = ["tv", "search", "social"]
    drift = pd.DataFrame(
        [
            {"brand": b, "market": m, "channel": c, "metric": metric, "challenger_version": "2",
             "mean_shift_sd": 0.3 + 3.0 * (m == "FR" and c == "tv")}
            for b, m in markets for c in channels for metric in ("roas", "adstock_half_life")
        ]
    )  # fmt: skip
    summaries = pd.DataFrame(
        [
            {"brand": b, "market": m, "channel": c, "metric": "roas", "model_version": str(v),
             "mean": 1.0 + 0.1 * v, "hdi_low": 0.7 + 0.1 * v, "hdi_high": 1.3 + 0.1 * v}
            for b, m in markets for c in channels for v in (1, 2, 3)
        ]
    )  # fmt: skip
    calibration = pd.DataFrame(
        {
            "brand": "acme",
            "market": "DE",
            "channel": channels,
            "model_version": "3",
            "lift": [100.0, 250.0, 40.0],
            "observed_low": [80.0, 200.0, 30.0],
            "observed_high": [120.0, 300.0, 50.0],
            "model_lift_mean": [95.0, 120.0, 45.0],
            "model_lift_hdi_low": [70.0, 100.0, 35.0],
            "model_lift_hdi_high": [120.0, 140.0, 55.0],
            "inside_predictive_interval": [True, False, True],
        }
    )
    alerts = pd.DataFrame(
        [
            {"created_at": pd.Timestamp("2024-06-03 10:00"), "severity": "critical", "rule": "posterior_drift",
             "brand": "acme", "market": "FR", "channel": "tv", "metric": "roas", "value": 3.3, "threshold": 3.0,
             "champion_version": "1", "challenger_version": "2", "detail": "roas 1.1 -> 2.2 <script>"},
        ]
    )  # fmt: skip
    recommendations = pd.DataFrame()
    if with_recommendations:
        recommendations = pd.DataFrame(
            {"run_date": pd.Timestamp("2024-06-03").date(), "brand": "acme", "market": "DE", "channel": channels,
             "current_spend": 1000.0, "recommended_spend": [1200.0, 900.0, 900.0], "change_pct": [20.0, -10.0, -10.0],
             "expected_contribution": 361234.0, "contribution_hdi_low": 400.0, "contribution_hdi_high": 600.0,
             "roas": 1.2, "marginal_roas": 0.8, "expected_uplift": 2500.0, "uplift_hdi_low": -100.0,
             "uplift_hdi_high": 5000.0, "uplift_probability": 0.93, "verdict": "act", "test_weeks": None,
             "test_predicted_narrowing": None, "model_version": "3"}
        )  # fmt: skip
    return DashboardData(drift, summaries, calibration, alerts, recommendations)


def test_dashboard_renders_in_chromium_without_console_errors() -> None:
    page_file = ARTIFACTS / "dashboard.html"
    page_file.parent.mkdir(parents=True, exist_ok=True)
    page_file.write_text(render(tables(with_recommendations=True)))
    html = page_file.read_text()
    assert "<script src=" not in html  # plotly.js is inline
    check = open_in_chromium(page_file, ARTIFACTS / "dashboard.png")
    assert check.errors == []
    assert check.network == []  # self-contained: nothing fetched, so it works offline
    assert set(check.charts) == {"drift-heatmap", "roas-versions", "lift"}
    assert all(count > 0 for count in check.charts.values()), check.charts
    assert "acme/FR" in check.text and "roas 1.1 -> 2.2 <script>" in check.text  # escaped, shown as text
    assert "recommended_spend" in check.text and "no recommendations yet" not in check.text
    for column in ("expected_contribution", "contribution_hdi_low", "expected_uplift", "uplift_hdi_high", "verdict"):
        assert column in check.text
    assert "361,234" in check.text  # readable numbers, not 3.61e+05
    assert check.screenshot.stat().st_size > 10_000


def test_the_recommendation_columns_shown_are_the_tables_columns() -> None:
    from monitoring.dashboard import RECOMMENDATION_COLUMNS
    from pipelines.tables import BUDGET_RECOMMENDATIONS

    assert set(RECOMMENDATION_COLUMNS) <= set(BUDGET_RECOMMENDATIONS.columns)


def test_empty_lake_says_so_instead_of_failing() -> None:
    empty = DashboardData(*(pd.DataFrame() for _ in range(5)))
    page = render(empty)
    assert page.count("no data yet") == 3 and "no alerts" in page and "no recommendations yet" in page
