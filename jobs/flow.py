"""The weekly retraining flow on Prefect: pipeline -> train -> monitor -> promote -> recommend -> dashboard
(the dashboard and a report per market).

Monitoring runs before promotion because the gate reads its alerts: a new version with a critical
drift or lift-test alert stays ``challenger`` instead of becoming ``champion``.

Each step is a Prefect task over the same importable functions that the ``mmm`` subcommands call, so
the flow, the CLI and the Databricks job run one code path. Steps that touch external services
(the MLflow store, the registry, Delta files) retry with backoff. A step that still fails stops the
flow with a ``StepFailedError`` naming the step and the markets concerned; every step writes its tables
with MERGE or insert-only on keys, so the tables stay consistent and a rerun picks up cleanly.

A rerun for the same ``as_of`` is idempotent: the pipeline's MERGEs change nothing, training reuses
the run that already fitted the same ``model_input`` version for that date, promotion re-applies the
same verdicts, and recommendations and monitoring are keyed by run date.

The Prefect UI shows what a run did: the flow publishes its summary (markdown) and the recommendation
table as artifacts. A failed step also goes to the notification block that the platform file names
(``prefect.failure_notification``), if it names one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Before Prefect reads its settings: the ephemeral server this process starts sends no usage telemetry
# (it logged a DNS error per run where the internet cannot be reached). An explicit setting wins.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from jobs.context import StepContext
from pipelines.config import PlatformConfig
from pipelines.lake import Lake
from pipelines.tables import MODEL_RUNS

log = logging.getLogger(__name__)

STEPS = ("pipeline", "train", "monitor", "promote", "recommend", "dashboard")
RETRY_DELAYS = [10, 60]  # seconds: a store or file-system hiccup, then a longer wait


class StepFailedError(RuntimeError):
    """A flow step that failed after its retries; names the step and the markets it concerned."""

    def __init__(self, step: str, markets: list[str], cause: BaseException) -> None:
        scope = ", ".join(markets) if markets else "all markets"
        super().__init__(f"step '{step}' failed for {scope}: {type(cause).__name__}: {cause}")
        self.step, self.markets = step, markets


@dataclass
class RetrainSummary:
    """What a weekly run did, for the closing summary and for tests."""

    as_of: dt.date
    training_run_id: str | None = None
    reused_training: bool = False
    trained: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # market -> error or failed gate
    promoted: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)  # market -> why the pipeline held it back
    recommendations: Any = None  # pandas rows of budget_recommendations for this run
    alerts: Any = None  # pandas rows of the alerts raised this run
    dashboard: Path | None = None
    reports: Path | None = None  # the index of the market reports
    lake: Lake | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def _step(name: str, retries: int) -> Callable:
    """A Prefect task that turns any exception into ``StepFailedError`` naming the step (after its retries)."""

    def decorate(function: Callable[[StepContext, RetrainSummary], None]) -> Callable:
        @task(name=name, retries=retries, retry_delay_seconds=RETRY_DELAYS[:retries] or 0, cache_policy=NO_CACHE)
        def run(context: StepContext, summary: RetrainSummary) -> None:
            context.progress(f"== {name}")
            start = time.perf_counter()
            function(context, summary)
            summary.seconds[name] = time.perf_counter() - start

        run.step_name = name
        return run

    return decorate


@_step("pipeline", retries=2)
def pipeline_step(context: StepContext, summary: RetrainSummary) -> None:
    """Ingest, quality and model input (one Spark pass, keyed by the run key)."""
    from pipelines.data.run import run_pipeline

    spark = context.spark("mmm-weekly-retrain")
    report = run_pipeline(spark, context.landing, context.lake, context.brands, context.as_of, context.progress)
    summary.excluded = {f"{s.brand}/{s.market}": s.reason for s in report.excluded}
    context.markets = sorted(f"{s.brand}/{s.market}" for s in report.statuses if s.status == "included")
    if not context.markets:
        raise RuntimeError("no market passed the data checks: " + "; ".join(summary.excluded.values()))


@_step("train", retries=1)
def train_step(context: StepContext, summary: RetrainSummary) -> None:
    """Fit every modelled market, unless this date's model input was already fitted (idempotent rerun)."""
    from pipelines.training.driver import previous_training, train

    spark = context.spark("mmm-weekly-retrain")
    previous = previous_training(spark, context.lake, context.as_of, context.markets)
    if previous is not None:
        context.progress(f"model input already fitted for {context.as_of} by training run {previous}: reusing it")
        summary.training_run_id, summary.reused_training = previous, True
        runs = MODEL_RUNS.load(spark, context.lake)
        runs = runs.filter(runs["training_run_id"] == previous).toPandas()
    else:
        report = context.run_job(train, "mmm-weekly-retrain")
        summary.training_run_id, runs = report.training_run_id, report.runs
        context.progress(report.table())
    names = runs["brand"] + "/" + runs["market"]
    summary.trained = sorted(names[runs["status"] == "success"])
    summary.failed = {
        name: (row.error if row.status == "failed" else f"gate: {row.gate}")
        for name, row in zip(names, runs.itertuples(), strict=True)
        if row.status != "success"
    }


