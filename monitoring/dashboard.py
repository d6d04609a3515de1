"""The monitoring dashboard: one self-contained HTML file (Plotly, with plotly.js embedded: no CDN).

It links the market reports (``monitoring.report``, in ``reports/`` beside it), and shows a drift heatmap
(markets x channels, the largest |mean shift| in champion sds over the business metrics of each market's
latest comparison), ROAS across model versions with 90% HDIs (``models/posterior_summaries``; a dropdown
picks the market), observed against model lift with intervals (``lift_calibration``), the alerts, and the
latest budget recommendations (``outputs/budget_recommendations``, when that
table exists). ``serve`` shows the file on localhost.
"""

from __future__ import annotations

import html
import http.server
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from pyspark.sql import SparkSession

from mmm_models.report import readable
from pipelines.config import PlatformConfig
from pipelines.names import InvalidNameError, safe_path
from pipelines.tables import (
    ALERTS,
    BUDGET_RECOMMENDATIONS,
    LIFT_CALIBRATION,
    POSTERIOR_DRIFT,
    POSTERIOR_SUMMARIES,
    Lake,
)

RECOMMENDATION_COLUMNS = [
    "run_date",
    "brand",
    "market",
    "channel",
    "current_spend",
    "recommended_spend",
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
    "test_predicted_narrowing",
    "model_version",
]  # names of outputs/budget_recommendations' columns (tests/monitoring/test_dashboard.py checks they exist)
REPORTS_FOLDER = "reports"  # the market reports, beside the dashboard file (monitoring.report)
ALERT_COLUMNS = ["created_at", "severity", "rule", "brand", "market", "channel", "metric", "value", "threshold"]


@dataclass(frozen=True)
class DashboardData:
    """The tables the dashboard shows, as pandas (any may be empty)."""

    drift: pd.DataFrame
    summaries: pd.DataFrame
    calibration: pd.DataFrame
    alerts: pd.DataFrame
    recommendations: pd.DataFrame


def load_data(spark: SparkSession, root: Lake | str | Path) -> DashboardData:
    return DashboardData(
        drift=POSTERIOR_DRIFT.read(spark, root),
        summaries=POSTERIOR_SUMMARIES.read(spark, root),
        calibration=LIFT_CALIBRATION.read(spark, root),
        alerts=ALERTS.read(spark, root),
        recommendations=BUDGET_RECOMMENDATIONS.read(spark, root),
    )


def write_dashboard(
    spark: SparkSession,
    root: Lake | str | Path,
    platform: PlatformConfig,
    path: str | Path,
    reports: Mapping[str, str] | None = None,
) -> Path:
    """Render the dashboard from the lake's tables into ``path`` (one HTML file), linking ``reports`` (see
    ``render``); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    title = f"MMM monitoring ({platform.mlflow.experiment})"
    path.write_text(render(load_data(spark, root), title=title, reports=reports))
    return path


def report_links(reports: Mapping[str, str]) -> str:
    """The index of market reports, then one link per market (addresses relative to the dashboard)."""
    if not reports:
        return '<p class="empty">no market reports yet</p>'
    links = " &middot; ".join(
        f'<a href="{html.escape(quote(href))}">{html.escape(market)}</a>' for market, href in sorted(reports.items())
    )
    index = html.escape(quote(f"{REPORTS_FOLDER}/index.html"))
    return f'<p><a href="{index}">all markets with their verdicts</a></p><p>{links}</p>'


def render(data: DashboardData, title: str = "MMM monitoring", reports: Mapping[str, str] | None = None) -> str:
    """The whole page: plotly.js once, then a section per view. ``reports`` maps each ``brand/market`` to its
    market report's address relative to the dashboard (``reports/<file>``), shown as links when given."""
    sections = [
        *([("Market reports", report_links(reports))] if reports is not None else []),
        ("Posterior drift, latest comparison per market", _figure(drift_heatmap(data.drift), "drift-heatmap")),
        ("ROAS across model versions (90% HDI)", _figure(roas_by_version(data.summaries), "roas-versions")),
        ("Lift tests: observed against model (90% intervals)", _figure(lift_scatter(data.calibration), "lift")),
        ("Alerts", alerts_table(data.alerts)),
        ("Latest budget recommendations", recommendations_table(data.recommendations)),
    ]
    body = "\n".join(f"<section><h2>{html.escape(name)}</h2>\n{content}</section>" for name, content in sections)
    return page(title, body)


def page(title: str, body: str, plotly: bool = True) -> str:
    """A whole HTML page: the shared style, plotly.js once (inline: no CDN, no network) unless the page has no
    chart (``plotly=False``), the title and ``body``."""
    script = f'<script type="text/javascript">{get_plotlyjs()}</script>' if plotly else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
