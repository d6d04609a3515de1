"""Data quality with Great Expectations 1.x on the Spark DataFrames, and the ``dq_results`` table.

A suite is a list of expectations, each tagged with the project's check name and whether it is
critical. ``validate`` runs a suite through an ephemeral GX context and returns one ``Outcome`` per
expectation. A small frame is validated as pandas on the driver (``on_driver_if_small``): the same
expectations and counts, without the half a dozen Spark jobs (about a second) that a suite costs.
Where a suite is given index columns (brand, market), a failed expectation also names the markets whose
rows failed, so that the gold step can exclude exactly those markets and say why.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig
from pyspark.sql import DataFrame, SparkSession

from pipelines.tables import DQ_RESULTS, Lake


@dataclass(frozen=True)
class Check:
    """One expectation under the project's name for it. Critical failures exclude the markets concerned."""

    name: str
    expectation: gxe.Expectation
    critical: bool = False


@dataclass
class Outcome:
    """What one expectation found."""

    suite: str
    check: str
    expectation: str
    kwargs: dict
    critical: bool
    success: bool
    element_count: int | None
    unexpected_count: int | None
    observed_value: object
    failing: list[dict] = field(default_factory=list)  # index-column values of failing rows, when indexed

    @property
    def unexpected_percent(self) -> float | None:
        if not self.element_count or self.unexpected_count is None:
            return None
        return 100.0 * self.unexpected_count / self.element_count

    def describe(self) -> str:
        """A one-line reason, for people and for the next steps."""
        column = self.kwargs.get("column") or self.kwargs.get("column_list")
        bounds = {k: v for k, v in self.kwargs.items() if k in ("min_value", "max_value", "value_set")}
        found = f"{self.unexpected_count} of {self.element_count} rows" if self.unexpected_count is not None else ""
        return f"{self.check}: {self.expectation}({column}, {bounds}) failed {found}".strip()


DRIVER_ROWS = 100_000  # up to this many rows a frame is validated as pandas, collected to the driver


def on_driver_if_small(frame: DataFrame, rows: int) -> DataFrame | pd.DataFrame:
    """``frame`` as pandas when it has at most ``DRIVER_ROWS`` rows (``rows``, which the caller has counted),
    else as it is. A weekly increment's records and its silver tables are small; a full build's are not."""
    return frame.toPandas() if rows <= DRIVER_ROWS else frame


@functools.cache
def _context() -> gx.data_context.AbstractDataContext:
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # the pipeline prints its own progress
    # GX's Spark engine persists every frame it validates, by default, and never releases it. A suite on the
    # 20M-row bronze table made silver's next scan of that table fill the cache with 20M rows of strings
    # (the spend records took 74.4 s against 52.2 s without). Frames worth caching are cached by their callers.
    context.data_sources.add_spark("spark", persist=False)
    context.data_sources.add_pandas("pandas")
    return context


def validate(
    frame: DataFrame | pd.DataFrame, suite: str, checks: list[Check], index_columns: list[str] | None = None
) -> list[Outcome]:
    """Run ``checks`` on ``frame`` (Spark, or pandas for a small frame on the driver) with Great Expectations;
    one Outcome per check."""
    context = _context()
    source = context.data_sources.get("pandas" if isinstance(frame, pd.DataFrame) else "spark")
    try:
        asset = source.get_asset(suite)
    except LookupError:
        asset = source.add_dataframe_asset(suite)
    batch_definition = next(iter(asset.batch_definitions), None) or asset.add_batch_definition_whole_dataframe("whole")
    gx_suite = gx.ExpectationSuite(name=suite)
    for check in checks:
        gx_suite.add_expectation(check.expectation.copy(update={"meta": {"check": check.name}}))
    gx_suite = context.suites.add_or_update(gx_suite)
    # Counts only: a partial list of unexpected values would cost one more scan per expectation (a full one
    # when nothing fails); GX's bundled counts over the frame are all that ``dq_results`` records.
    result_format: dict = {"result_format": "SUMMARY", "partial_unexpected_count": 0}
    if index_columns:
        result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": index_columns}
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        gx_suite, result_format=result_format
    )
    critical = {c.name: c.critical for c in checks}
    outcomes = []
    for r in result.results:
        config, found = r.expectation_config, r.result or {}
        kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
        name = config.meta["check"]
        outcomes.append(
            Outcome(
                suite=suite,
                check=name,
                expectation=config.type,
                kwargs=kwargs,
                critical=critical[name],
                success=bool(r.success),
                element_count=found.get("element_count"),
                unexpected_count=found.get("unexpected_count"),
                observed_value=found.get("observed_value"),
                failing=[{k: row[k] for k in index_columns} for row in found.get("unexpected_index_list") or []]
                if index_columns and not r.success
                else [],
            )
        )
    return outcomes


def write_dq_results(spark: SparkSession, root: Lake | str | Path, run_key: str, outcomes: list[Outcome]) -> None:
    """One row per suite run and expectation; a rerun on the same inputs (same ``run_key``) adds nothing."""
    if not outcomes:
        return
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [
        (
            run_key,
            o.suite,
            o.check,
            o.expectation,
            json.dumps(o.kwargs, default=str, sort_keys=True),
            o.critical,
            o.success,
            o.element_count,
            o.unexpected_count,
            o.unexpected_percent,
            None if o.observed_value is None else json.dumps(o.observed_value, default=str),
            json.dumps(_distinct(o.failing)[:50], default=str) if o.failing else None,
            now,
        )
        for o in outcomes
    ]
    DQ_RESULTS.insert_new(spark, root, spark.createDataFrame(rows, DQ_RESULTS.schema))


def _distinct(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for row in rows:
        key = json.dumps(row, default=str, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out