@_step("promote", retries=2)
def promote_step(context: StepContext, summary: RetrainSummary) -> None:
    """Apply the gate's verdicts as registry aliases (the same verdicts on a rerun)."""
    from pipelines.registry.promotion import promote

    for p in promote(context.spark("mmm-weekly-retrain"), context.lake, context.platform, summary.training_run_id):
        context.progress(f"  {p.brand}/{p.market}: {p.model_name} v{p.version or '-'} -> {p.action}")
        if p.action.startswith("champion"):
            summary.promoted.append(f"{p.brand}/{p.market}")


@_step("recommend", retries=2)
def recommend_step(context: StepContext, summary: RetrainSummary) -> None:
    """Budget recommendations from every market's champion."""
    from pipelines.recommend.job import recommend

    summary.recommendations = context.run_job(recommend, "mmm-weekly-retrain").rows


@_step("monitor", retries=2)
def monitor_step(context: StepContext, summary: RetrainSummary) -> None:
    """Posterior drift, lift-test calibration, data drift and alerts, for the new versions (before promotion)."""
    from monitoring.job import run_monitoring

    report = context.run_job(run_monitoring, "mmm-weekly-retrain")
    summary.alerts = report.alerts
    context.progress(report.summary())


@_step("dashboard", retries=1)
def dashboard_step(context: StepContext, summary: RetrainSummary) -> None:
    """The market reports (``reports/`` beside the dashboard, each logged to its version's run) and the
    self-contained HTML dashboard linking them."""
    from monitoring.report import write_dashboard_and_reports

    summary.dashboard, written = write_dashboard_and_reports(
        context.spark("mmm-weekly-retrain"), context.lake, context.platform, context.dashboard, context.progress
    )
    summary.reports = written.index


STEP_TASKS = (pipeline_step, train_step, monitor_step, promote_step, recommend_step, dashboard_step)
# The recommendation table's columns in the Prefect UI (the Delta table has the rest).
ARTIFACT_COLUMNS = (
    "brand",
    "market",
    "channel",
    "status",
    "current_spend",
    "recommended_spend",
    "change_pct",
    "expected_uplift",
    "uplift_hdi_low",
    "uplift_hdi_high",
    "model_version",
    "reason",
)


