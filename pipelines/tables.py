"""The table catalogue: every Delta table of the platform, once, with its layer, name, key and schema.

No module outside this one spells a table's layer and name: they import its ``Table`` and call it with a
``Lake``, which says where the tables are:

- locally and on a cluster with shared storage, Delta folders ``<root>/<layer>/<name>``, addressed in SQL
  by path (``delta.`<root>/<layer>/<name>```): no metastore, so any number of processes can share a lake;
- on Databricks, managed Unity Catalog tables ``<catalog>.<schema>.<layer>_<name>``, which SQL warehouses,
  dashboards and lineage see by name.

Every read and write is Spark SQL or the DataFrame API on that identifier, never Delta's Python
``DeltaTable`` (a JVM object that Spark Connect, and so Databricks serverless, does not have). Two ways
to write, both idempotent:

- ``sync_merge`` makes a derived table (silver, gold, statuses, recommendations) equal to a freshly
  computed frame through one MERGE: rows whose values changed are updated, new rows inserted, vanished
  rows deleted (optionally only those matching a condition). Unchanged rows are not rewritten, so a
  rerun changes no row counts and late data touches only its weeks.
- ``insert_new`` adds rows whose key is not there yet (quarantine, dq results, runs, monitoring): reruns
  add nothing.

Reads: ``load`` (Spark; the table must exist) and ``read`` (pandas; an empty frame when it does not).
``to_spark`` turns pandas rows into a frame of the table's schema, through the one cell converter.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines.lake import Lake

if TYPE_CHECKING:  # annotations only: the service reads the catalogue without Spark installed
    from pyspark.sql import DataFrame, DataFrameWriter, Row, SparkSession

MERGE_CHANGE_METRICS = ("numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted")


@dataclass(frozen=True)
class Table:
    """One Delta table: where it lives (layer, name), what identifies a row (key), and its columns where fixed."""

    layer: str
    name: str
    key: tuple[str, ...] = ()
    schema: str | None = None  # Spark DDL ("a string, b double"); None where the columns follow the config
    # Delta's per-file min/max/null counts, which let a filtered read skip files. A table that is always read
    # whole gains nothing from them and pays for them on every write (set when the table is created).
    column_stats: bool = True

    @property
    def qualified_name(self) -> str:
        """``layer.name``, as reports and quality suites name the table."""
        return f"{self.layer}.{self.name}"

    @property
    def columns(self) -> list[str]:
        """The schema's column names, in order."""
        if self.schema is None:
            raise ValueError(f"{self.qualified_name} has no fixed schema")
        return [field.split()[0] for field in self.schema.split(", ")]

    def path(self, lake: Lake | str | Path) -> str:
        """The table's Delta folder (a lake of folders only)."""
        return Lake.of(lake).path(self)

    def identifier(self, lake: Lake | str | Path) -> str:
        """The table's Spark SQL name in ``lake``."""
        return Lake.of(lake).identifier(self)

    def exists(self, spark: SparkSession, lake: Lake | str | Path) -> bool:
        lake = Lake.of(lake)
        if lake.schema is not None:
            return spark.catalog.tableExists(lake.identifier(self))
        from pyspark.errors import AnalysisException

        try:
            spark.table(lake.identifier(self)).schema  # noqa: B018 (analysis reads the Delta log, or fails)
        except AnalysisException:
            return False
        return True

    def load(self, spark: SparkSession, lake: Lake | str | Path) -> DataFrame:
        """The table as a Spark frame; a clear error when it has not been written yet."""
        if not self.exists(spark, lake):
            raise MissingTableError(f"no {self.qualified_name} table in {lake}")
        return spark.table(self.identifier(lake))

    def read(self, spark: SparkSession, lake: Lake | str | Path, columns: Iterable[str] | None = None) -> pd.DataFrame:
        """The table (or some columns) as pandas; an empty frame (with ``columns``) when it does not exist yet."""
        if not self.exists(spark, lake):
            return pd.DataFrame(columns=list(columns) if columns is not None else None)
        frame = spark.table(self.identifier(lake))
        return (frame.select(*columns) if columns is not None else frame).toPandas()

    def count(self, spark: SparkSession, lake: Lake | str | Path) -> int:
        return spark.table(self.identifier(lake)).count() if self.exists(spark, lake) else 0

    def ensure(self, spark: SparkSession, lake: Lake | str | Path) -> None:
        """Create the table empty if it is not there, so readers never meet a missing table."""
        if not self.exists(spark, lake):
            self.write(spark.createDataFrame([], self.schema), lake)

    def write(self, frame: DataFrame, lake: Lake | str | Path, note: str | None = None) -> None:
        """Create the table with ``frame``'s rows (an error if it exists); ``note`` as with ``sync_merge``."""
        self._save(frame.write.format("delta"), lake, note)

    def append(self, frame: DataFrame, lake: Lake | str | Path, note: str | None = None) -> None:
        """Add ``frame``'s rows (new columns join the schema); the first append creates the table. ``note`` is
        kept in the commit, as with ``sync_merge``."""
        self._save(frame.write.format("delta").mode("append").option("mergeSchema", "true"), lake, note)

    def _save(self, writer: DataFrameWriter, lake: Lake | str | Path, note: str | None = None) -> None:
        """A Unity Catalog table by name; a folder by path (a write that failed half-way leaves files but no
        commit there, which a later ``saveAsTable`` of the path identifier would take for an existing table)."""
        lake = Lake.of(lake)
        if note:
            writer = writer.option("userMetadata", note)
        if not self.column_stats:
            writer = writer.option("delta.dataSkippingNumIndexedCols", "0")  # row counts are still kept
        if lake.schema is not None:
            writer.saveAsTable(lake.identifier(self))
        else:
            writer.save(lake.path(self))

    def to_spark(self, spark: SparkSession, rows: pd.DataFrame) -> DataFrame:
        """Pandas rows as a Spark frame of this table's schema (missing cells None, types as the schema says)."""
        kinds = dict(field.split() for field in self.schema.split(", "))
        missing = [c for c in self.columns if c not in rows.columns]
        if missing:
            raise ValueError(f"{self.qualified_name}: rows lack columns {missing}")
        records = [
            tuple(spark_cell(value, kinds[column]) for column, value in zip(self.columns, row, strict=True))
            for row in rows[self.columns].itertuples(index=False)
        ]
        return spark.createDataFrame(records, self.schema)

    def insert_new(self, spark: SparkSession, lake: Lake | str | Path, frame: DataFrame) -> int:
        """Insert the rows of ``frame`` whose key is not in the table yet (null-safe); returns how many were added."""
        frame = frame.dropDuplicates(list(self.key))
        if not self.exists(spark, lake):
            self.write(frame, lake)
            return self.count(spark, lake)
        return self._merge(spark, lake, frame, "WHEN NOT MATCHED THEN INSERT *").num_inserted_rows

    def sync_merge(
        self,
        spark: SparkSession,
        lake: Lake | str | Path,
        frame: DataFrame,
        values: Iterable[str],
        delete_when: str | None = None,
        note: str | None = None,
    ) -> int:
        """Make the table equal ``frame`` (by key) through one MERGE; returns the table's row count after it.

        Rows compared on ``values`` are updated only when one changed. Target rows missing from ``frame``
        are deleted, or, with ``delete_when`` (a SQL condition on the target, alias ``t``; build its values
        with ``sql_literal``), only those it matches. ``note`` is kept in the commit (Delta's
        ``userMetadata``, read back by ``history``): what the table was built from, atomic with the rows.
        """
        if not self.exists(spark, lake):
            self.write(frame, lake, note)
        else:
            changed = " OR ".join(f"NOT (t.`{v}` <=> s.`{v}`)" for v in values)
            with _merge_note(spark, note):
                self._merge(
                    spark,
                    lake,
                    frame,
                    (f"WHEN MATCHED AND ({changed}) THEN UPDATE SET * " if changed else "")
                    + "WHEN NOT MATCHED THEN INSERT * "
                    + f"WHEN NOT MATCHED BY SOURCE {f'AND ({delete_when}) ' if delete_when else ''}THEN DELETE",
                )
        return self.count(spark, lake)

    def _merge(self, spark: SparkSession, lake: Lake | str | Path, frame: DataFrame, clauses: str) -> Row:
        """One ``MERGE WITH SCHEMA EVOLUTION`` of ``frame`` (alias ``s``) into the table (alias ``t``) on the key;
        returns its metrics row (``num_inserted_rows``, ``num_updated_rows``, ``num_deleted_rows``...)."""
        view = f"mmm_merge_source_{uuid.uuid4().hex}"  # session-scoped, unique: concurrent merges never share one
        frame.createOrReplaceTempView(view)
        try:
            return spark.sql(
                f"MERGE WITH SCHEMA EVOLUTION INTO {self.identifier(lake)} t USING {view} s "
                f"ON {_null_safe_match(self.key)} {clauses}"
            ).collect()[0]
        finally:
            spark.catalog.dropTempView(view)

    def history(self, spark: SparkSession, lake: Lake | str | Path, limit: int | None = None) -> list[Row]:
        """The table's commits, newest first (version, operation, operationMetrics, userMetadata)."""
        query = f"DESCRIBE HISTORY {self.identifier(lake)}" + (f" LIMIT {int(limit)}" if limit else "")
        return spark.sql(query).select("version", "operation", "operationMetrics", "userMetadata").collect()

    def latest_commit(self, spark: SparkSession, lake: Lake | str | Path) -> Row:
        """The table's newest history entry (version, operation, operationMetrics, userMetadata)."""
        return self.history(spark, lake, limit=1)[0]

    def data_version(self, spark: SparkSession, lake: Lake | str | Path) -> int:
        """The version of the last commit that changed rows: a MERGE that changed nothing does not count.

        Two reads at the same data version see the same rows, whatever no-op commits came between them.
        """
        history = self.history(spark, lake)
        for entry in history:  # newest first
            metrics = entry.operationMetrics or {}
            names = MERGE_CHANGE_METRICS if entry.operation == "MERGE" else ("numOutputRows",)
            if entry.operation != "MERGE" or sum(int(metrics.get(name) or 0) for name in names):
                return int(entry.version)
        return int(history[-1].version)


