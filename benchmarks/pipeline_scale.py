"""Pipeline scale: raw daily spend rows -> gold ``model_input`` on Spark ``local[2]``, at 5M, 10M and 20M rows.

For each size it writes raw landing files (daily x campaigns x raw channels x markets x brands, plus
daily sales and a control per market), runs the real pipeline (Delta, Great Expectations, MERGE) on a
fresh lake, and prints rows per second per stage and the peak memory of the driver (the JVM, which in
local mode also hosts the executors, and the Python driver). Nothing is collected to the driver but
counts, one profile row per market and the quality results.

In the same run, a single-process pandas implementation of the same spend aggregation (the same record
checks, taxonomy mapping and Monday-week sums, without Delta, GX or the gold step) runs on the same
files in a subprocess, so that its peak memory is its own.

    python benchmarks/pipeline_scale.py [--sizes 5 10 20] [--workdir /tmp/mmm_pipeline_scale]

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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


def brand_configs() -> dict[str, BrandConfig]:
    limits = QualityLimits(min_history_weeks=52, max_gap_weeks=4)
    return {b: BrandConfig(brand=b, taxonomy=TAXONOMY, controls=["price_index"], quality=limits) for b in BRANDS}


def generate(landing: Path, millions: int, seed: int = 0) -> int:
    """Write raw files with at least ``millions`` million spend rows; returns the spend row count."""
    rng = np.random.default_rng(seed)
    markets = -(-millions * 1_000_000 // ROWS_PER_MARKET)
    for source in ("spend", "sales", "controls"):
        (landing / source).mkdir(parents=True, exist_ok=True)
    days = np.datetime_as_string(START + np.arange(DAYS), unit="D")
    per_day = len(RAW_CHANNELS) * CAMPAIGNS
    channel = np.tile(np.repeat(np.array(RAW_CHANNELS, dtype=object), CAMPAIGNS), DAYS)
    campaign = np.tile(np.array([f"{raw}_c{c}" for raw in RAW_CHANNELS for c in range(CAMPAIGNS)], dtype=object), DAYS)
    date = np.repeat(days.astype(object), per_day)
    for first in range(0, markets, MARKETS_PER_FILE):
        chunk = range(first, min(first + MARKETS_PER_FILE, markets))
        spend, sales, controls = [], [], []
        for m in chunk:
            brand, market = BRANDS[m % len(BRANDS)], f"M{m:04d}"
            amount = np.round(rng.lognormal(4.0, 1.0, ROWS_PER_MARKET), 2)
            spend.append(
                pa.table(
                    {
                        "date": date,
                        "brand": np.full(ROWS_PER_MARKET, brand, dtype=object),
                        "market": np.full(ROWS_PER_MARKET, market, dtype=object),
                        "channel": channel,
                        "campaign": campaign,
                        "spend": amount,
                    }
                )
            )
            revenue = np.round(amount.reshape(DAYS, per_day).sum(axis=1) * 3 + rng.normal(5000, 300, DAYS), 2)
            sales.append(pd.DataFrame({"date": days, "brand": brand, "market": market, "revenue": revenue}))
            price = np.round(1 + 0.05 * np.sin(np.arange(DAYS) / 30), 4)
            controls.append(
                pd.DataFrame({"date": days, "brand": brand, "market": market, "control": "price_index", "value": price})
            )
        pa_csv.write_csv(pa.concat_tables(spend), landing / "spend" / f"spend_{first:04d}.csv")
        pd.concat(sales).to_csv(landing / "sales" / f"sales_{first:04d}.csv", index=False)
        pd.concat(controls).to_csv(landing / "controls" / f"controls_{first:04d}.csv", index=False)
    return markets * ROWS_PER_MARKET


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20], help="millions of raw spend rows")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mmm_pipeline_scale"))
    parser.add_argument("--pandas", type=Path, help=argparse.SUPPRESS)  # internal: the pandas subprocess
    args = parser.parse_args()
    if args.pandas:
        print(json.dumps(pandas_aggregation(args.pandas)))
        return

    from pipelines.spark import get_spark

    spark = get_spark("pipeline-scale", "local[2]")
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
    first, last = results[0]["spark"], results[-1]["spark"]
    summary = {
        "sizes": [r["size"] for r in results],
        "throughput_ratio_largest_vs_smallest": round(
            last["raw_to_gold_rows_per_s"] / first["raw_to_gold_rows_per_s"], 2
        ),
        "results": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
