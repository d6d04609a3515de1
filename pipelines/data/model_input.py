"""The one reader of gold ``model_input``: a market's weeks as the frame the model library fits.

Gold writes one wide row per brand, market and week, with ``spend_<channel>`` and
``control_<name>`` columns shared by every brand. Training and recommendations both read it back
through here, so the prefixes are stripped, and the week still running is left out, in one place:

- a partial week at the end (the current week, its sales and spend not all in) is dropped;
- a partial week inside the history stays, with its target masked (a gap), since its sales are
  undercounted.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.config import BrandConfig
from pipelines.tables import MODEL_INPUT, Lake

SPEND_PREFIX, CONTROL_PREFIX = "spend_", "control_"


def spend_column(channel: str) -> str:
    """Gold's column for a channel's weekly spend."""
    return f"{SPEND_PREFIX}{channel}"


def control_column(control: str) -> str:
    """Gold's column for a control's weekly value."""
    return f"{CONTROL_PREFIX}{control}"


def complete_weeks(rows: pd.DataFrame) -> pd.DataFrame:
    """One market's gold rows, oldest first, without the trailing partial weeks."""
    rows = rows.sort_values("week_start")
    partial = rows["partial_week"].fillna(False).astype(bool).to_numpy()
    return rows.iloc[: len(rows) - int(partial[::-1].cumprod().sum())]


def market_frame(
    rows: pd.DataFrame, brand: BrandConfig, date_column: str = "date", target_column: str = "target"
) -> pd.DataFrame:
    """Gold rows of one market -> a frame of ``date_column``, ``target_column``, the channels and the controls.

    Column names are the brand's model names (no gold prefixes); a partial week inside the history
    has a NaN target (masked in the likelihood).
    """
    rows = complete_weeks(rows)
    target = rows["target"].where(~rows["partial_week"].fillna(False).astype(bool))
    frame = pd.DataFrame({date_column: pd.to_datetime(rows["week_start"]), target_column: target})
    for channel in brand.channels:
        frame[channel] = rows[spend_column(channel)].astype(float)
    for control in brand.controls:
        frame[control] = rows[control_column(control)].astype(float)
    return frame.reset_index(drop=True)


def gold_rows(
    spark: SparkSession, root: Lake | str | Path, brands: dict[str, BrandConfig], as_of: dt.date | None = None
) -> DataFrame:
    """The configured brands' gold rows (up to ``as_of``), with only the columns those brands use."""
    table = MODEL_INPUT.load(spark, root)
    used = {spend_column(c) for b in brands.values() for c in b.channels}
    used |= {control_column(c) for b in brands.values() for c in b.controls}
    rows = table.filter(F.col("brand").isin(list(brands)))
    if as_of is not None:
        rows = rows.filter(F.col("week_start") <= F.lit(as_of))
    return rows.select(*[c for c in table.columns if c in used or not c.startswith((SPEND_PREFIX, CONTROL_PREFIX))])


def read_market_frames(
    spark: SparkSession, root: Lake | str | Path, brands: dict[str, BrandConfig], as_of: dt.date | None = None
) -> dict[tuple[str, str], pd.DataFrame]:
    """Every gold market of the configured brands as ``market_frame``s, keyed by (brand, market).

    An empty dict when gold has not been written yet.
    """
    if not MODEL_INPUT.exists(spark, root):
        return {}
    rows = gold_rows(spark, root, brands, as_of).toPandas()
    return {
        (brand, market): market_frame(part, brands[brand])
        for (brand, market), part in rows.groupby(["brand", "market"], sort=True)
    }