class MissingTableError(LookupError):
    """A table was read before any job wrote it; the message says which, and where."""


def sql_literal(value: str | dt.date | float | int) -> str:
    """``value`` as a Spark SQL literal: strings quoted with their quotes and backslashes escaped."""
    if isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def spark_cell(value: Any, kind: str) -> Any:
    """A pandas/NumPy cell as the Python value Spark accepts for ``kind`` (a DDL type), None when missing."""
    if value is None or (not isinstance(value, str | bytes | list | dict) and pd.isna(value)):
        return None
    converters = {
        "double": float,
        "int": int,
        "long": int,
        "bigint": int,
        "boolean": bool,
        "string": str,
        "date": lambda v: v if type(v) is dt.date else pd.Timestamp(v).date(),
        "timestamp": lambda v: pd.Timestamp(v).to_pydatetime(),
    }
    return converters[kind](value)


@contextmanager
def _merge_note(spark: SparkSession, note: str | None) -> Iterator[None]:
    """Delta's ``userMetadata`` set to ``note`` for the MERGE in the block: a MERGE has no writer option, only
    the session setting. A session that refuses the setting (one that allows only listed settings) commits
    without the note, and the note's readers do what they do without one (silver checks every record)."""
    from pipelines.spark import sql_conf  # Spark only here: the service reads the catalogue without it

    with ExitStack() as setting:
        # whatever the session's refusal: the note is an optimisation, never a requirement
        with suppress(Exception):
            if note:
                setting.enter_context(sql_conf(spark, "spark.databricks.delta.commitInfo.userMetadata", note))
        yield


