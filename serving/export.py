"""A run date's budget recommendations and the channel summaries of the models behind them, as files a
planner opens without Spark: two CSV files and one Excel workbook (``mmm export``).

The summaries are those of the exact versions the recommendations used (``model_name``,
``model_version`` of each recommendation row), so the two sheets always describe the same models.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.tables import BUDGET_RECOMMENDATIONS, POSTERIOR_SUMMARIES
from serving.lake import LakeReader

SHEETS = ("recommendations", "channel_summaries")


class ExportError(LookupError):
    """Nothing to export: no recommendations yet, or none on the asked run date."""


@dataclass(frozen=True)
class Export:
    run_date: dt.date
    files: dict[str, Path]  # recommendations, channel_summaries (CSV) and workbook (xlsx)
    rows: dict[str, int]  # rows per sheet


def export_run_date(lake: LakeReader, folder: str | Path, run_date: dt.date | None = None) -> Export:
    """Write ``run_date``'s (default: the latest) recommendations and their models' summaries under ``folder``."""
    recommendations = lake.read(BUDGET_RECOMMENDATIONS)
    if recommendations.empty:
        raise ExportError("no budget recommendations in the lake yet: run `mmm recommend` first")
    dates = pd.to_datetime(recommendations["run_date"]).dt.date
    chosen = run_date or max(dates)
    if chosen not in set(dates):
        raise ExportError(f"no budget recommendations on {chosen}; run dates: {sorted({str(d) for d in dates})}")
    rows = recommendations[dates == chosen].sort_values(["brand", "market", "channel"])
    versions = rows[["model_name", "model_version"]].dropna().drop_duplicates()
    summaries = lake.read(POSTERIOR_SUMMARIES)
    if not summaries.empty and len(versions):
        summaries = summaries.merge(versions, on=["model_name", "model_version"]).sort_values(
            ["brand", "market", "channel", "metric"]
        )
    else:
        summaries = summaries.iloc[0:0]
    sheets = {"recommendations": excel_ready(rows), "channel_summaries": excel_ready(summaries)}
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, frame in sheets.items():
        files[name] = out / f"{name}_{chosen}.csv"
        frame.to_csv(files[name], index=False)
    files["workbook"] = out / f"mmm_export_{chosen}.xlsx"
    with pd.ExcelWriter(files["workbook"], engine="openpyxl") as workbook:
        for name, frame in sheets.items():
            frame.to_excel(workbook, sheet_name=name, index=False)
    return Export(chosen, files, {name: len(frame) for name, frame in sheets.items()})


def excel_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with time zones dropped (Excel has none; Delta timestamps are UTC) and its index reset."""
    frame = frame.reset_index(drop=True).copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame
