"""Writes to the monitoring tables (``pipelines.tables.MONITORING``): stamped, alerts given a stable id.

Every write is the catalogue's ``insert_new`` on the table's key, so a rerun on the same inputs adds
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

from pipelines.tables import ALERTS, Lake, Table

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


def alert_ids(alerts: pd.DataFrame) -> pd.Series:
    """A stable id per alert from what it is about; the same finding on a rerun gets the same id."""
    identity = alerts[list(ALERT_IDENTITY)].astype(object).where(alerts[list(ALERT_IDENTITY)].notna(), "")
    return identity.astype(str).agg("|".join, axis=1).map(lambda text: hashlib.sha1(text.encode()).hexdigest()[:20])


def write(spark: SparkSession, root: Lake | str | Path, table: Table, frame: pd.DataFrame, stamp: dt.datetime) -> int:
    """Insert ``frame``'s rows not in ``table`` yet (stamped ``computed_at``/``created_at``); returns how many."""
    frame = frame.copy()
    frame["created_at" if table == ALERTS else "computed_at"] = stamp
    if table == ALERTS:
        frame["alert_id"] = alert_ids(frame) if len(frame) else pd.Series(dtype=str)
    return table.insert_new(spark, root, table.to_spark(spark, frame))
