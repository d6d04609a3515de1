"""The market report a marketer reads: one self-contained HTML file per market (Plotly, plotly.js inline), and
an index of the markets with their verdicts.

A report shows one market's champion: actual against fitted with the 90% predictive band (held-out weeks
marked), contributions over time (stacked around zero, so negative parts show below it) and as a waterfall,
ROAS and marginal ROAS per channel with 90% HDIs, response curves over the budget period with the current and
recommended spend marked, adstock curves, the budget allocation (current against recommended) with the
uplift's interval and the verdict, the model review's checks and the lift tests against the model.

``render_report`` is the pure part: figures from a loaded model and its rows (no Spark, no MLflow), so it is
tested on a real small fit. ``write_reports`` is the job part: it reads the tables through the catalogue,
loads each market's champion through the registry store, writes ``<folder>/<brand>_<market>.html`` and
``<folder>/index.html``, and logs each report to its version's MLflow run (artifact ``report/``).
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from pyspark.sql import SparkSession

from mmm_models import analysis
from mmm_models.fitted import FittedModel
from mmm_models.optimizer import OptimizationError, ResponseModel
from mmm_models.prediction import predict
from mmm_models.report import channel_table, readable
from monitoring.calibration import lift_calibration
from monitoring.dashboard import REPORTS_FOLDER, lift_scatter, page, table_html, write_dashboard
from pipelines.config import PlatformConfig
from pipelines.names import check, model_name, safe_path
from pipelines.recommend.job import verdict_text
from pipelines.registry.store import RegistryStore
from pipelines.tables import BUDGET_RECOMMENDATIONS, LIFT_CALIBRATION, LIFT_TESTS, MODEL_RUNS, Lake

REPORT_DRAWS = 500  # posterior draws behind the report's figures: bands within a few percent, well under a second
PREDICTIVE_BAND = (0.05, 0.95)  # the 90% predictive band of actual vs fitted
CURVE_MULTIPLIERS = np.linspace(0.0, 2.0, 41)  # response curves: 0x to 2x the current spend of the period
DEFAULT_PERIOD_WEEKS = 13  # the curves' period when the market has no recommendation (BudgetSettings' default)
REPORT_ARTIFACT = "report"  # the report's folder among its version's MLflow run artifacts

# Every chart of a report, by its div id (tests/monitoring/test_report.py checks each is drawn).
REPORT_CHARTS = (
    "actual-vs-fitted",
    "contribution-over-time",
    "contribution-waterfall",
    "roas",
    "response-curves",
    "adstock-curves",
    "budget-allocation",
    "lift-tests",
)
RECOMMENDATION_TABLE_COLUMNS = (
    "channel",
    "current_spend",
    "recommended_spend",
    "min_spend",
    "max_spend",
    "change_pct",
    "expected_contribution",
    "contribution_hdi_low",
    "contribution_hdi_high",
    "roas",
    "marginal_roas",
    "expected_uplift",
    "uplift_hdi_low",
    "uplift_hdi_high",
    "uplift_probability",
    "verdict",
    "test_weeks",
    "test_spend_change_pct",
    "test_predicted_narrowing",
)  # budget_recommendations' columns, in the report's table
SECTION_TITLES = {
    "actual-vs-fitted": "Actual vs fitted (90% predictive band; held-out weeks shaded)",
    "contribution-over-time": "Contribution over time (stacked around zero: negative parts below it)",
    "contribution-waterfall": "Contribution waterfall (training weeks)",
    "roas": "ROAS and marginal ROAS per channel (90% HDI)",
    "response-curves": "Response curves over the budget period (current and recommended spend marked)",
    "adstock-curves": "Adstock: how a week's spend carries over",
    "budget-allocation": "Budget allocation: current vs recommended",
    "review-checks": "Model review checks",
    "data-review": "Data review before the fit (warnings: the market was still modelled)",
    "lift-tests": "Lift tests against the model (90% intervals)",
}
LOG_LINK_NOTE = "the model has a log link: no response curve over a period (the optimiser refuses it too)"
NO_LIFT_TESTS = "no lift tests in this model's weeks"
VERDICT_MEANING = {
    "PASS": "every model review check passed",
    "REVIEW": "a check needs a person's look before the version may become champion (see the checks)",
    "FAIL": "a check failed: the version was rejected",
    "act": "the recommended split beats the current one in at least 90% of posterior draws, on channels the "
    "data pins down: make the move",
    "test": "the move hinges on a channel whose ROAS the data cannot pin down: run the proposed experiment first",
    "hold": "the evidence does not support moving: keep the current split",
}  # the README's "The market report" explains the same verdicts


@dataclass(frozen=True)
class MarketReportInputs:
    """What one market's report shows: its loaded champion and the rows the platform wrote about it."""

    brand: str
    market: str
    model: FittedModel
    model_version: str | None = None
    recommendations: pd.DataFrame = field(default_factory=pd.DataFrame)  # budget_recommendations rows, one run date
    review: Mapping[str, Mapping] = field(default_factory=dict)  # model_runs.review: check -> verdict, value, message
    review_verdict: str | None = None
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)  # lift_calibration rows of the version
    data_review: str = ""  # model_runs.data_review: the pre-fit data review of the data the version was fitted on

    @property
    def recommendation(self) -> pd.DataFrame:
        """The market's successful recommendation rows (empty when it got none)."""
        rows = self.recommendations
        if rows.empty or "status" not in rows:
            return pd.DataFrame()
        return rows[rows["status"] == "success"].reset_index(drop=True)