def _null_safe_match(key: Iterable[str]) -> str:
    return " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in key)


# --- the catalogue -------------------------------------------------------------------------------

QUARANTINE = Table(
    "quality",
    "quarantine",
    ("table", "source_file", "record", "occurrence", "check"),
    "table string, source_file string, record string, occurrence int, check string, reason string, "
    "batch_id string, quarantined_at timestamp",
)
DQ_RESULTS = Table(
    "quality",
    "dq_results",
    ("run_key", "suite", "check"),
    "run_key string, suite string, check string, expectation string, kwargs string, critical boolean, "
    "success boolean, element_count long, unexpected_count long, unexpected_percent double, "
    "observed_value string, failing string, checked_at timestamp",
)
MARKET_STATUS = Table(
    "quality",
    "market_status",
    ("brand", "market"),
    "brand string, market string, status string, checks string, reason string, weeks int, sales_weeks int, "
    "gap_weeks int, gaps string, first_week date, last_week date, data_review string, data_warnings int, "
    "run_key string, updated_at timestamp",
)

# Bronze: raw landing rows as strings plus provenance; the columns follow the landing files. Silver reads
# bronze whole, so bronze keeps no column statistics: they would be cost on every ingest, without use.
BRONZE = {
    source: Table("bronze", name, column_stats=False)
    for source, name in {
        "spend": "raw_spend",
        "sales": "raw_sales",
        "controls": "raw_controls",
        "lift_tests": "lift_tests",
    }.items()
}

