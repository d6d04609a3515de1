"""Training end to end on real and simulated data: raw files -> pipeline -> train -> registry -> predict.

The data: ``../shared/data/pymc_marketing/mmm_multidimensional_example.csv`` as one brand (``pymc``)
with its 2 geos as markets, plus 12 simulated markets over 2 brands (156 weeks each). Every group is
fitted with the platform's default sampler settings (4 chains x 1000 draws) on ``local[2]``, must
converge (0 divergences, R-hat <= 1.01, bulk ESS >= 400), is registered and promoted, and the
champion of each real geo then predicts a spend plan in a fresh process.

    python benchmarks/train_end_to_end.py [--workdir /tmp/mmm_train_e2e]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.config import BrandConfig, MlflowSettings, PlatformConfig, QualityLimits
from pipelines.data.synthetic_raw import RawDataConfig, brand_configs, generate_raw_landing

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "pymc_marketing"
AS_OF = dt.date(2026, 1, 5)


def real_brand_landing(landing: Path) -> BrandConfig:
    """The multidimensional example as raw weekly files of brand ``pymc`` (one dated row per week)."""
    data = pd.read_csv(SHARED / "mmm_multidimensional_example.csv")
    data = data.assign(brand="pymc", market=data["geo"])
    spend = data.melt(["date", "brand", "market"], ["x1", "x2"], "channel", "spend").assign(campaign="all")
    spend[["date", "brand", "market", "channel", "campaign", "spend"]].to_csv(
        landing / "spend" / "pymc.csv", index=False
    )
    data.rename(columns={"y": "revenue"})[["date", "brand", "market", "revenue"]].to_csv(
        landing / "sales" / "pymc.csv", index=False
    )
    controls = data.melt(["date", "brand", "market"], ["event_1", "event_2"], "control", "value")
    controls.to_csv(landing / "controls" / "pymc.csv", index=False)
    return BrandConfig(
        brand="pymc",
        taxonomy={"x1": ["x1"], "x2": ["x2"]},
        controls=["event_1", "event_2"],
        granularity="weekly",
        model_spec="models/mmm_multidimensional.yaml",
        quality=QualityLimits(min_history_weeks=52),
    )


def predict_in_fresh_process(tracking_uri: str, name: str, plan: pd.DataFrame) -> pd.DataFrame:
    script = (
        "import sys, mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri({tracking_uri!r})\n"
        "plan = pd.read_json(sys.stdin, dtype={'week_start': str})\n"
        "plan = plan.astype({c: float for c in plan.columns if c != 'week_start'})\n"
        f"out = mlflow.pyfunc.load_model('models:/{name}@champion').predict(plan)\n"
        "print(out.to_json(orient='records', date_format='iso'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], input=plan.to_json(), capture_output=True, text=True, check=True
    )
    return pd.read_json(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mmm_train_e2e"))
    args = parser.parse_args()

    from mlflow import MlflowClient

    from pipelines.data.run import run_pipeline
    from pipelines.registry.promotion import promote
    from pipelines.spark import get_spark
    from pipelines.training.driver import train

    shutil.rmtree(args.workdir, ignore_errors=True)
    landing, lake = args.workdir / "landing", args.workdir / "lake"
    simulated = RawDataConfig(
        markets={"acme": [f"S{i}" for i in range(6)], "bolt": [f"S{i}" for i in range(6)]}, weeks=156
    )
    truth = generate_raw_landing(landing, simulated)
    brands = {**brand_configs(simulated, QualityLimits(min_history_weeks=52)), "pymc": real_brand_landing(landing)}
    platform = PlatformConfig(
        mlflow=MlflowSettings(
            tracking_uri=f"sqlite:///{args.workdir}/mlflow.db", artifact_location=str(args.workdir / "art")
        )
    )
    spark = get_spark("train-e2e", "local[2]")
    pipeline = run_pipeline(spark, landing, lake, brands, AS_OF)
    print(pipeline.summary())
    report = train(spark, lake, brands, platform, AS_OF)
    print(report.table())
    promotions = promote(spark, lake, platform, report.training_run_id)
    runs = report.runs
    converged = (runs.divergences == 0) & (runs.max_rhat <= 1.01) & (runs.min_ess_bulk >= 400)

    client = MlflowClient(platform.mlflow.tracking_uri)
    champions = {}
    for p in promotions:
        try:
            champions[f"{p.brand}/{p.market}"] = client.get_model_version_by_alias(p.model_name, "champion").version
        except Exception:  # no champion: reported below
            champions[f"{p.brand}/{p.market}"] = None

    summaries = spark.read.format("delta").load(str(lake / "models" / "posterior_summaries")).toPandas()
    roas = summaries[summaries.metric == "roas"]
    print("\nROAS per market and channel (mean, 90% HDI):")
    for r in roas.sort_values(["brand", "market", "channel"]).itertuples():
        true = truth.roas.get((r.brand, r.market), {}).get(r.channel)
        shown = f"  true {true:.3f}" if true is not None else ""
        print(f"  {r.brand}/{r.market} {r.channel:>7}: {r.mean:.3f} [{r.hdi_low:.3f}, {r.hdi_high:.3f}]{shown}")
    simulated_roas = roas[roas.brand != "pymc"].assign(
        true=lambda f: [truth.roas[(b, m)][c] for b, m, c in zip(f.brand, f.market, f.channel, strict=True)]
    )
    covered = (simulated_roas.hdi_low <= simulated_roas.true) & (simulated_roas.true <= simulated_roas.hdi_high)

    predictions = {}
    for geo in ("geo_a", "geo_b"):
        name = runs.query(f"brand == 'pymc' and market == '{geo}'").model_name.iloc[0]
        plan = pd.DataFrame(
            {
                "week_start": ["2025-06-23", "2025-06-30", "2025-07-07"],
                "x1": 5000.0,
                "x2": 3000.0,
                "event_1": 0.0,
                "event_2": 0.0,
            }
        )
        out = predict_in_fresh_process(platform.mlflow.tracking_uri, name, plan)
        print(f"\n{name}@champion in a fresh process:\n{out.to_string(index=False)}")
        predictions[geo] = bool(len(out) == 3 and (out["q0.05"] < out["q0.95"]).all())

    summary = {
        "markets": len(runs),
        "succeeded": int((runs.status == "success").sum()),
        "all_converged": bool(converged.all()),
        "max_rhat": round(float(runs.max_rhat.max()), 4),
        "min_ess_bulk": round(float(runs.min_ess_bulk.min())),
        "divergences": int(runs.divergences.sum()),
        "registered": int(runs.model_version.notna().sum()),
        "champions": sum(v is not None for v in champions.values()),
        "fresh_process_predicts": predictions,
        "simulated_roas_coverage_90": round(float(covered.mean()), 3),
        "simulated_roas_median_abs_error": round(
            float(np.median(np.abs(simulated_roas["mean"] / simulated_roas.true - 1))), 3
        ),
        "train_wall_s": round(report.wall_s, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
