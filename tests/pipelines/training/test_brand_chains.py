"""A brand model trained in two Spark stages: a failed sampling fails every market, and each stage's groups get
Spark tasks of their own. The happy path (chains in two tasks, merged, a version per market) is checked by
``test_driver.py``'s brand-unit test, on the lake that module already builds."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import functions as F

from pipelines.config import (
    DataReviewSettings,
    GateSettings,
    MlflowSettings,
    PlatformConfig,
    QualityLimits,
    TrainingSettings,
)
from pipelines.data.run import run_pipeline
from pipelines.data.synthetic_raw import RawDataConfig, brand_configs, generate_raw_landing
from pipelines.registry.store import RegistryStore
from pipelines.training.driver import train
from pipelines.training.tasks import one_task_per_group, partition_keys
from pipelines.training.worker import TEST_FAULT_VARIABLE
from tests.conftest import LENIENT_REVIEW

pytestmark = pytest.mark.slow
AS_OF = dt.date(2024, 6, 3)
# 4 chains in 2 tasks of 2; numpyro for its short compile (as tests/pipelines/training/test_driver.py), short
# chains and a gate loose enough for them: this checks the plumbing, not convergence.
TRAINING = TrainingSettings(
    unit="brand",
    sampler="numpyro",
    chains=4,
    draws=100,
    tune=150,
    holdout_weeks=8,
    target_accept=0.9,
    brand_chain_tasks=2,
)
GATE = GateSettings(max_rhat=2.0, min_ess_bulk=1, max_divergences=1000)


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """One brand of 4 markets, 60 weeks; ES's target is constant (left out of the brand model)."""
    folder = tmp_path_factory.mktemp("brand_chains")
    config = RawDataConfig(markets={"trio": ["DE", "ES", "FR", "IT"]}, weeks=60, campaigns_per_raw_channel=1)
    landing = generate_raw_landing(folder / "landing", config)
    sales_file = next((landing.folder / "sales").glob("*.csv"))
    sales = pd.read_csv(sales_file)
    sales.loc[sales.market == "ES", "revenue"] = 100.0
    sales.to_csv(sales_file, index=False)
    no_exclusion = DataReviewSettings(exclude_constant_target=False)  # the worker's own check leaves ES out
    brands = brand_configs(config, QualityLimits(min_history_weeks=40, data_review=no_exclusion))
    root = folder / "lake"
    run_pipeline(spark, landing.folder, root, brands, AS_OF, progress=lambda _: None)
    platform = PlatformConfig(
        mlflow=MlflowSettings(
            tracking_uri=f"sqlite:///{folder}/mlflow.db", artifact_location=str(folder / "artifacts")
        ),
        training=TRAINING,
        gate=GATE,
        review=LENIENT_REVIEW,
    )
    return {"root": root, "brands": brands, "platform": platform}


def test_a_brand_whose_sampling_fails_fails_every_market_with_the_reason(spark, lake, monkeypatch) -> None:
    monkeypatch.setenv(TEST_FAULT_VARIABLE, "trio/DE=exit")  # the sampling tasks' fit processes die
    report = train(spark, lake["root"], lake["brands"], lake["platform"], AS_OF, progress=lambda _: None)
    runs = report.runs.set_index("market")
    assert (runs.status == "failed").all() and len(runs) == 4
    assert runs.loc["FR", "error"].startswith("worker process died: exit code 1 (chains ")
    store = RegistryStore.from_settings(lake["platform"].mlflow)
    children = store.child_runs(store.experiment_id(lake["platform"].mlflow.experiment), report.training_run_id)
    assert sorted(r.info.status for r in children) == ["FAILED"] * 4  # each market's failure is tracked


def test_partition_keys_put_each_group_in_a_shuffle_partition_of_its_own(spark) -> None:
    keys = partition_keys(spark, 7)
    assert len(set(keys)) == 7
    with one_task_per_group(spark, 7):
        grouped = spark.createDataFrame([(k,) for k in keys], "task int").groupBy("task").count()
        partitions = grouped.select("task", F.spark_partition_id().alias("partition")).collect()
    assert {row.task: row.partition for row in partitions} == {key: index for index, key in enumerate(keys)}
