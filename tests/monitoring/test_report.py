"""The market report on a real small fit (no mock of the model): every chart named in issue 19 is drawn, the
recommendation table has the contribution and uplift columns, the response curves mark the optimiser's own
answer, and the report, the index and the dashboard open in headless Chromium with no console error and no
network request (screenshots in ``outputs/test_artifacts/``)."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

from mmm_models import analysis
from mmm_models.diagnostics import diagnose
from mmm_models.report import channel_table, readable
from mmm_models.review import naive_holdout_wape
from monitoring.calibration import lift_calibration
from monitoring.dashboard import render, roas_by_version
from monitoring.report import (
    INDEX_COLUMNS,
    REPORT_CHARTS,
    MarketReportInputs,
    contribution_figure,
    market_file_name,
    render_index,
    render_report,
    response_figure,
    waterfall_figure,
)
from pipelines.config import BudgetSettings, RecommendSettings, ReviewSettings
from pipelines.names import InvalidNameError
from pipelines.recommend.budget import decide, recommend_budget, success_rows
from pipelines.training.review import baseline, goodness_of_fit, review_json, worst
from tests.monitoring.browser import ARTIFACTS, open_in_chromium
from tests.monitoring.test_dashboard import tables


@pytest.fixture(scope="module")
def inputs(quick_example_fit) -> MarketReportInputs:
    """The example's fit with what the platform writes about a champion: its recommendation (the job's own
    functions), two review checks, and two go-dark lift tests checked against it."""
    model = quick_example_fit
    budget = BudgetSettings()
    recommendation = recommend_budget(model, model.data[model.channel_names], budget)
    decision = decide(model, recommendation, RecommendSettings())
    rows = pd.DataFrame(success_rows(recommendation, budget, ("mmm_acme_de", "3"), decision))
    rows = rows.assign(run_date=pd.Timestamp("2021-09-06").date(), brand="acme", market="DE")
    metrics = analysis.channel_metric_draws(model, max_draws=300, marginal=False)
    settings = ReviewSettings()
    checks = [
        goodness_of_fit(diagnose(model).to_dict(), naive_holdout_wape(model), settings),
        baseline(metrics, settings),
    ]
    dates, data = model.data[model.spec.date_column], model.data
    tests = pd.DataFrame(
        {
            "channel": ["x1", "x2"],
            "start": [dates.iloc[60], dates.iloc[100]],
            "end": [dates.iloc[63], dates.iloc[103]],
            "spend_delta": [-data["x1"].iloc[60:64].sum(), -data["x2"].iloc[100:104].sum()],
            "lift": [-20_000.0, -1_000.0],
            "lift_se": [2_000.0, 300.0],
        }
    )
    calibration = lift_calibration(model, tests).assign(brand="acme", market="DE", model_version="3")
    return MarketReportInputs(
        "acme", "DE", model, "3", rows, json.loads(review_json(checks)), worst(checks), calibration
    )


@pytest.fixture(scope="module")
def report(inputs) -> str:
    return render_report(inputs)


def table(page: str, table_id: str) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of the table with ``table_id``."""
    found = re.search(rf'<table[^>]*id="{table_id}"[^>]*>(.*?)</table>', page, re.S)
    assert found, f"no table {table_id}"
    header = re.findall(r"<th[^>]*>(.*?)</th>", found[1], re.S)
    body = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", found[1], re.S)]
    return [h.strip() for h in header], [[c.strip() for c in row] for row in body if row]


def test_every_named_chart_is_in_the_report(report) -> None:
    charts = re.findall(r'<div id="([a-z-]+)" class="plotly-graph-div"', report)
    assert sorted(charts) == sorted(REPORT_CHARTS)
    assert "<script src=" not in report  # self-contained: the browser test checks that nothing is fetched
    assert report.count("plotly.js v") == 1  # the library once, however many charts