@flow(name="weekly-retrain", log_prints=True)
def weekly_retrain(
    as_of: str | None = None,
    brands: list[str] | None = None,
    environment: str = "local",
    platform_file: str | None = None,
    project: str | None = None,
) -> RetrainSummary:
    """Run every step for ``as_of`` (default: today) over ``brands`` (default: all configured brands).

    ``environment`` is ``local`` (``conf/platform.yaml``, the embedded defaults) or a target of
    ``conf/databricks.yaml`` (``dev``, ``prod``); ``platform_file`` names another platform file; ``project``
    is the project folder (default: ``$MMM_PROJECT``, else the working folder).
    """
    context = StepContext.for_run(as_of, brands, environment, platform_file, project)
    summary = RetrainSummary(as_of=context.as_of, lake=context.lake)
    with context.lock("mmm run (weekly flow)"):  # the steps take it again, re-entrantly
        for step in STEP_TASKS:
            try:
                step(context, summary)
            except Exception as exc:
                markets = context.markets if step.step_name != "pipeline" else []
                failure = StepFailedError(step.step_name, markets, exc)
                notify_failure(context.platform, summary, failure)
                raise failure from exc
    publish_artifacts(summary)
    return summary


def publish_artifacts(summary: RetrainSummary) -> None:
    """The run's summary (markdown) and its recommendations (a table) as Prefect artifacts of this flow run."""
    create_markdown_artifact(
        markdown=summary_markdown(summary),
        key="weekly-retrain-summary",
        description=f"weekly run for {summary.as_of}",
    )
    rows = summary.recommendations
    if rows is not None and len(rows):
        shown = rows[[c for c in ARTIFACT_COLUMNS if c in rows.columns]]
        create_table_artifact(
            table=json.loads(shown.to_json(orient="records", date_format="iso")),  # plain JSON values, NaN as null
            key="budget-recommendations",
            description=f"budget recommendations of the run for {summary.as_of}, per market and channel",
        )


def summary_markdown(summary: RetrainSummary) -> str:
    """What a run did, for the Prefect UI: markets trained, promoted, failed and held back, alerts, where to look."""
    lines = [
        f"# Weekly run for {summary.as_of}",
        "",
        f"Training run `{summary.training_run_id}`" + (" (reused)" if summary.reused_training else ""),
        "",
        "| trained | promoted to champion | failed or rejected | held back by data checks |",
        "|---:|---:|---:|---:|",
        f"| {len(summary.trained)} | {len(summary.promoted)} | {len(summary.failed)} | {len(summary.excluded)} |",
        "",
    ]
    lines += [f"- failed: **{market}**: {why}" for market, why in sorted(summary.failed.items())]
    lines += [f"- held back: **{market}**: {why}" for market, why in sorted(summary.excluded.items())]
    alerts = summary.alerts
    count = 0 if alerts is None else len(alerts)
    lines += ["", f"## Alerts ({count})", ""]
    if count:
        lines += ["| severity | market | channel | metric | value | limit |", "|---|---|---|---|---:|---:|"]
        for a in alerts.head(20).itertuples():
            where = f"{a.brand}/{a.market} | {a.channel or ''}"
            lines.append(f"| {a.severity} | {where} | {a.metric} | {a.value:.3g} | {a.threshold:.3g} |")
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in summary.seconds.items())
    lines += ["", f"Steps: {steps}", "", f"Dashboard: `{summary.dashboard}`; market reports: `{summary.reports}`"]
    lines += ["", f"Tables under `{summary.lake}`"]
    return "\n".join(lines)


def notify_failure(platform: PlatformConfig, summary: RetrainSummary, failure: StepFailedError) -> None:
    """Tell the configured notification block (if any) that the run failed; a notification that cannot be
    sent is logged, never raised: the step's failure is what the run reports."""
    name = platform.prefect.failure_notification
    if not name:
        return
    from prefect.blocks.core import Block
    from prefect.utilities.asyncutils import run_coro_as_sync

    try:
        sent = Block.load(name).notify(body=str(failure), subject=f"mmm weekly run for {summary.as_of} failed")
        if sent is not None and hasattr(sent, "__await__"):
            run_coro_as_sync(sent)
    except Exception as exc:  # a notification block that is missing or cannot send
        log.warning("could not notify %s of the failure: %s: %s", name, type(exc).__name__, exc)
