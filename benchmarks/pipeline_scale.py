"""Pipeline scale: raw daily spend rows -> gold ``model_input`` on Spark ``local[2]``, at 5M, 10M and 20M rows.

For each size it writes raw landing files (daily x campaigns x raw channels x markets x brands, plus
daily sales and a control per market), runs the real pipeline (Delta, Great Expectations, MERGE) on a
fresh lake, and prints rows per second per stage and the peak memory of the driver (the JVM, which in
local mode also hosts the executors, and the Python driver). Nothing is collected to the driver but
counts, one profile row per market and the quality results.

In the same run, a single-process pandas implementation of the same spend aggregation (the same record
checks, taxonomy mapping and Monday-week sums, without Delta, GX or the gold step) runs on the same
files in a subprocess, so that its peak memory is its own.

First the weekly case: a lake that already holds ``HISTORY_WEEKS`` weeks of ``--weekly-markets`` markets
(built by one run, not timed), one more week of files lands, and the run that takes it in is timed
(``weekly_increment_s``).

    python benchmarks/pipeline_scale.py [--sizes 5 10 20] [--weekly-markets 20] [--workdir /tmp/mmm_pipeline_scale]
    python benchmarks/pipeline_scale.py --weekly-only [--weekly-markets 4]   # the weekly case alone

The last line is one JSON object with every figure: ``spark_over_pandas_20m`` (pandas rows/s over Spark
raw-to-gold rows/s at 20M), the Spark rows/s at 10M and 20M and their ratio, and ``weekly_increment_s``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.config import BrandConfig, QualityLimits

TAXONOMY = {
    "tv": ["tv_linear"],
    "search": ["google_ads"],
    "social": ["fb_ads", "instagram"],
    "video": ["youtube", "tiktok"],
}
RAW_CHANNELS = [raw for raws in TAXONOMY.values() for raw in raws]
BRANDS = ["alpha", "beta", "gamma", "delta"]
CAMPAIGNS = 10
DAYS = 728  # 104 weeks from a Monday
START = np.datetime64("2023-01-02")
AS_OF = dt.date(2025, 1, 1)
ROWS_PER_MARKET = DAYS * len(RAW_CHANNELS) * CAMPAIGNS
MARKETS_PER_FILE = 20
HISTORY_WEEKS = 156  # the lake that a weekly increment lands on
WEEKLY_MARKETS = 20


def brand_configs() -> dict[str, BrandConfig]:
    limits = QualityLimits(min_history_weeks=52, max_gap_weeks=4)
    return {b: BrandConfig(brand=b, taxonomy=TAXONOMY, controls=["price_index"], quality=limits) for b in BRANDS}


def generate(landing: Path, millions: int, seed: int = 0) -> int:
    """Write raw files with at least ``millions`` million spend rows over ``DAYS`` days; returns the spend rows."""
    markets = -(-millions * 1_000_000 // ROWS_PER_MARKET)
    return write_landing(landing, range(markets), START, DAYS, "", np.random.default_rng(seed))


def write_landing(
    landing: Path, markets: range, start: np.datetime64, days: int, tag: str, rng: np.random.Generator
) -> int:
    """Write spend, sales and control files for ``markets`` over ``days`` days from ``start`` (file names
    ``<source>_<tag><first market>.csv``, ``MARKETS_PER_FILE`` markets a file); returns the spend rows."""
    for source in ("spend", "sales", "controls"):
        (landing / source).mkdir(parents=True, exist_ok=True)
    dates = np.datetime_as_string(start + np.arange(days), unit="D")
    per_day = len(RAW_CHANNELS) * CAMPAIGNS
    rows = days * per_day
    channel = np.tile(np.repeat(np.array(RAW_CHANNELS, dtype=object), CAMPAIGNS), days)
    campaign = np.tile(np.array([f"{raw}_c{c}" for raw in RAW_CHANNELS for c in range(CAMPAIGNS)], dtype=object), days)
    date = np.repeat(dates.astype(object), per_day)
    for first in range(markets.start, markets.stop, MARKETS_PER_FILE):
        chunk = range(first, min(first + MARKETS_PER_FILE, markets.stop))
        spend, sales, controls = [], [], []
        for m in chunk:
            brand, market = BRANDS[m % len(BRANDS)], f"M{m:04d}"
            amount = np.round(rng.lognormal(4.0, 1.0, rows), 2)
            spend.append(
                pa.table(
                    {
                        "date": date,
                        "brand": np.full(rows, brand, dtype=object),
                        "market": np.full(rows, market, dtype=object),
                        "channel": channel,
                        "campaign": campaign,
                        "spend": amount,
                    }
                )
            )
            revenue = np.round(amount.reshape(days, per_day).sum(axis=1) * 3 + rng.normal(5000, 300, days), 2)
            sales.append(pd.DataFrame({"date": dates, "brand": brand, "market": market, "revenue": revenue}))
            day_number = (start - START).astype(int) + np.arange(days)
            price = np.round(1 + 0.05 * np.sin(day_number / 30), 4)
            controls.append(
                pd.DataFrame(
                    {"date": dates, "brand": brand, "market": market, "control": "price_index", "value": price}
                )
            )
        pa_csv.write_csv(pa.concat_tables(spend), landing / "spend" / f"spend_{tag}{first:04d}.csv")
        pd.concat(sales).to_csv(landing / "sales" / f"sales_{tag}{first:04d}.csv", index=False)
        pd.concat(controls).to_csv(landing / "controls" / f"controls_{tag}{first:04d}.csv", index=False)
    return len(markets) * rows


def pandas_aggregation(landing: Path) -> dict:
    """The spend path in one pandas process: read, type, check, map, sum per Monday week. Runs in a subprocess."""
    start = time.perf_counter()
    raw = pd.concat(
        [pd.read_csv(path, dtype=str) for path in sorted((landing / "spend").glob("*.csv"))], ignore_index=True
    )
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    day = pd.to_datetime(raw["date"], format="%Y-%m-%d", errors="coerce")
    amount = pd.to_numeric(raw["spend"], errors="coerce")
    mapping = pd.DataFrame(
        [(b, raw_name, model) for b in BRANDS for model, raws in TAXONOMY.items() for raw_name in raws],
        columns=["brand", "channel", "model_channel"],
    )
    model_channel = raw[["brand", "channel"]].merge(mapping, how="left", on=["brand", "channel"])["model_channel"]
    bad = day.isna() | (day > pd.Timestamp(AS_OF)) | amount.isna() | (amount < 0) | model_channel.isna()
    bad |= raw.duplicated(["date", "brand", "market", "channel", "campaign"])
    good = pd.DataFrame(
        {
            "brand": raw["brand"],
            "market": raw["market"],
            "week_start": day - pd.to_timedelta(day.dt.dayofweek, unit="D"),
            "channel": model_channel,
            "spend": amount,
        }
    )[~bad]
    weekly = good.groupby(["brand", "market", "week_start", "channel"], sort=False)["spend"].sum()
    transform_s = time.perf_counter() - start
    return {
        "rows": len(raw),
        "rows_quarantined": int(bad.sum()),
        "weekly_rows": len(weekly),
        "read_s": round(read_s, 1),
        "transform_s": round(transform_s, 1),
        "seconds": round(read_s + transform_s, 1),
        "rows_per_s": round(len(raw) / (read_s + transform_s)),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def peak_rss_gb(pid: int | str) -> float:
    """VmHWM: the process's peak resident memory since start or since the last reset."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 2**20, 2)
    raise RuntimeError(f"no VmHWM for process {pid}")


