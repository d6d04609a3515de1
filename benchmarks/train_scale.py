"""Training scale: 40 simulated markets (156 weeks, 5 channels) fitted by the Spark training job.

Raw files -> pipeline -> ``model_input`` -> ``train`` on ``local[2]`` (MLflow tracking and registry
included). In the same run:
- the naive way a user would write it: a plain loop that builds a fresh PyMC model per market and
  calls ``pm.sample`` (PyMC's NUTS, ``cores=2``), over 4 of the markets, same draws;
- markets per minute with ``local[1]`` against ``local[2]`` (8 markets each, fresh Spark and workers).

    python benchmarks/train_scale.py [--markets 40] [--workdir /tmp/mmm_train_scale] [--sampler numpyro --batch-size 8]
        [--target-accept 0.9]   # the sampler's acceptance target; default: the platform's
        [--no-compare]   # only the 40-market training, without the naive loop and the local[1]/local[2] runs

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.config import MlflowSettings, PlatformConfig, QualityLimits, TrainingSettings
from pipelines.data.synthetic_raw import RawDataConfig, brand_configs, generate_raw_landing

AS_OF = dt.date(2025, 6, 2)
TAXONOMY = {
    "tv": ["tv_linear"],
    "search": ["google_ads"],
    "social": ["fb_ads", "instagram"],
    "video": ["youtube"],
    "display": ["programmatic"],
}
NAIVE_MARKETS = 4
SCALING_MARKETS = 8


def raw_config(markets: int) -> RawDataConfig:
    per_brand = markets // 4
    return RawDataConfig(
        markets={brand: [f"M{i:02d}" for i in range(per_brand)] for brand in ("acme", "bolt", "cobalt", "dune")},
        taxonomy=TAXONOMY,
        campaigns_per_raw_channel=1,
        weeks=156,
        start="2022-05-30",
    )


def platform_for(workdir: Path, training: dict | None = None) -> PlatformConfig:
    """The platform's defaults, with a local MLflow store in ``workdir`` and any ``training`` settings given."""
    return PlatformConfig(
        mlflow=MlflowSettings(
            tracking_uri=f"sqlite:///{workdir}/mlflow.db", artifact_location=str(workdir / "artifacts")
        ),
        training=TrainingSettings(compile_dir=str(workdir / "pytensor"), **(training or {})),
    )


def spark_training(
    master: str, workdir: Path, markets: int, only: list[str] | None = None, training: dict | None = None
) -> dict:
    """Run the training job on ``master``; returns the timing and convergence figures."""
    from pipelines.spark import get_spark
    from pipelines.training.driver import train

    config = raw_config(markets)
    spark = get_spark(f"train-scale-{master}", master)
    report = train(
        spark,
        workdir / "lake",
        brand_configs(config, QualityLimits(min_history_weeks=52)),
        platform_for(workdir, training),
        AS_OF,
        markets=only,
        progress=lambda line: print(line, flush=True),
    )
    runs = report.runs
    converged = (
        (runs.status != "failed") & (runs.divergences == 0) & (runs.max_rhat <= 1.01) & (runs.min_ess_bulk >= 400)
    )
    return {
        "master": master,
        "markets": len(runs),
        "wall_s": round(report.wall_s, 1),
        "seconds_per_market": round(report.wall_s / len(runs), 2),
        "markets_per_minute": round(60 * len(runs) / report.wall_s, 2),
        "compilations": int(runs.compilations.sum()),
        "workers": int(runs.worker.nunique()),
        "all_converged": bool(converged.all()),
        "not_converged": sorted((runs.brand + "/" + runs.market)[~converged]),
        "gate_rejected": sorted((runs.brand + "/" + runs.market)[runs.status == "rejected"]),
        "max_rhat": float(runs.max_rhat.max()),
        "min_ess_bulk": float(runs.min_ess_bulk.min()),
        "divergences": int(runs.divergences.sum()),
        "fit_s_median": round(float(runs.fit_seconds.median()), 2),
        "summary_s_median": round(float(runs.summary_seconds.median()), 2),
        "tracking_s_median": round(float(runs.tracking_seconds.median()), 2),
        "batch_size": platform_for(workdir, training).training.batch_size,
        "sampler": platform_for(workdir, training).training.sampler,
        "target_accept": platform_for(workdir, training).training.target_accept,
    }


