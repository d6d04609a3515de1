"""A brand model's training spread over Spark tasks: one simulated brand of 40 markets trained by the Spark
training job (``training.unit: brand``) on ``local[2]``, once with its chains sampled in one task and once
split over ``--split`` tasks (default 2).

Raw files -> pipeline -> ``model_input`` once; then each configuration trains in a fresh process (its own
Spark session and workers, so both pay the same compilation), with the platform's sampler settings
(nutpie, JAX, low-rank mass matrix; 4 chains). Printed per configuration: the Spark tasks of the sampling
stage, the sampling stage's seconds, the job's wall seconds and the worst diagnostics.

    python benchmarks/brand_spark.py [--markets 40] [--split 2] [--workdir /tmp/mmm_brand_spark]
    python benchmarks/brand_spark.py --quick   # 6 markets, 104 weeks, 150 + 100 draws: checks it runs

The last line is one JSON object: markets, tasks_one, wall_s_one, tasks_split, wall_s_split, ratio
(wall_s_one / wall_s_split), the sampling stage's seconds of each, and the split run's sizes: MB of draws
the blocks returned (``draws_mb``) and MB shipped to one market's finishing task (``market_mb``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from train_scale import AS_OF, TAXONOMY  # the same five channels and week as the market-unit benchmark

from pipelines.config import MlflowSettings, PlatformConfig, QualityLimits, TrainingSettings
from pipelines.data.synthetic_raw import RawDataConfig, brand_configs, generate_raw_landing

BRAND = "acme"
QUICK = {"markets": 6, "weeks": 104, "draws": 100, "tune": 150}


def raw_config(markets: int, weeks: int) -> RawDataConfig:
    return RawDataConfig(
        markets={BRAND: [f"M{i:02d}" for i in range(markets)]},
        taxonomy=TAXONOMY,
        campaigns_per_raw_channel=1,
        weeks=weeks,
        start="2022-05-30",
    )


def train_once(workdir: Path, config: RawDataConfig, tasks: int, sampling: dict) -> dict:
    """The training job on ``local[2]`` with the brand's chains in ``tasks`` tasks; timing and diagnostics."""
    from pipelines.spark import get_spark
    from pipelines.training.driver import train

    platform = PlatformConfig(
        mlflow=MlflowSettings(
            tracking_uri=f"sqlite:///{workdir}/mlflow.db", artifact_location=str(workdir / "artifacts")
        ),
        training=TrainingSettings(
            unit="brand", brand_chain_tasks=tasks, compile_dir=str(workdir / "pytensor"), **sampling
        ),
    )
    spark = get_spark(f"brand-spark-{tasks}", "local[2]")
    report = train(
        spark,
        workdir / "lake",
        brand_configs(config, QualityLimits(min_history_weeks=52)),
        platform,
        AS_OF,
        progress=lambda line: print(line, file=sys.stderr, flush=True),  # stdout: the child's JSON
    )
    runs = report.runs
    fitted = runs[runs.status != "failed"]
    return {
        "tasks": report.brand_sampling[BRAND]["tasks"],
        "draws_mb": round(report.brand_sampling[BRAND]["draws_bytes"] / 1e6, 2),
        "market_mb": round(report.brand_sampling[BRAND].get("market_bytes", 0) / 1e6, 3),
        "wall_s": round(report.wall_s, 1),
        # a market's fit_seconds is its share of the sampling stage's wall time
        "sampling_s": round(float(fitted.fit_seconds.sum()), 1),
        "markets": len(runs),
        "failed": int((runs.status == "failed").sum()),
        "max_rhat": float(fitted.max_rhat.max()),
        "min_ess_bulk": float(fitted.min_ess_bulk.min()),
        "divergences": int(fitted.divergences.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=40)
    parser.add_argument("--split", type=int, default=2, help="chain tasks of the split run")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mmm_brand_spark"))
    parser.add_argument("--quick", action="store_true", help="6 markets, 104 weeks, short chains")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # internal: one configuration's tasks
    args = parser.parse_args()
    markets, weeks = (QUICK["markets"], QUICK["weeks"]) if args.quick else (args.markets, 156)
    sampling = {"draws": QUICK["draws"], "tune": QUICK["tune"]} if args.quick else {}
    config = raw_config(markets, weeks)
    if args.child is not None:
        scratch = args.workdir / f"tasks-{args.child}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        (scratch / "lake").symlink_to(args.workdir / "lake")
        print(json.dumps(train_once(scratch, config, args.child, sampling)))
        return

    from pipelines.data.run import run_pipeline
    from pipelines.spark import get_spark

    shutil.rmtree(args.workdir, ignore_errors=True)
    landing = generate_raw_landing(args.workdir / "landing", config)
    spark = get_spark("brand-spark-pipeline", "local[2]")
    brands = brand_configs(config, QualityLimits(min_history_weeks=52))
    run_pipeline(spark, landing.folder, args.workdir / "lake", brands, AS_OF, progress=lambda _: None)
    spark.stop()
    results = {}
    for tasks in (1, args.split):
        command = [sys.executable, __file__, "--child", str(tasks), "--workdir", str(args.workdir)]
        command += ["--quick"] if args.quick else ["--markets", str(markets)]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        results[tasks] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{tasks} chain task(s): {json.dumps(results[tasks])}", flush=True)
    one, split = results[1], results[args.split]
    print(
        json.dumps(
            {
                "markets": markets,
                "weeks": weeks,
                "tasks_one": one["tasks"],
                "wall_s_one": one["wall_s"],
                "sampling_s_one": one["sampling_s"],
                "tasks_split": split["tasks"],
                "wall_s_split": split["wall_s"],
                "sampling_s_split": split["sampling_s"],
                "ratio": round(one["wall_s"] / split["wall_s"], 2),
                "sampling_ratio": round(one["sampling_s"] / split["sampling_s"], 2),
                "draws_mb": split["draws_mb"],
                "market_mb": split["market_mb"],
                "max_rhat_split": split["max_rhat"],
                "min_ess_bulk_split": split["min_ess_bulk"],
            }
        )
    )


if __name__ == "__main__":
    main()