section {{ margin-bottom: 2em; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #f0f0f0; }}
td.text, th.text {{ text-align: left; }}
.critical, .FAIL {{ background: #fbd5d5; }} .warning, .REVIEW, .test {{ background: #fff2cc; }}
.PASS, .act {{ background: #d9f2d9; }} .hold {{ background: #e8e8e8; }} .empty {{ color: #777; }}
.note {{ color: #555; font-size: 0.9em; max-width: 60em; }}
.wide {{ overflow-x: auto; max-width: 100%; }}
</style>
{script}
</head><body><h1>{html.escape(title)}</h1>
{body}
</body></html>
"""


def _figure(figure: go.Figure | None, div_id: str) -> str:
    if figure is None:
        return '<p class="empty">no data yet</p>'
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id)


def drift_heatmap(drift: pd.DataFrame) -> go.Figure | None:
    """Markets x channels: the largest |mean shift| (champion sds) over the metrics of the latest comparison."""
    if drift.empty:
        return None
    drift = drift.assign(market_name=drift["brand"] + "/" + drift["market"], shift=drift["mean_shift_sd"].abs())
    version = drift["challenger_version"].astype(int)
    drift = drift[version == version.groupby(drift["market_name"]).transform("max")]
    worst = drift.loc[drift.groupby(["market_name", "channel"])["shift"].idxmax()]
    values = worst.pivot(index="market_name", columns="channel", values="shift")
    metric = worst.pivot(index="market_name", columns="channel", values="metric").reindex_like(values)
    figure = go.Figure(
        go.Heatmap(
            z=values.to_numpy(),
            x=list(values.columns),
            y=list(values.index),
            text=metric.fillna("").to_numpy(),
            hovertemplate="%{y} %{x}: %{z:.2f} sd (%{text})<extra></extra>",
            colorscale="Reds",
            zmin=0,
            zmax=max(4.0, float(values.max().max())),
            colorbar={"title": "|shift| sd"},
        )
    )
    figure.update_layout(height=max(260, 120 + 30 * len(values)), margin={"t": 20})
    return figure


def roas_by_version(summaries: pd.DataFrame) -> go.Figure | None:
    """One line per market and channel: ROAS posterior mean by model version, with its 90% HDI as error bars."""
    if summaries.empty:
        return None
    roas = summaries[(summaries["metric"] == "roas") & summaries["model_version"].notna()].copy()
    if roas.empty:
        return None
    roas["version"] = roas["model_version"].astype(int)
    figure, markets = go.Figure(), []
    for (brand, market, channel), rows in roas.sort_values("version").groupby(["brand", "market", "channel"]):
        markets.append(f"{brand}/{market}")
        figure.add_trace(
            go.Scatter(
                x=rows["version"],
                y=rows["mean"],
                mode="lines+markers",
                name=f"{brand}/{market} {channel}",
                visible=markets[-1] == markets[0],
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": rows["hdi_high"] - rows["mean"],
                    "arrayminus": rows["mean"] - rows["hdi_low"],
                },
            )
        )
    figure.update_layout(
        xaxis_title="model version",
        yaxis_title="ROAS",
        xaxis={"dtick": 1},
        margin={"t": 50},
        updatemenus=[market_selector(markets)],
    )
    return figure


def market_selector(trace_markets: list[str]) -> dict:
    """A dropdown (Plotly's own, no script of ours, no network) that shows one market's traces at a time, or all.

    ``trace_markets`` names each trace's market in trace order; the first market is shown at first.
    """
    choices = list(dict.fromkeys(trace_markets))
    buttons = [
        {"label": market, "method": "restyle", "args": [{"visible": [m == market for m in trace_markets]}]}
        for market in choices
    ]
    buttons.append({"label": "all markets", "method": "restyle", "args": [{"visible": [True] * len(trace_markets)}]})
    return {
        "buttons": buttons,
        "active": 0,
        "direction": "down",
        "x": 0,
        "xanchor": "left",
        "y": 1.12,
        "yanchor": "bottom",
    }


def lift_scatter(calibration: pd.DataFrame) -> go.Figure | None:
    """Observed lift (+- its 90% interval) against the model's lift (90% HDI), per test, with the y = x line."""
    if calibration.empty:
        return None
    latest = calibration.assign(version=calibration["model_version"].astype(int))
    latest = latest[latest["version"] == latest.groupby(["brand", "market"])["version"].transform("max")]
    figure = go.Figure()
    for inside, rows in latest.groupby("inside_predictive_interval"):
        figure.add_trace(
            go.Scatter(
                x=rows["model_lift_mean"],
                y=rows["lift"],
                mode="markers",
                name="inside the 90% interval" if inside else "outside the 90% interval",
                text=rows["brand"] + "/" + rows["market"] + " " + rows["channel"] + " v" + rows["model_version"],
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": rows["model_lift_hdi_high"] - rows["model_lift_mean"],
                    "arrayminus": rows["model_lift_mean"] - rows["model_lift_hdi_low"],
                },
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": rows["observed_high"] - rows["lift"],
                    "arrayminus": rows["lift"] - rows["observed_low"],
                },
            )
        )
    low = float(min(latest["model_lift_hdi_low"].min(), latest["observed_low"].min()))
    high = float(max(latest["model_lift_hdi_high"].max(), latest["observed_high"].max()))
    figure.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="y = x", line={"dash": "dot"}))
    figure.update_layout(xaxis_title="model lift", yaxis_title="observed lift", margin={"t": 20})
    return figure


def alerts_table(alerts: pd.DataFrame) -> str:
    """Newest first, critical before warning; each row tinted by severity, with the detail as its tooltip."""
    if alerts.empty:
        return '<p class="empty">no alerts</p>'
    alerts = alerts.assign(order=(alerts["severity"] != "critical").astype(int))
    alerts = alerts.sort_values(["created_at", "order"], ascending=[False, True])
    header = "".join(f"<th>{c}</th>" for c in [*ALERT_COLUMNS, "versions", "detail"])
    rows = []
    for row in alerts.to_dict("records"):
        versions = f"v{row['champion_version'] or '-'} -> v{row['challenger_version']}"
        cells = [_cell(row[c]) for c in ALERT_COLUMNS] + [html.escape(versions), html.escape(str(row["detail"]))]
        rows.append(f'<tr class="{html.escape(row["severity"])}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def recommendations_table(recommendations: pd.DataFrame) -> str:
    """The latest run's recommendation per market and channel, or a note that there are none yet."""
    if recommendations.empty:
        return '<p class="empty">no recommendations yet</p>'
    latest = recommendations[recommendations["run_date"] == recommendations["run_date"].max()]
    shown = latest[[c for c in RECOMMENDATION_COLUMNS if c in latest.columns]].sort_values(["brand", "market"])
    return table_html(shown)


def table_html(frame: pd.DataFrame, table_id: str | None = None) -> str:
    """A frame as an HTML table (escaped) of readable cells: numbers as ``readable`` writes them, a missing
    value (None, NaN, NaT) as ``-``; in a box that scrolls sideways rather than widen the page."""
    cells = frame.astype(object).map(_text)
    return f'<div class="wide">{cells.to_html(index=False, escape=True, table_id=table_id)}</div>'


def _text(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "-"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return readable(float(value))
    if isinstance(value, pd.Timestamp) and value == value.normalize():
        return str(value.date())  # a week, not midnight
    return str(value)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return html.escape("" if value is None else str(value))


def dashboard_server(path: str | Path, port: int = 8050) -> http.server.ThreadingHTTPServer:
    """A server (not yet serving) of the one file ``path`` on 127.0.0.1:``port`` (0: any free port).

    Only that file is served, at ``/`` and ``/<its name>``, and the market reports beside it (``/reports/<file>.html``,
    an HTML file directly inside that folder); anything else is 404, so the files beside it (the MLflow store, the
    lake) stay unreachable. A request whose Host is not 127.0.0.1:<port> or localhost:<port>
    is refused (403), so a page elsewhere cannot read the dashboard through DNS rebinding.
    """
    path = Path(path).resolve()
    routes = {"/", f"/{path.name}"}
    reports = path.parent / REPORTS_FOLDER

    def resolve(address: str) -> Path | None:
        """The file an address names: the dashboard, or an HTML file directly inside the reports folder."""
        if address in routes:
            return path
        name = unquote(address.removeprefix(f"/{REPORTS_FOLDER}/")) if address.startswith(f"/{REPORTS_FOLDER}/") else ""
        if not name.endswith(".html"):
            return None
        try:
            return safe_path(reports, name)
        except InvalidNameError:
            return None

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "mmm-dashboard"

        def do_GET(self) -> None:
            self._answer(body=True)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def _answer(self, body: bool) -> None:
            port = self.server.server_address[1]
            if self.headers.get("Host", "").lower() not in {f"127.0.0.1:{port}", f"localhost:{port}"}:
                self.send_error(403, "unexpected Host header")
                return
            target = resolve(self.path.split("?", 1)[0])
            if target is None:
                self.send_error(404)
                return
            try:
                content = target.read_bytes()
            except OSError:
                self.send_error(404, "not written yet")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(content)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if body:
                self.wfile.write(content)

    return http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)


def serve(path: str | Path, port: int = 8050) -> None:
    """Serve the dashboard file (that file only) on http://127.0.0.1:``port``/ until interrupted."""
    with dashboard_server(path, port) as server:
        port = server.server_address[1]
        print(f"dashboard on http://127.0.0.1:{port}/{Path(path).name} (Ctrl-C stops it)", flush=True)
        server.serve_forever()