def naive_loop(workdir: Path, markets: int) -> float:
    """Seconds per market of a plain loop: fresh PyMC model and pm.sample per market (same draws, cores=2)."""
    import pymc as pm
    from pyspark.sql import SparkSession

    from mmm_models.data import ScalingFactors, build_design, validate_market_frame
    from mmm_models.model import build_model
    from pipelines.data.model_input import market_frame

    spark = SparkSession.getActiveSession()
    rows = spark.read.format("delta").load(str(workdir / "lake" / "gold" / "model_input")).toPandas()
    brands = brand_configs(raw_config(markets))
    keys = sorted({(r.brand, r.market) for r in rows.itertuples()})[:NAIVE_MARKETS]
    sampler = platform_for(workdir).training
    start = time.perf_counter()
    for brand, market in keys:
        spec = brands[brand].spec()
        frame = market_frame(
            rows[(rows.brand == brand) & (rows.market == market)], brands[brand], spec.date_column, spec.target.column
        )
        data = validate_market_frame(spec, frame, allow_target_gaps=True)
        design = build_design(spec, data, ScalingFactors.compute(spec, data), bucket=None)
        with build_model(spec, design):
            pm.sample(
                draws=sampler.draws,
                tune=sampler.tune,
                chains=sampler.chains,
                target_accept=sampler.target_accept,
                cores=2,
                random_seed=0,
                progressbar=False,
            )
        print(f"  naive loop: {brand}/{market} done at {time.perf_counter() - start:.0f} s", flush=True)
    return (time.perf_counter() - start) / len(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=40)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mmm_train_scale"))
    parser.add_argument("--sampler", choices=["nutpie", "numpyro"], help="default: the platform's")
    parser.add_argument("--batch-size", type=int, help="markets per compiled call (numpyro); default: the platform's")
    parser.add_argument("--target-accept", type=float, help="the sampler's acceptance target; default: the platform's")
    parser.add_argument("--no-compare", action="store_true", help="skip the naive loop and the local[1]/local[2] runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: "<master>" for the scaling runs
    args = parser.parse_args()
    chosen = (("sampler", args.sampler), ("batch_size", args.batch_size), ("target_accept", args.target_accept))
    training = {k: v for k, v in chosen if v is not None}
    if args.child:
        only = [f"{b}/{m}" for b, ms in raw_config(args.markets).markets.items() for m in ms][:SCALING_MARKETS]
        scratch = args.workdir / f"scaling-{args.child}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        (scratch / "lake").symlink_to(args.workdir / "lake")
        print(json.dumps(spark_training(args.child, scratch, args.markets, only, training)))
        return

    from pipelines.data.run import run_pipeline
    from pipelines.spark import get_spark

    shutil.rmtree(args.workdir, ignore_errors=True)
    config = raw_config(args.markets)
    landing = generate_raw_landing(args.workdir / "landing", config)
    spark = get_spark("train-scale", "local[2]")
    run_pipeline(
        spark, landing.folder, args.workdir / "lake", brand_configs(config, QualityLimits(min_history_weeks=52)), AS_OF
    )
    result = spark_training("local[2]", args.workdir, args.markets, training=training)
    print(json.dumps(result), flush=True)
    keys = ("markets", "wall_s", "seconds_per_market", "compilations", "workers", "all_converged", "not_converged")
    summary = {k: result[k] for k in keys}
    summary.update(
        {k: result[k] for k in ("gate_rejected", "max_rhat", "min_ess_bulk", "divergences", "fit_s_median")},
        summary_s_median=result["summary_s_median"],
        tracking_s_median=result["tracking_s_median"],
        batch_size=result["batch_size"],
        sampler=result["sampler"],
        target_accept=result["target_accept"],
    )
    if args.no_compare:
        print(json.dumps(summary))
        return
    naive = naive_loop(args.workdir, args.markets)
    spark.stop()
    scaling = {}
    for master in ("local[1]", "local[2]"):
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                master,
                "--markets",
                str(args.markets),
                "--workdir",
                str(args.workdir),
                *(["--sampler", args.sampler] if args.sampler else []),
                *(["--batch-size", str(args.batch_size)] if args.batch_size else []),
                *(["--target-accept", str(args.target_accept)] if args.target_accept else []),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        scaling[master] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(scaling[master]), flush=True)
    summary.update(
        naive_seconds_per_market=round(naive, 1),
        speedup_vs_naive=round(naive / result["seconds_per_market"], 1),
        compilations_per_worker=round(result["compilations"] / result["workers"], 2),
        markets_per_minute={m: found["markets_per_minute"] for m, found in scaling.items()},
        core_scaling=round(scaling["local[2]"]["markets_per_minute"] / scaling["local[1]"]["markets_per_minute"], 2),
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