# --- figures (pure: from the model and its rows) ---


def fit_figure(model: FittedModel, max_draws: int | None = REPORT_DRAWS) -> go.Figure:
    """Observed against the expected outcome, with the 90% posterior predictive band; held-out weeks shaded."""
    target, dates = model.spec.target.column, model.data[model.spec.date_column]
    low, high = PREDICTIVE_BAND
    weekly = predict(model, model.data.drop(columns=target), quantiles=PREDICTIVE_BAND, max_draws=max_draws).weekly
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=dates, y=weekly[f"q{high:g}"], mode="lines", line={"width": 0}, showlegend=False))
    figure.add_trace(
        go.Scatter(
            x=dates,
            y=weekly[f"q{low:g}"],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(31, 119, 180, 0.2)",
            name="90% predictive band",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=dates, y=weekly["expected_mean"], mode="lines", name="fitted (posterior mean)", line={"color": "#1f77b4"}
        )
    )
    figure.add_trace(
        go.Scatter(
            x=dates,
            y=model.data[target],
            mode="lines+markers",
            marker={"size": 3},
            name="actual",
            line={"color": "black"},
        )
    )
    held_out = dates.iloc[model.train_weeks :]
    if len(held_out):
        figure.add_vrect(
            x0=held_out.iloc[0] - pd.Timedelta(days=3),
            x1=held_out.iloc[-1] + pd.Timedelta(days=3),
            fillcolor="orange",
            opacity=0.15,
            line_width=0,
            annotation_text=f"{len(held_out)} held-out weeks",
            annotation_position="top left",
        )
    return _money_axes(figure, target)


def contribution_figure(decomposition: pd.DataFrame) -> go.Figure:
    """Weekly contribution of each baseline part and channel, stacked around zero: a negative part (a price
    effect, a falling trend) is drawn below zero, never clipped."""
    figure = go.Figure()
    for part in _parts(decomposition):
        figure.add_trace(go.Bar(x=decomposition["date"], y=decomposition[part], name=part))
    figure.add_trace(
        go.Scatter(
            x=decomposition["date"], y=decomposition["observed"], mode="lines", name="actual", line={"color": "black"}
        )
    )
    figure.update_layout(barmode="relative", bargap=0)
    return _money_axes(figure, "contribution per week")


