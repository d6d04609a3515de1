"""The data pipeline in one call: raw landing files -> bronze -> silver -> gold, checked at each layer.

``run_pipeline`` is what ``mmm pipeline`` and the weekly flow call. It reports per table the rows in,
the rows passed and the rows quarantined (in = passed + quarantined), the rows in the table after the
write, each market's modelling status, and every Great Expectations outcome (also in ``dq_results``).
Everything is keyed by ``run_key``, made of ``as_of`` and the bronze tables' Delta versions: a rerun on
the same files has the same key and adds no rows anywhere.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import great_expectations.expectations as gxe
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.config import BrandConfig
from pipelines.data.gold import MarketStatus, build_model_input
from pipelines.data.ingest import REQUIRED_COLUMNS, IngestReport, ingest_source
from pipelines.data.quality import Check, Outcome, on_driver_if_small, validate, write_dq_results
from pipelines.data.silver import SOURCES, StageReport, build_lift_tests, build_weekly, record_checks, weekly_checks
from pipelines.tables import BRONZE, QUARANTINE, Lake

INGESTED_SOURCES = ("spend", "sales", "controls", "lift_tests")


@dataclass
class PipelineReport:
    """What one pipeline run did, table by table."""

    run_key: str
    ingest: list[IngestReport] = field(default_factory=list)
    stages: list[StageReport] = field(default_factory=list)
    statuses: list[MarketStatus] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def excluded(self) -> list[MarketStatus]:
        return [s for s in self.statuses if s.status == "excluded"]

    def summary(self) -> str:
        """A plain-text table: rows in, passed, quarantined and in the table, per table; then the markets."""
        lines = [f"{'table':<16}{'rows in':>12}{'passed':>12}{'quarantined':>13}{'table rows':>12}"]
        for r in self.ingest:
            lines.append(
                f"{BRONZE[r.source].name:<16}{r.rows_in:>12,}{r.rows_written:>12,}"
                f"{len(r.files_quarantined):>8,} file{'s' if len(r.files_quarantined) != 1 else ' '}{'':>12}"
            )
        for s in self.stages:
            lines.append(f"{s.table:<16}{s.rows_in:>12,}{s.rows_passed:>12,}{s.rows_quarantined:>13,}{s.rows_out:>12,}")
        included = [f"{s.brand}/{s.market}" for s in self.statuses if s.status == "included"]
        lines.append(f"markets for modelling ({len(included)}): {', '.join(included) or 'none'}")
        for s in self.excluded:
            lines.append(f"excluded {s.brand}/{s.market}: {s.reason}")
        for s in self.statuses:
            if s.status == "included" and s.data_warnings:
                lines.append(f"data review {s.brand}/{s.market} ({s.data_warnings} warnings): {s.data_review}")
        failed = [o for o in self.outcomes if not o.success]
        lines.append(f"quality checks: {len(self.outcomes) - len(failed)} passed, {len(failed)} failed")
        lines += [f"  {o.suite}: {o.describe()}" for o in failed]
        return "\n".join(lines)


def run_pipeline(
    spark: SparkSession,
    landing: str | Path,
    root: Lake | str | Path,
    brands: dict[str, BrandConfig],
    as_of: dt.date | None = None,
    progress: Callable[[str], None] = print,
) -> PipelineReport:
    """Ingest new landing files, rebuild silver and gold (MERGE), run the GX suites, write dq_results."""
    as_of = as_of or dt.date.today()
    batch_id = uuid.uuid4().hex[:12]
    report = PipelineReport(run_key="")
    QUARANTINE.ensure(spark, root)

    clock = time.perf_counter()
    kept = sorted({c for b in brands.values() for c in b.extra_columns})  # columns a brand declares beyond ours
    measures = sorted({m for b in brands.values() for m in b.measures})
    for source in INGESTED_SOURCES:
        if (Path(landing) / source).is_dir():
            ingested = ingest_source(
                spark,
                root,
                landing,
                source,
                batch_id,
                extra_columns=kept,
                measures=measures if source == "sales" else (),
            )
            report.ingest.append(ingested)
            progress(
                f"ingest {source}: {len(ingested.files_ingested)} new files, {ingested.rows_written:,} rows, "
                f"{len(ingested.files_skipped)} already in bronze, {len(ingested.files_quarantined)} quarantined, "
                f"{len(ingested.files_quarantined_before)} quarantined before"
            )
    report.seconds["ingest"] = time.perf_counter() - clock
    report.run_key = run_key(spark, root, as_of)
    for source in (s for s in INGESTED_SOURCES if s != "lift_tests"):
        bronze = BRONZE[source]
        if bronze.exists(spark, root):
            schema = [
                Check(f"has_{c}", gxe.ExpectColumnToExist(column=c), critical=True) for c in REQUIRED_COLUMNS[source]
            ]
            columns = pd.DataFrame(columns=bronze.load(spark, root).columns)  # the suite reads the columns only
            report.outcomes += validate(columns, bronze.qualified_name, schema)

    for source in SOURCES:
        clock = time.perf_counter()
        stage, records = build_weekly(spark, root, source, brands, as_of, batch_id)
        if records is not None:
            suite = f"{source.bronze.qualified_name}.records"
            report.outcomes += validate(on_driver_if_small(records, stage.rows_in), suite, record_checks(source, as_of))
            records.unpersist()
        weekly = source.silver.load(spark, root).withColumn("weekday", F.dayofweek("week_start"))
        report.outcomes += validate(
            on_driver_if_small(weekly, stage.rows_out),
            source.silver.qualified_name,
            weekly_checks(source, brands, as_of),
        )
        report.stages.append(stage)
        report.seconds[source.silver.name] = time.perf_counter() - clock
        progress(
            f"silver {source.silver.name}: {stage.rows_in:,} records in ({stage.scope}), "
            f"{stage.rows_quarantined:,} quarantined, {stage.rows_out:,} weekly rows "
            f"({report.seconds[source.silver.name]:.1f} s)"
        )
    clock = time.perf_counter()
    lift = build_lift_tests(spark, root, brands, batch_id)
    report.stages.append(lift)
    report.seconds["lift_tests"] = time.perf_counter() - clock
    progress(
        f"silver lift_tests: {lift.rows_in:,} tests in, {lift.rows_quarantined:,} quarantined, {lift.rows_out:,} kept"
    )

    clock = time.perf_counter()
    gold = build_model_input(spark, root, brands, report.run_key, batch_id)
    report.stages.append(gold.report)
    report.statuses = gold.statuses
    report.outcomes += gold.outcomes
    report.seconds["model_input"] = time.perf_counter() - clock
    progress(
        f"gold model_input: {gold.report.rows_out:,} rows for {len(gold.statuses) - len(report.excluded)} markets, "
        f"{len(report.excluded)} markets excluded ({report.seconds['model_input']:.1f} s)"
    )
    write_dq_results(spark, root, report.run_key, report.outcomes)
    return report


def run_key(spark: SparkSession, root: Lake | str | Path, as_of: dt.date) -> str:
    """``as_of`` plus each bronze table's Delta version: the same inputs give the same key."""
    parts = [f"as_of={as_of.isoformat()}"]
    for bronze in BRONZE.values():
        if bronze.exists(spark, root):
            parts.append(f"{bronze.name}@{bronze.latest_commit(spark, root)['version']}")
    return ";".join(parts)