def reset_peak_rss(pid: int | str) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)


def spark_run(spark, landing: Path, lake: Path, spend_rows: int) -> dict:
    from pipelines.data.run import run_pipeline

    jvm = spark.sparkContext._gateway.proc.pid
    reset_peak_rss(jvm)
    reset_peak_rss("self")
    start = time.perf_counter()
    report = run_pipeline(
        spark, landing, lake, brand_configs(), AS_OF, progress=lambda line: print("  " + line, flush=True)
    )
    wall = time.perf_counter() - start
    raw_rows = sum(r.rows_written for r in report.ingest)
    stages = {s.table: s for s in report.stages}
    rate = {
        "ingest": raw_rows / report.seconds["ingest"],
        "weekly_spend": stages["weekly_spend"].rows_in / report.seconds["weekly_spend"],
        "weekly_sales": stages["weekly_sales"].rows_in / report.seconds["weekly_sales"],
        "weekly_controls": stages["weekly_controls"].rows_in / report.seconds["weekly_controls"],
        "model_input": stages["model_input"].rows_in / report.seconds["model_input"],
    }
    spend_path_s = report.seconds["ingest"] + report.seconds["weekly_spend"]
    return {
        "spend_rows": spend_rows,
        "raw_rows": raw_rows,
        "model_input_rows": stages["model_input"].rows_out,
        "markets": len(report.statuses),
        "wall_s": round(wall, 1),
        "seconds": {k: round(v, 1) for k, v in report.seconds.items()},
        "rows_per_s": {k: round(v) for k, v in rate.items()},
        "raw_to_gold_rows_per_s": round(raw_rows / wall),
        "spend_path_rows_per_s": round(spend_rows / spend_path_s),
        "peak_jvm_rss_gb": peak_rss_gb(jvm),
        "peak_python_driver_rss_gb": peak_rss_gb("self"),
        "nothing_lost": all(s.rows_in == s.rows_passed + s.rows_quarantined for s in report.stages),
    }


