"""What the training driver sends to its Spark workers and what each group returns: plain data, standard
library only, so the driver, the worker entry point and the group's code all import it without a cycle
and without loading PyTensor or JAX."""

from __future__ import annotations

from dataclasses import dataclass, field

RESULT_SCHEMA = (
    "training_run_id string, run_date date, brand string, market string, status string, error string, "
    "gate string, mlflow_run_id string, model_name string, model_version string, weeks int, gap_weeks int, "
    "first_week date, last_week date, max_rhat double, min_ess_bulk double, divergences int, r2_train double, "
    "mape_train double, wape_train double, r2_holdout double, mape_holdout double, wape_holdout double, "
    "fit_seconds double, summary_seconds double, tracking_seconds double, total_seconds double, "
    "compiled boolean, compilations int, worker string, review_verdict string, review string, elpd_loo double, "
    "p_loo double, elpd_diff_champion double, summaries string"
)

RESULT_COLUMNS = [column.split()[0] for column in RESULT_SCHEMA.split(", ")]

# unit brand, stage 1: one row per block of a brand model's chains. ``posterior``: the block's draws and
# sampler statistics as netCDF bytes (``mmm_models.chains.to_bytes``); ``markets``: JSON, market ->
# {"scaling": ScalingFactors dict} or {"error": why it was left out}; ``pooled`` false when fewer than two
# markets are valid (each is then fitted on its own); ``error``: why the block could not be sampled.
SAMPLE_SCHEMA = (
    "brand string, chain_block int, first_chain int, chains int, posterior binary, markets string, "
    "pooled boolean, error string, sampler_seconds double, wall_seconds double, compiled boolean, "
    "compilations int, worker string"
)
SAMPLE_COLUMNS = [column.split()[0] for column in SAMPLE_SCHEMA.split(", ")]

# unit brand, stage 2: what the driver ships to a market's finishing task. ``posterior``: the market's slice
# of the merged chains (its own parameters, the brand-level ones, the sampler statistics) as netCDF bytes;
# ``context``: JSON with ``mode`` (pooled, independent or failed) and what finishing needs (see
# ``pipelines.training.brand_stages``).
SHIPPED_SCHEMA = "task int, brand string, market string, posterior binary, context string"


@dataclass(frozen=True)
class TrainJob:
    """Everything a worker needs, as plain data (it travels pickled to every worker)."""

    training_run_id: str  # the parent MLflow run
    run_date: str
    experiment_id: str
    tracking_uri: str
    registry_uri: str
    model_prefix: str
    compile_dir: str
    code_version: str
    brands: dict[str, dict]  # BrandConfig dumps
    training: dict  # TrainingSettings dump
    gate: dict  # GateSettings dump
    overrides: dict[str, dict] = field(default_factory=dict)  # "brand/market" -> {"training": {...}, "gate": {...}}
    lift_tests: dict[str, list[dict]] = field(default_factory=dict)  # "brand/market" -> silver lift tests, ISO dates
    review: dict = field(default_factory=dict)  # ReviewSettings dump (empty: its defaults)
    # the gold model_input table trained on (its Delta folder, or its Unity Catalog name) and its version: the
    # run's MLflow dataset input
    input_table: str = ""
    input_version: int | None = None
    # TEST HOOK only: the driver's MMM_TEST_FAULT, carried to the fit processes (a Spark session's workers
    # keep the environment of its start); see ``pipelines.training.worker.inject_test_fault``. Empty in production.
    test_fault: str = ""