def waterfall_figure(model: FittedModel, decomposition: pd.DataFrame) -> go.Figure:
    """The training window's total, part by part: baseline parts, then each channel, then the expected total.
    (Under a log link the channels' parts are counterfactual and do not add up to the fit: the last bar is then
    the sum of the parts, and says so.)"""
    training = decomposition.iloc[: model.train_weeks]
    parts = _parts(training)
    totals = [float(training[p].sum()) for p in parts]
    total = "total (fitted)" if model.spec.target.link == "identity" else "sum of the parts (log link)"
    figure = go.Figure(
        go.Waterfall(
            x=[*parts, total],
            y=[*totals, 0.0],
            measure=[*(["relative"] * len(parts)), "total"],
            texttemplate="%{delta:,.3~s}",
            hovertemplate="%{x}: %{delta:,.0f}<extra></extra>",
        )
    )
    return _money_axes(figure, "contribution over the training weeks")


def roas_figure(metrics: pd.DataFrame) -> go.Figure:
    """ROAS and marginal ROAS per channel over the training window: posterior means with 90% HDIs."""
    figure = go.Figure()
    for metric, name in (("roas", "ROAS"), ("marginal_roas", "marginal ROAS (+1% spend)")):
        rows = metrics[metrics["metric"] == metric]
        figure.add_trace(
            go.Bar(
                x=rows["channel"],
                y=rows["mean"],
                name=name,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": rows["hdi_high"] - rows["mean"],
                    "arrayminus": rows["mean"] - rows["hdi_low"],
                },
                customdata=np.stack([rows["hdi_low"], rows["hdi_high"]], axis=-1),
                hovertemplate="%{x}: %{y:.2f} (90% HDI %{customdata[0]:.2f} to %{customdata[1]:.2f})<extra></extra>",
            )
        )
    figure.add_hline(y=1.0, line_dash="dot", annotation_text="break-even (1.0)")
    figure.update_layout(barmode="group", yaxis_title="outcome per unit of spend", margin={"t": 30})
    return figure


def current_and_recommended(inputs: MarketReportInputs) -> tuple[int, dict[str, float], dict[str, float] | None]:
    """(period weeks, current spend per channel, recommended spend per channel or None) for the curves: the
    recommendation's, else the run-rate of the model's latest weeks over the default period."""
    model, rows = inputs.model, inputs.recommendation
    if len(rows):
        weeks = int(rows["period_weeks"].iloc[0])
        current = dict(zip(rows["channel"], rows["current_spend"].astype(float), strict=True))
        recommended = dict(zip(rows["channel"], rows["recommended_spend"].astype(float), strict=True))
        return weeks, current, recommended
    recent = model.data[model.channel_names].iloc[: model.train_weeks].tail(DEFAULT_PERIOD_WEEKS)
    return DEFAULT_PERIOD_WEEKS, {c: float(recent[c].mean() * DEFAULT_PERIOD_WEEKS) for c in model.channel_names}, None