def weekly_increment(spark, workdir: Path, markets: int) -> dict:
    """A weekly run: ``markets`` markets with ``HISTORY_WEEKS`` weeks already in the lake, then one more week
    lands (spend, sales and controls of every market) and the pipeline runs for it; times that run."""
    from pipelines.data.run import run_pipeline

    shutil.rmtree(workdir, ignore_errors=True)
    landing, lake = workdir / "landing", workdir / "lake"
    rng = np.random.default_rng(1)
    history_days = HISTORY_WEEKS * 7
    lake_rows = write_landing(landing, range(markets), START, history_days, "history_", rng)
    as_of = (START + history_days - 1).astype(object)  # the last day of the history, a Sunday
    start = time.perf_counter()
    run_pipeline(spark, landing, lake, brand_configs(), as_of, progress=lambda _: None)
    history_s = time.perf_counter() - start
    week_rows = write_landing(landing, range(markets), START + history_days, 7, f"week{HISTORY_WEEKS + 1}_", rng)
    start = time.perf_counter()
    report = run_pipeline(spark, landing, lake, brand_configs(), as_of + dt.timedelta(days=7), progress=lambda _: None)
    increment_s = time.perf_counter() - start
    gold = next(s for s in report.stages if s.table == "model_input")
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "markets": markets,
        "lake_spend_rows": lake_rows,
        "week_spend_rows": week_rows,
        "history_run_s": round(history_s, 1),
        "weekly_increment_s": round(increment_s, 1),
        "load_average_after_increment": [round(v, 2) for v in os.getloadavg()],
        "seconds": {k: round(v, 1) for k, v in report.seconds.items()},
        "gold_weeks_per_market": gold.rows_out / markets,
        "nothing_lost": all(s.rows_in == s.rows_passed + s.rows_quarantined for s in report.stages),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20], help="millions of raw spend rows")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mmm_pipeline_scale"))
    parser.add_argument(
        "--weekly-markets", type=int, default=WEEKLY_MARKETS, help="markets of the weekly increment (0: skip it)"
    )
    parser.add_argument("--weekly-only", action="store_true", help="run the weekly increment alone (no sizes)")
    parser.add_argument("--pandas", type=Path, help=argparse.SUPPRESS)  # internal: the pandas subprocess
    args = parser.parse_args()
    if args.pandas:
        print(json.dumps(pandas_aggregation(args.pandas)))
        return

    from pipelines.spark import get_spark

    spark = get_spark("pipeline-scale", "local[2]")
    print(f"load average at start: {os.getloadavg()}", flush=True)
    weekly = weekly_increment(spark, args.workdir, args.weekly_markets) if args.weekly_markets else None
    if weekly:
        print(json.dumps({"weekly": weekly}), flush=True)
    if args.weekly_only:
        load = [round(v, 2) for v in os.getloadavg()]
        print(json.dumps({"weekly_increment_s": weekly and weekly["weekly_increment_s"], "load_average_end": load}))
        return
    results = []
    for millions in args.sizes:
        shutil.rmtree(args.workdir, ignore_errors=True)
        landing, lake = args.workdir / "landing", args.workdir / "lake"
        start = time.perf_counter()
        spend_rows = generate(landing, millions)
        print(f"{millions}M: wrote {spend_rows:,} raw spend rows in {time.perf_counter() - start:.0f} s", flush=True)
        result = {"size": f"{millions}M", "spark": spark_run(spark, landing, lake, spend_rows)}
        pandas_out = subprocess.run(
            [sys.executable, __file__, "--pandas", str(landing)], capture_output=True, text=True, check=True
        )
        result["pandas"] = json.loads(pandas_out.stdout.strip().splitlines()[-1])
        result["spark_spend_path_vs_pandas"] = round(
            result["spark"]["spend_path_rows_per_s"] / result["pandas"]["rows_per_s"], 2
        )
        print(json.dumps(result), flush=True)
        results.append(result)
    shutil.rmtree(args.workdir, ignore_errors=True)

    header = (
        "size",
        "spark raw->gold rows/s",
        "spark spend rows/s",
        "pandas rows/s",
        "spark/pandas",
        "JVM GB",
        "pandas GB",
    )
    print("\n" + " ".join(f"{h:>{len(h) + 2}}" for h in header))
    for r in results:
        s, p = r["spark"], r["pandas"]
        row = (
            r["size"],
            f"{s['raw_to_gold_rows_per_s']:,}",
            f"{s['spend_path_rows_per_s']:,}",
            f"{p['rows_per_s']:,}",
            r["spark_spend_path_vs_pandas"],
            s["peak_jvm_rss_gb"],
            p["peak_rss_gb"],
        )
        print(" ".join(f"{v!s:>{len(h) + 2}}" for h, v in zip(header, row, strict=True)))
    by_size = {r["size"]: r for r in results}
    spark_rate = {size: r["spark"]["raw_to_gold_rows_per_s"] for size, r in by_size.items()}
    first, last = results[0]["spark"], results[-1]["spark"]
    summary = {
        "sizes": [r["size"] for r in results],
        "spark_raw_to_gold_rows_per_s_10m": spark_rate.get("10M"),
        "spark_raw_to_gold_rows_per_s_20m": spark_rate.get("20M"),
        "pandas_rows_per_s_20m": by_size["20M"]["pandas"]["rows_per_s"] if "20M" in by_size else None,
        # pandas rows/s over Spark raw-to-gold rows/s at 20M: how many times faster the pandas spend path is
        "spark_over_pandas_20m": round(by_size["20M"]["pandas"]["rows_per_s"] / spark_rate["20M"], 2)
        if "20M" in by_size
        else None,
        "throughput_20m_over_10m": round(spark_rate["20M"] / spark_rate["10M"], 2)
        if {"10M", "20M"} <= set(spark_rate)
        else None,
        "throughput_ratio_largest_vs_smallest": round(
            last["raw_to_gold_rows_per_s"] / first["raw_to_gold_rows_per_s"], 2
        ),
        "weekly_increment_s": weekly["weekly_increment_s"] if weekly else None,
        "weekly": weekly,
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
        "results": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