def test_the_recommendation_table_has_contribution_and_uplift_columns(report, inputs) -> None:
    header, body = table(report, "recommendation-table")
    for column in ("expected_contribution", "contribution_hdi_low", "contribution_hdi_high", "expected_uplift",
                   "uplift_hdi_low", "uplift_hdi_high", "uplift_probability", "verdict"):  # fmt: skip
        assert column in header
    rows = inputs.recommendation
    assert [r[0] for r in body] == list(rows["channel"])
    at = header.index("expected_contribution")
    assert [r[at] for r in body] == [readable(v) for v in rows["expected_contribution"]]  # readable, not 3.61e+05
    assert body[0][header.index("expected_uplift")] == readable(rows["expected_uplift"].iloc[0])
    assert "e+0" not in report.split("<h2>Budget allocation", 1)[1].split("</section>", 1)[0]


def test_no_table_writes_a_number_in_scientific_notation(report) -> None:
    for table_id in ("channel-table", "recommendation-table", "lift-table", "review-checks"):
        _, body = table(report, table_id)
        cells = [cell for row in body for cell in row]
        assert cells and not [c for c in cells if re.search(r"\de[+-]\d", c)], table_id


def test_the_channel_table_reads_large_figures_with_separators(inputs) -> None:
    model = inputs.model
    summary = analysis.widen_channel_metrics(model, analysis.channel_metrics(model, max_draws=100))
    large = [c for c in summary.columns if c == "spend" or c.startswith("half_saturation_spend_")]
    summary[large] = summary[large] * 1e5  # a market that spends millions
    cells = channel_table(summary)
    assert cells["spend"].tolist() == [f"{v:,.0f}" for v in summary["spend"]]
    assert not cells.map(lambda c: bool(re.search(r"\de[+-]\d", c))).any().any()


def test_the_review_checks_and_lift_tests_are_listed(report, inputs) -> None:
    header, body = table(report, "review-checks")
    assert [r[0] for r in body] == list(inputs.review) and [r[1] for r in body] == [
        c["verdict"] for c in inputs.review.values()
    ]
    header, body = table(report, "lift-table")
    assert len(body) == len(inputs.calibration) and "model_lift_mean" in header


def test_contribution_over_time_shows_negative_parts_unclipped(inputs) -> None:
    decomposition = analysis.decomposition(inputs.model, max_draws=200)
    parts = decomposition.drop(columns=["date", "observed", "expected", "held_out"])
    assert (parts.to_numpy() < 0).any()  # the example's seasonality dips below zero
    figure = contribution_figure(decomposition)
    assert figure.layout.barmode == "relative"  # stacked around zero, negatives below it
    drawn = {trace.name: np.asarray(trace.y, dtype=float) for trace in figure.data if trace.type == "bar"}
    assert set(drawn) == set(parts.columns)
    for name, values in drawn.items():
        np.testing.assert_allclose(values, parts[name].to_numpy())


def test_the_waterfall_adds_up_to_the_fitted_total(inputs) -> None:
    model = inputs.model
    decomposition = analysis.decomposition(model, max_draws=200)
    figure = waterfall_figure(model, decomposition)
    steps = np.asarray(figure.data[0].y[:-1], dtype=float)
    expected = decomposition["expected"].iloc[: model.train_weeks].sum()  # identity link: the parts add up
    assert steps.sum() == pytest.approx(expected, rel=1e-9)


def test_response_curves_mark_the_optimisers_current_and_recommended_spend(inputs) -> None:
    figure = response_figure(inputs, max_draws=None)  # every draw, as the recommendation used
    rows = inputs.recommendation.set_index("channel")
    for name, column in (("current spend", "current_spend"), ("recommended spend", "recommended_spend")):
        marks = [trace for trace in figure.data if trace.name == name]
        assert len(marks) == len(rows)
        np.testing.assert_allclose([m.x[0] for m in marks], rows[column].to_numpy())
    recommended = [t.y[0] for t in figure.data if t.name == "recommended spend"]
    np.testing.assert_allclose(recommended, rows["expected_contribution"].to_numpy(), rtol=1e-6)


def test_report_file_names_are_injective_and_stay_in_their_folder() -> None:
    assert market_file_name("acme", "de") == "acme_de.html"
    assert market_file_name("a_b", "c") != market_file_name("a", "b_c")
    for brand in ("../etc", "a/b", ".hidden"):
        with pytest.raises(InvalidNameError):
            market_file_name(brand, "DE")