def response_figure(inputs: MarketReportInputs, max_draws: int | None = REPORT_DRAWS) -> go.Figure | None:
    """Per channel: incremental outcome over the budget period against the period's spend (mean and 90% HDI,
    the optimiser's response, carry-over from the latest weeks included), current and recommended spend marked.
    None under a log link (the response then depends on a future baseline; the optimiser refuses it too)."""
    model = inputs.model
    try:
        response = ResponseModel.from_fitted(model, max_draws)
    except OptimizationError:
        return None
    weeks, current, recommended = current_and_recommended(inputs)
    channels = model.channel_names
    now = np.array([current.get(c, 0.0) for c in channels])
    spread = np.where(now > 0, now, model.data[channels].iloc[: model.train_weeks].mean().to_numpy() * weeks)
    marked = [now] + ([np.array([recommended.get(c, 0.0) for c in channels])] if recommended else [])
    levels = np.vstack([CURVE_MULTIPLIERS[:, None] * spread[None, :], *marked])
    stats = analysis.summarise(response.period_response(levels, weeks))  # each (levels, channels)
    grid = len(CURVE_MULTIPLIERS)
    figure = make_subplots(rows=1, cols=len(channels), subplot_titles=channels)  # each channel on its own scale
    for c, channel in enumerate(channels, start=1):
        x = levels[:grid, c - 1]
        show = c == 1
        figure.add_trace(
            go.Scatter(x=x, y=stats["hdi_high"][:grid, c - 1], mode="lines", line={"width": 0}, showlegend=False),
            row=1,
            col=c,
        )
        figure.add_trace(
            go.Scatter(
                x=x,
                y=stats["hdi_low"][:grid, c - 1],
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor="rgba(31, 119, 180, 0.2)",
                name="90% HDI",
                legendgroup="band",
                showlegend=show,
            ),
            row=1,
            col=c,
        )
        figure.add_trace(
            go.Scatter(
                x=x,
                y=stats["mean"][:grid, c - 1],
                mode="lines",
                line={"color": "#1f77b4"},
                name="expected",
                legendgroup="mean",
                showlegend=show,
            ),
            row=1,
            col=c,
        )
        for index, (name, colour) in enumerate((("current spend", "black"), ("recommended spend", "#d62728"))):
            if index >= len(marked):
                continue
            figure.add_trace(
                go.Scatter(
                    x=[levels[grid + index, c - 1]],
                    y=[stats["mean"][grid + index, c - 1]],
                    mode="markers",
                    marker={"size": 11, "color": colour, "symbol": "circle" if index == 0 else "diamond"},
                    name=name,
                    legendgroup=name,
                    showlegend=show,
                    hovertemplate=f"{name}: %{{x:,.0f}} -> %{{y:,.0f}}<extra>{html.escape(channel)}</extra>",
                ),
                row=1,
                col=c,
            )
        figure.update_xaxes(title_text=f"spend over {weeks} weeks", tickformat="~s", hoverformat=",.0f", row=1, col=c)
    figure.update_yaxes(tickformat="~s", hoverformat=",.0f")
    figure.update_yaxes(title_text="incremental outcome", row=1, col=1)
    figure.update_layout(height=420, margin={"t": 40})
    return figure


def adstock_figure(curves: pd.DataFrame) -> go.Figure:
    """Share of a week's spend effect felt at each later week (lag), per channel: mean with 90% HDI bars."""
    figure = go.Figure()
    for channel, rows in curves.groupby("channel", sort=False):
        figure.add_trace(
            go.Scatter(
                x=rows["lag"],
                y=rows["mean"],
                mode="lines+markers",
                name=channel,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": rows["hdi_high"] - rows["mean"],
                    "arrayminus": rows["mean"] - rows["hdi_low"],
                },
            )
        )
    figure.update_layout(xaxis_title="weeks after the spend", yaxis_title="adstock weight", margin={"t": 30})
    return figure


def allocation_figure(rows: pd.DataFrame) -> go.Figure | None:
    """Current against recommended spend per channel over the period, the bounds as whiskers on the
    recommendation; the title holds the uplift with its 90% HDI and the verdict."""
    if rows.empty:
        return None
    figure = go.Figure()
    figure.add_trace(go.Bar(x=rows["channel"], y=rows["current_spend"], name="current"))
    figure.add_trace(
        go.Bar(
            x=rows["channel"],
            y=rows["recommended_spend"],
            name="recommended",
            error_y={
                "type": "data",
                "symmetric": False,
                "array": rows["max_spend"] - rows["recommended_spend"],
                "arrayminus": rows["recommended_spend"] - rows["min_spend"],
                "color": "#888",
            },
            customdata=rows["change_pct"],
            hovertemplate="%{x}: %{y:,.0f} (%{customdata:+.1f}%)<extra>recommended</extra>",
        )
    )
    first = rows.iloc[0]
    title = (
        f"uplift {first['expected_uplift']:+,.0f} (90% HDI {first['uplift_hdi_low']:,.0f} to "
        f"{first['uplift_hdi_high']:,.0f}), P(uplift > 0) {first['uplift_probability']:.2f}: {first['verdict']}"
    )
    figure.update_layout(barmode="group", title={"text": html.escape(title), "font": {"size": 14}})
    return _money_axes(figure, f"spend over {int(first['period_weeks'])} weeks")