# Silver: one row per brand, market, week and item (channel, measure, control), and the typed lift tests.
WEEKLY_SPEND = Table("silver", "weekly_spend", ("brand", "market", "week_start", "channel"))
WEEKLY_SALES = Table("silver", "weekly_sales", ("brand", "market", "week_start", "measure"))
WEEKLY_CONTROLS = Table("silver", "weekly_controls", ("brand", "market", "week_start", "control"))
LIFT_TESTS = Table(
    "silver",
    "lift_tests",
    ("brand", "market", "channel", "start", "end", "spend_delta"),
    "brand string, market string, channel string, start date, end date, spend_delta double, lift double, "
    "lift_se double, source_file string, updated_at timestamp",
)

# Gold: one row per brand, market and week; spend_<channel> and control_<name> columns follow the brands.
MODEL_INPUT = Table("gold", "model_input", ("brand", "market", "week_start"))

# Models: what each training run did, per market, and its posterior summaries.
MODEL_RUNS = Table("models", "model_runs", ("training_run_id", "brand", "market"))
POSTERIOR_SUMMARIES = Table(
    "models", "posterior_summaries", ("training_run_id", "brand", "market", "channel", "metric")
)

# Outputs: monitoring and recommendations.
POSTERIOR_DRIFT = Table(
    "outputs",
    "posterior_drift",
    ("brand", "market", "channel", "metric", "champion_version", "challenger_version"),
    "brand string, market string, model_name string, champion_version string, challenger_version string, "
    "channel string, metric string, champion_mean double, champion_sd double, champion_hdi_low double, "
    "champion_hdi_high double, challenger_mean double, challenger_sd double, challenger_hdi_low double, "
    "challenger_hdi_high double, mean_shift_sd double, hdi_overlap double, wasserstein double, "
    "wasserstein_sd double, period_start date, period_end date, training_run_id string, as_of date, "
    "computed_at timestamp",
)
LIFT_CALIBRATION = Table(
    "outputs",
    "lift_calibration",
    ("brand", "market", "model_version", "channel", "start", "end", "spend_delta"),
    "brand string, market string, model_name string, model_version string, channel string, start date, "
    "end date, spend_delta double, lift double, lift_se double, model_lift_mean double, "
    "model_lift_hdi_low double, model_lift_hdi_high double, observed_low double, observed_high double, "
    "z_score double, p_value double, inside_predictive_interval boolean, channel_tests int, "
    "channel_coverage double, market_coverage double, training_run_id string, as_of date, computed_at timestamp",
)
DATA_DRIFT = Table(
    "outputs",
    "data_drift",
    ("brand", "market", "model_version", "channel", "metric", "recent_end"),
    "brand string, market string, model_name string, model_version string, channel string, metric string, "
    "value double, reference_value double, recent_value double, reference_start date, reference_end date, "
    "recent_start date, recent_end date, training_run_id string, as_of date, computed_at timestamp",
)
ALERTS = Table(
    "outputs",
    "alerts",
    ("alert_id",),
    "alert_id string, rule string, severity string, brand string, market string, channel string, "
    "metric string, value double, threshold double, model_name string, champion_version string, "
    "challenger_version string, context string, detail string, as_of date, created_at timestamp",
)
BUDGET_RECOMMENDATIONS = Table(
    "outputs",
    "budget_recommendations",
    ("run_date", "brand", "market", "channel"),
    "run_date date, brand string, market string, channel string, status string, reason string, "
    "model_name string, model_version string, period_weeks int, total_budget double, current_spend double, "
    "min_spend double, max_spend double, recommended_spend double, change_pct double, "
    "expected_contribution double, contribution_hdi_low double, contribution_hdi_high double, roas double, "
    "marginal_roas double, expected_uplift double, uplift_hdi_low double, uplift_hdi_high double, "
    "converged boolean, uplift_probability double, verdict string, decision_value double, test_start date, "
    "test_weeks int, test_spend_change_pct double, test_spend_delta double, test_lift_se double, "
    "test_expected_lift double, test_predicted_narrowing double, test_value double, test_rank int, "
    "recorded_at timestamp",
)

MONITORING = (POSTERIOR_DRIFT, LIFT_CALIBRATION, DATA_DRIFT, ALERTS)


def write_quarantine(spark: SparkSession, lake: Lake | str | Path, rows: DataFrame) -> None:
    """Add rejected records to ``quality.quarantine``, once each."""
    QUARANTINE.insert_new(spark, lake, rows)
