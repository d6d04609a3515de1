"""The monitoring Delta tables under ``<lake>/outputs/``: schemas, keys, writes and reads.

Every write is ``pipelines.tables.insert_new`` on the table's key, so a rerun on the same inputs adds
no rows and the history over model versions stays: drift is keyed by both versions, calibration and
data drift by the version checked, alerts by a hash of what they are about (rule, market, channel,
metric, versions, and the test window or data window), never by when they were raised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession

from pipelines.tables import insert_new, is_delta, table_path

LAYER = "outputs"

SCHEMAS = {
    "posterior_drift": (
        "brand string, market string, model_name string, champion_version string, challenger_version string, "
        "channel string, metric string, champion_mean double, champion_sd double, champion_hdi_low double, "
        "champion_hdi_high double, challenger_mean double, challenger_sd double, challenger_hdi_low double, "
        "challenger_hdi_high double, mean_shift_sd double, hdi_overlap double, wasserstein double, "
        "wasserstein_sd double, period_start date, period_end date, training_run_id string, as_of date, "
        "computed_at timestamp"
    ),
    "lift_calibration": (
        "brand string, market string, model_name string, model_version string, channel string, start date, "
        "end date, spend_delta double, lift double, lift_se double, model_lift_mean double, "
        "model_lift_hdi_low double, model_lift_hdi_high double, observed_low double, observed_high double, "
        "z_score double, p_value double, inside_predictive_interval boolean, channel_tests int, "
        "channel_coverage double, market_coverage double, training_run_id string, as_of date, computed_at timestamp"
    ),
    "data_drift": (
        "brand string, market string, model_name string, model_version string, channel string, metric string, "
        "value double, reference_value double, recent_value double, reference_start date, reference_end date, "
        "recent_start date, recent_end date, training_run_id string, as_of date, computed_at timestamp"
    ),
    "alerts": (
        "alert_id string, rule string, severity string, brand string, market string, channel string, "
        "metric string, value double, threshold double, model_name string, champion_version string, "
        "challenger_version string, context string, detail string, as_of date, created_at timestamp"
    ),
}
KEYS = {
    "posterior_drift": ("brand", "market", "channel", "metric", "champion_version", "challenger_version"),
    "lift_calibration": ("brand", "market", "model_version", "channel", "start", "end", "spend_delta"),
    "data_drift": ("brand", "market", "model_version", "channel", "metric", "recent_end"),
    "alerts": ("alert_id",),
}
ALERT_IDENTITY = (
    "rule",
    "brand",
    "market",
    "channel",
    "metric",
    "model_name",
    "champion_version",
    "challenger_version",
    "context",
)


def columns(name: str) -> list[str]:
    return [field.split()[0] for field in SCHEMAS[name].split(", ")]


def alert_ids(alerts: pd.DataFrame) -> pd.Series:
    """A stable id per alert from what it is about; the same finding on a rerun gets the same id."""
    identity = alerts[list(ALERT_IDENTITY)].astype(object).where(alerts[list(ALERT_IDENTITY)].notna(), "")
    return identity.astype(str).agg("|".join, axis=1).map(lambda text: hashlib.sha1(text.encode()).hexdigest()[:20])


def write(spark: SparkSession, root: str | Path, name: str, frame: pd.DataFrame, stamp: dt.datetime) -> int:
    """Insert ``frame``'s rows not in table ``name`` yet (stamped ``computed_at``/``created_at``); returns how many."""
    path = table_path(root, LAYER, name)
    frame = frame.copy()
    frame["created_at" if name == "alerts" else "computed_at"] = stamp
    if name == "alerts":
        frame["alert_id"] = alert_ids(frame) if len(frame) else pd.Series(dtype=str)
    missing = [c for c in columns(name) if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: rows lack columns {missing}")
    kinds = dict(field.split() for field in SCHEMAS[name].split(", "))
    records = [
        {column: _python(value, kinds[column]) for column, value in row.items()}
        for row in frame[columns(name)].to_dict("records")
    ]
    before = spark.read.format("delta").load(path).count() if is_delta(spark, path) else 0
    insert_new(spark, spark.createDataFrame(records, SCHEMAS[name]), path, KEYS[name])
    return spark.read.format("delta").load(path).count() - before


def _python(value, kind: str):
    """A pandas/NumPy cell as the Python value Spark's ``kind`` accepts (None for missing)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    converters = {
        "double": float,
        "int": int,
        "boolean": bool,
        "string": str,
        "date": lambda v: pd.Timestamp(v).date(),
        "timestamp": lambda v: pd.Timestamp(v).to_pydatetime(),
    }
    return converters[kind](value)


def read(spark: SparkSession, root: str | Path, layer: str, name: str) -> pd.DataFrame:
    """A Delta table as pandas, or an empty frame when it does not exist yet."""
    path = table_path(root, layer, name)
    if not is_delta(spark, path):
        return pd.DataFrame()
    return spark.read.format("delta").load(path).toPandas()