# --- the page ---


def market_file_name(brand: str, market: str) -> str:
    """``<brand>_<market>.html``, injective over valid names (``model_name``'s rule: ``a_b``/``c`` and ``a``/``b_c``
    get different files) and checked before it becomes a path."""
    brand, market = check(brand, "brand", "brand"), check(market, "market", "market")
    return model_name("report", brand, market).removeprefix("report_") + ".html"


def render_report(inputs: MarketReportInputs, max_draws: int | None = REPORT_DRAWS) -> str:
    """One market's report as a self-contained HTML page (see the module's docstring)."""
    model = inputs.model
    decomposition = analysis.decomposition(model, max_draws)
    metrics = analysis.summarise_metric_draws(analysis.channel_metric_draws(model, max_draws=max_draws))
    rows = inputs.recommendation
    dates = model.data[model.spec.date_column]
    version = f"v{inputs.model_version}" if inputs.model_version else "(unregistered)"
    intro = (
        f"<p>Champion {html.escape(version)} of {html.escape(inputs.brand)}/{html.escape(inputs.market)}: "
        f"{len(dates)} weeks, {dates.iloc[0].date()} to {dates.iloc[-1].date()} "
        f"({model.settings.holdout_weeks} held out), target {html.escape(model.spec.target.column)}. "
        f"Model review: {_verdict_badge(inputs.review_verdict)}. Recommendation: "
        f"{_verdict_badge(rows['verdict'].iloc[0] if len(rows) else None)}.</p>"
    )
    lift = lift_scatter(inputs.calibration) if len(inputs.calibration) else None
    charts = {
        "actual-vs-fitted": _chart(fit_figure(model, max_draws), "actual-vs-fitted"),
        "contribution-over-time": _chart(contribution_figure(decomposition), "contribution-over-time"),
        "contribution-waterfall": _chart(waterfall_figure(model, decomposition), "contribution-waterfall"),
        "roas": _chart(roas_figure(metrics), "roas") + _channel_table(model, metrics),
        "response-curves": _chart(response_figure(inputs, max_draws), "response-curves", LOG_LINK_NOTE),
        "adstock-curves": _chart(adstock_figure(analysis.adstock_curves(model)), "adstock-curves"),
        "budget-allocation": _allocation(rows),
        "review-checks": review_table(inputs.review, inputs.review_verdict),
        "data-review": data_review_list(inputs.data_review),
        "lift-tests": _chart(lift, "lift-tests", NO_LIFT_TESTS) + _lift_table(inputs.calibration),
    }
    sections = "\n".join(
        f"<section><h2>{html.escape(SECTION_TITLES[key])}</h2>\n{content}</section>" for key, content in charts.items()
    )
    body = intro + sections
    return page(f"{inputs.brand}/{inputs.market}: market report", body)


def review_table(review: Mapping[str, Mapping], verdict: str | None) -> str:
    """Each review check's verdict, value and message (model_runs.review), tinted by verdict."""
    if not review:
        return '<p class="empty">no review recorded for this version</p>'
    rows = "".join(
        f'<tr class="{html.escape(str(c.get("verdict")))}"><td class="text">{html.escape(name)}</td>'
        f'<td class="text">{html.escape(str(c.get("verdict")))}</td><td>{_number(c.get("value"))}</td>'
        f'<td class="text">{html.escape(str(c.get("message", "")))}</td></tr>'
        for name, c in review.items()
    )
    meaning = f'<p class="note">{_verdict_badge(verdict)}: {html.escape(VERDICT_MEANING.get(verdict or "", ""))}</p>'
    header = (
        '<tr><th class="text">check</th><th class="text">verdict</th><th>value</th><th class="text">message</th></tr>'
    )
    return f'{meaning}<table id="review-checks">{header}{rows}</table>'