def test_the_dashboard_shows_one_market_at_a_time() -> None:
    figure = roas_by_version(tables(with_recommendations=False).summaries)
    (menu,) = figure.layout.updatemenus
    markets = [b.label for b in menu.buttons]
    assert markets == ["acme/DE", "acme/FR", "bolt/US", "all markets"]
    shown = [trace.name for trace in figure.data if trace.visible]
    assert shown and all(name.startswith("acme/DE ") for name in shown)
    for button in menu.buttons[:-1]:
        visible = button.args[0]["visible"]
        assert [t.name for t, v in zip(figure.data, visible, strict=True) if v] == [
            t.name for t in figure.data if t.name.startswith(button.label + " ")
        ]


def index_rows(inputs) -> pd.DataFrame:
    """As ``write_reports`` builds them: a reported market has no note (NaN in the frame), one without a champion
    has no figures."""
    first = inputs.recommendation.iloc[0]
    reported = {"market": "acme/DE", "model_version": "3", "review_verdict": inputs.review_verdict,
                "report": "acme_de.html", **first[["verdict", "expected_uplift", "uplift_hdi_low", "uplift_hdi_high",
                                                   "uplift_probability"]].to_dict()}  # fmt: skip
    missing = {"market": "acme/FR", "model_version": None, "note": "no champion version of mmm_acme_fr"}
    return pd.DataFrame([reported, missing], columns=INDEX_COLUMNS)


def test_the_index_lists_markets_with_their_verdicts(inputs) -> None:
    page = render_index(index_rows(inputs))
    header, body = table(page, "markets")
    assert header[:4] == ["market", "champion version", "model review", "recommendation"]
    assert '<a href="acme_de.html">acme/DE</a>' in body[0][0]
    assert body[0][2] == inputs.review_verdict and body[0][3] == inputs.recommendation["verdict"].iloc[0]
    assert body[1][0] == "acme/FR" and body[1][1:5] == ["-", "-", "-", "-"] and "no champion" in body[1][-1]
    assert body[0][-1] == "" and "nan" not in page  # a missing value is shown as missing
    assert "plotly.js v" not in page  # no chart, so no library


def test_report_index_and_dashboard_open_in_chromium(report, inputs) -> None:
    folder = ARTIFACTS / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme_de.html").write_text(report)
    (folder / "index.html").write_text(render_index(index_rows(inputs)))
    dashboard = ARTIFACTS / "dashboard_with_reports.html"
    dashboard.write_text(render(tables(with_recommendations=True), reports={"acme/DE": "reports/acme_de.html"}))

    check = open_in_chromium(folder / "acme_de.html", ARTIFACTS / "report.png")
    assert check.errors == [] and check.network == []
    assert set(check.charts) == set(REPORT_CHARTS) and all(n > 0 for n in check.charts.values()), check.charts
    assert "Budget allocation" in check.text and "expected_uplift" in check.text
    assert check.screenshot.stat().st_size > 50_000

    index = open_in_chromium(folder / "index.html", ARTIFACTS / "report_index.png", wait_for_charts=False)
    assert index.errors == [] and index.network == [] and "acme/DE" in index.text and "act:" in index.text

    board = open_in_chromium(dashboard, ARTIFACTS / "dashboard_with_reports.png")
    assert board.errors == [] and board.network == []
    assert "all markets with their verdicts" in board.text and "acme/DE" in board.text


def test_the_data_review_lists_each_finding_or_says_there_is_none(inputs) -> None:
    findings = "spend_variation: tv varies by 2% of its mean; zero_weeks: radio has no spend in 80% of weeks"
    page = render_report(dataclasses.replace(inputs, data_review=findings), max_draws=100)
    listed = re.findall(r"<li>(.*?)</li>", re.search(r'<ul id="data-review">(.*?)</ul>', page, re.S)[1])
    assert listed == [f.strip() for f in findings.split(";")]
    assert "found nothing to warn about" in render_report(inputs, max_draws=100)