def data_review_list(findings: str) -> str:
    """The pre-fit data review's findings ("check: message; ..."), one item each."""
    items = [item.strip() for item in findings.split(";") if item.strip()]
    if not items:
        return '<p class="empty">the data review found nothing to warn about</p>'
    return '<ul id="data-review">' + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def recommendation_table(rows: pd.DataFrame) -> str:
    """The market's recommendation per channel: spend, contribution with its HDI, ROAS, uplift with its HDI."""
    shown = rows[[c for c in RECOMMENDATION_TABLE_COLUMNS if c in rows.columns]]
    shown = shown.drop(columns=[c for c in shown.columns if c.startswith("test_") and shown[c].isna().all()])
    return table_html(shown, "recommendation-table")


def _allocation(rows: pd.DataFrame) -> str:
    if rows.empty:
        return '<p class="empty">no recommendation for this market on the latest run date</p>'
    verdict = str(rows["verdict"].iloc[0])
    note = (
        f'<p class="note">{_verdict_badge(verdict)}: {html.escape(VERDICT_MEANING.get(verdict, ""))}. '
        f"{html.escape(verdict_text(rows))}.</p>"
    )
    return note + _chart(allocation_figure(rows), "budget-allocation") + recommendation_table(rows)


def _channel_table(model: FittedModel, metrics: pd.DataFrame) -> str:
    table = channel_table(analysis.widen_channel_metrics(model, metrics))
    return table_html(table, "channel-table")


def _lift_table(calibration: pd.DataFrame) -> str:
    if calibration.empty:
        return ""
    columns = ["channel", "start", "end", "spend_delta", "lift", "lift_se", "model_lift_mean", "model_lift_hdi_low",
               "model_lift_hdi_high", "z_score", "inside_predictive_interval"]  # fmt: skip
    shown = calibration[[c for c in columns if c in calibration.columns]]
    return table_html(shown, "lift-table")


def _chart(figure: go.Figure | None, div_id: str, empty: str = "no data") -> str:
    if figure is None:
        return f'<p class="empty" id="{div_id}-empty">{html.escape(empty)}</p>'
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False})


def _money_axes(figure: go.Figure, y_title: str) -> go.Figure:
    """Outcome or spend on y: SI ticks (361k, not 3.61e+05), whole numbers with separators on hover."""
    figure.update_layout(yaxis={"title": y_title, "tickformat": "~s", "hoverformat": ",.0f"}, margin={"t": 30})
    return figure


def _parts(decomposition: pd.DataFrame) -> list[str]:
    return [c for c in decomposition.columns if c not in ("date", "observed", "expected", "held_out")]


def _verdict_badge(verdict: str | None) -> str:
    if not verdict:
        return '<span class="empty">none</span>'
    return f'<b class="{html.escape(verdict)}">{html.escape(verdict)}</b>'


def _verdict_cell(verdict: str | None) -> str:
    verdict = verdict if isinstance(verdict, str) and verdict else None
    return f'<td class="{html.escape(verdict or "")}">{html.escape(verdict or "-")}</td>'


def _number(value) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else readable(float(value))


# --- the index ---


def render_index(markets: pd.DataFrame) -> str:
    """The markets with their champion, verdicts and uplift, each linked to its report (no chart, no plotly.js).

    ``markets``: market, model_version, review_verdict, verdict, expected_uplift, uplift_hdi_low,
    uplift_hdi_high, uplift_probability, report (file name or None), note.
    """
    rows = []
    for m in markets.to_dict("records"):
        m = {key: value if isinstance(value, str) or not pd.isna(value) else None for key, value in m.items()}
        report = m.get("report")
        name = html.escape(m["market"])
        link = f'<a href="{quote(report)}">{name}</a>' if report else name
        uplift = "-" if m.get("expected_uplift") is None else (
            f"{m['expected_uplift']:+,.0f} ({m['uplift_hdi_low']:,.0f} to {m['uplift_hdi_high']:,.0f})"
        )  # fmt: skip
        probability = "-" if m.get("uplift_probability") is None else f"{m['uplift_probability']:.2f}"
        cells = [
            f'<td class="text">{link}</td>',
            f"<td>{html.escape(str(m.get('model_version') or '-'))}</td>",
            _verdict_cell(m.get("review_verdict")),
            _verdict_cell(m.get("verdict")),
            f"<td>{uplift}</td><td>{probability}</td>",
            f'<td class="text">{html.escape(str(m.get("note") or ""))}</td>',
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    header = (
        '<tr><th class="text">market</th><th>champion version</th><th>model review</th><th>recommendation</th>'
        '<th>expected uplift (90% HDI)</th><th>P(uplift &gt; 0)</th><th class="text">note</th></tr>'
    )
    meanings = "".join(f"<li><b>{v}</b>: {html.escape(text)}</li>" for v, text in VERDICT_MEANING.items())
    body = f'<table id="markets">{header}{"".join(rows)}</table><h2>Verdicts</h2><ul class="note">{meanings}</ul>'
    return page("Market reports", body, plotly=False)


# --- the job: tables and champions in, files and MLflow artifacts out ---


@dataclass
class ReportsWritten:
    """What ``write_reports`` did: the index, a report per market, the markets without one, seconds per report."""

    index: Path
    reports: dict[str, Path] = field(default_factory=dict)  # brand/market -> file
    missing: dict[str, str] = field(default_factory=dict)  # brand/market -> why there is no report
    seconds: dict[str, float] = field(default_factory=dict)  # brand/market -> seconds (load, render, log)

    def links(self) -> dict[str, str]:
        """brand/market -> the report's address relative to the dashboard (``reports/<file>``)."""
        return {market: f"{REPORTS_FOLDER}/{path.name}" for market, path in self.reports.items()}


def write_dashboard_and_reports(
    spark: SparkSession,
    root: Lake | str | Path,
    platform: PlatformConfig,
    dashboard: str | Path,
    progress: Callable[[str], None] | None = None,
) -> tuple[Path, ReportsWritten]:
    """The market reports in ``reports/`` beside the ``dashboard`` file, then the dashboard, linking them: what
    the weekly flow's dashboard step and ``mmm dashboard`` write."""
    written = write_reports(spark, root, platform, Path(dashboard).parent / REPORTS_FOLDER, progress)
    return write_dashboard(spark, root, platform, dashboard, reports=written.links()), written


def write_reports(
    spark: SparkSession,
    root: Lake | str | Path,
    platform: PlatformConfig,
    folder: str | Path,
    progress: Callable[[str], None] | None = None,
    store: RegistryStore | None = None,
) -> ReportsWritten:
    """A report per market of the latest recommendation run date (else of ``model_runs``) from the version its
    recommendation used (else the market's ``platform.recommend.alias``), each logged to that version's run;
    then the index. A market that fails is listed with its error; the others go on."""
    say = progress or (lambda _line: None)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    store = store or RegistryStore.from_settings(platform.mlflow)
    recommendations = BUDGET_RECOMMENDATIONS.read(spark, root)
    if len(recommendations):
        recommendations = recommendations[recommendations["run_date"] == recommendations["run_date"].max()]
    runs = MODEL_RUNS.read(spark, root)
    calibration, tests = LIFT_CALIBRATION.read(spark, root), LIFT_TESTS.read(spark, root)
    pairs = {(r.brand, r.market) for frame in (recommendations, runs) if len(frame) for r in frame.itertuples()}
    written = ReportsWritten(index=safe_path(folder, "index.html"))
    index_rows = []
    for brand, market in sorted(pairs):
        key, clock = f"{brand}/{market}", time.perf_counter()
        mine = _rows(recommendations, brand, market)
        ok = mine[mine["status"] == "success"] if len(mine) else mine
        name = model_name(platform.mlflow.model_prefix, brand, market)
        row = {"market": key, "report": None, **(ok.iloc[0][_INDEX_FIGURES].to_dict() if len(ok) else {})}
        try:
            version = (
                str(ok["model_version"].iloc[0]) if len(ok) else store.alias_version(name, platform.recommend.alias)
            )
            row["model_version"] = version
            if version is None:
                row["note"] = written.missing[key] = f"no {platform.recommend.alias} version of {name}"
                index_rows.append(row)
                continue
            run_id = store.market_run_id(name, version, brand, market)
            model = store.load_run_model(run_id)
            review = _version_row(runs, name, version)
            checks, verdict = review.get("review"), review.get("review_verdict")
            inputs = MarketReportInputs(
                brand,
                market,
                model,
                version,
                mine,
                json.loads(checks) if isinstance(checks, str) else {},
                verdict if isinstance(verdict, str) else None,  # None: trained before the review
                _calibration(calibration, tests, model, brand, market, name, version),
                review.get("data_review") if isinstance(review.get("data_review"), str) else "",
            )
            path = safe_path(folder, market_file_name(brand, market))
            path.write_text(render_report(inputs))
            store.log_artifact(run_id, path, REPORT_ARTIFACT)
        except Exception as exc:  # one market's failure is listed in the index; the others go on
            row["note"] = written.missing[key] = f"report failed: {type(exc).__name__}: {exc}"[:500]
            say(f"  {key}: {row['note']}")
            index_rows.append(row)
            continue
        row.update(report=path.name, review_verdict=inputs.review_verdict)
        index_rows.append(row)
        written.reports[key], written.seconds[key] = path, time.perf_counter() - clock
        say(f"  {key}: report of v{version} ({written.seconds[key]:.1f} s) -> {path}")
    written.index.write_text(render_index(pd.DataFrame(index_rows, columns=INDEX_COLUMNS)))
    return written


_INDEX_FIGURES = ["verdict", "expected_uplift", "uplift_hdi_low", "uplift_hdi_high", "uplift_probability"]
INDEX_COLUMNS = ["market", "model_version", "review_verdict", *_INDEX_FIGURES, "report", "note"]


def _rows(frame: pd.DataFrame, brand: str, market: str) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[(frame["brand"] == brand) & (frame["market"] == market)].reset_index(drop=True)


def _version_row(runs: pd.DataFrame, name: str, version: str) -> dict:
    """The latest ``model_runs`` row of the version (its review), or an empty dict."""
    if runs.empty:
        return {}
    mine = runs[(runs["model_name"] == name) & (runs["model_version"].astype(str) == str(version))]
    return mine.sort_values("recorded_at").iloc[-1].to_dict() if len(mine) else {}


def _calibration(
    calibration: pd.DataFrame,
    tests: pd.DataFrame,
    model: FittedModel,
    brand: str,
    market: str,
    name: str,
    version: str,
) -> pd.DataFrame:
    """The version's ``lift_calibration`` rows (monitoring wrote them when it was new); computed from silver
    ``lift_tests`` when there are none (a version monitored before it had tests)."""
    from monitoring.job import market_lift_tests

    if len(calibration):
        mine = calibration[(calibration["model_name"] == name) & (calibration["model_version"].astype(str) == version)]
        if len(mine):
            return mine.reset_index(drop=True)
    market_tests = market_lift_tests(tests, brand, market)
    checked = lift_calibration(model, market_tests) if len(market_tests) else pd.DataFrame()
    return checked.assign(brand=brand, market=market, model_version=version) if len(checked) else checked
