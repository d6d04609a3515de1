"""Training on real Spark and MLflow: one status row per market whatever happens, registry versions and
aliases only through the gate, the champion predicting in a fresh process, and an idempotent rerun."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

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
from pipelines.registry.promotion import promote
from pipelines.registry.store import RegistryStore
from pipelines.tables import MODEL_RUNS, POSTERIOR_SUMMARIES
from pipelines.training.driver import train
from pipelines.training.worker import TEST_FAULT_VARIABLE
from tests.conftest import LENIENT_REVIEW

pytestmark = pytest.mark.slow
AS_OF = dt.date(2024, 6, 3)
# Short chains keep the test quick, so the gate is loosened to match: R-hat of 2 chains x 300 draws
# scatters around 1.02 even when converged, and ESS 400 needs about 4 x 1000 draws.
# numpyro, not the platform's nutpie: its compile is ~10 s instead of ~50 s per worker, and the sampler
# makes no difference to what these tests check (the samplers themselves: tests/mmm_models/test_fitting.py).
# Batches of 2: each brand's two markets share one compiled call (acme/FR's failure inside its batch included).
TRAINING = TrainingSettings(
    sampler="numpyro", chains=2, draws=300, tune=300, holdout_weeks=8, target_accept=0.95, batch_size=2
)
GATE = GateSettings(max_rhat=1.06, min_ess_bulk=100, max_divergences=5)


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    """Pipeline + two training runs over 4 markets: acme/FR has a constant target, bolt/DE an impossible gate."""
    folder = tmp_path_factory.mktemp("training")
    config = RawDataConfig(markets={"acme": ["DE", "FR"], "bolt": ["DE", "US"]}, weeks=78, campaigns_per_raw_channel=1)
    landing = generate_raw_landing(folder / "landing", config)
    sales = pd.read_csv(landing.folder / "sales" / "acme_batch1.csv")
    sales.loc[sales.market == "FR", "revenue"] = 100.0  # a constant target: nothing to explain
    sales.to_csv(landing.folder / "sales" / "acme_batch1.csv", index=False)
    # the data review would hold acme/FR back at gold (a constant target); here it goes on, to test the
    # worker's own failure path
    no_exclusion = DataReviewSettings(exclude_constant_target=False)
    brands = brand_configs(config, QualityLimits(min_history_weeks=52, data_review=no_exclusion))
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
    overrides = {"bolt/DE": {"gate": {"max_rhat": 0.5}}}  # no chain can pass this
    lines: list[str] = []
    first = train(spark, root, brands, platform, AS_OF, overrides=overrides, progress=lines.append)
    first_promotions = promote(spark, root, platform, first.training_run_id)
    second = train(spark, root, brands, platform, AS_OF, overrides=overrides, progress=lambda _: None)
    second_promotions = promote(spark, root, platform, second.training_run_id)
    return {
        "root": root,
        "platform": platform,
        "first": first,
        "second": second,
        "promotions": (first_promotions, second_promotions),
        "progress": lines,
        "client": MlflowClient(platform.mlflow.tracking_uri),
    }


def test_each_market_ends_with_one_status_row_and_its_reason(trained) -> None:
    runs = trained["first"].runs.set_index(trained["first"].runs.brand + "/" + trained["first"].runs.market)
    assert runs.loc["acme/FR", "status"] == "failed"
    assert "DataError" in runs.loc["acme/FR", "error"] and "constant" in runs.loc["acme/FR", "error"]
    assert runs.loc["bolt/DE", "status"] == "rejected"
    assert runs.loc["bolt/DE", "error"].startswith("gate: max_rhat FAIL")
    assert list(runs.loc[["acme/DE", "bolt/US"], "status"]) == ["success", "success"]
    assert not trained["first"].all_succeeded
    # the pre-fit data review that gold wrote to market_status, carried into the market's model_runs row
    assert runs.loc["acme/FR", "data_review"].startswith("target_constant: the target is constant (700)")
    assert runs.loc["acme/FR", "data_warnings"] == 1
    # one compilation per worker process and model structure: the two brands share one structure
    first = trained["first"].runs
    assert first.groupby("worker").compilations.sum().max() == 1
    # every market was reported as it finished, by polling its MLflow child run
    # (and a heartbeat line each minute without one)
    assert trained["progress"][0].startswith("training 4 market models in 2 batches")
    finished = [line for line in trained["progress"][1:] if line.startswith("  [")]
    others = [line for line in trained["progress"][1:] if line not in finished]
    assert len(finished) == 4 and all("still fitting" in line for line in others)


def test_tables_hold_both_runs_without_duplicates(spark, trained) -> None:
    root = trained["root"]
    runs = spark.read.format("delta").load(MODEL_RUNS.path(root)).toPandas()
    assert len(runs) == 8 and runs.groupby(["training_run_id", "brand", "market"]).size().max() == 1
    assert set(runs.training_run_id) == {trained["first"].training_run_id, trained["second"].training_run_id}
    summaries = spark.read.format("delta").load(POSTERIOR_SUMMARIES.path(root)).toPandas()
    # 3 fitted markets per run (success + rejected) x 3 channels x 5 metrics
    assert len(summaries) == 2 * 3 * 3 * 5
    roas = summaries[(summaries.metric == "roas") & (summaries.market == "DE") & (summaries.brand == "acme")]
    assert (roas.hdi_low <= roas["mean"]).all() and (roas["mean"] <= roas.hdi_high).all() and (roas.sd > 0).all()


def test_versions_and_aliases_move_only_through_the_gate(trained) -> None:
    client, first, second = trained["client"], trained["first"], trained["second"]
    by_market = {
        (r.brand, r.market): (r.model_name, r.model_version) for r in second.runs.itertuples() if r.status == "success"
    }
    for (_brand, _market), (name, version) in by_market.items():
        assert str(client.get_model_version_by_alias(name, "champion").version) == version == "2"  # the rerun's version
    rejected = second.runs[second.runs.status == "rejected"].iloc[0]
    details = client.get_model_version(rejected.model_name, rejected.model_version)
    assert details.aliases == [] and details.tags["gate.passed"] == "false"
    assert details.tags["gate.max_rhat"].startswith("FAIL")
    with pytest.raises(Exception, match="alias"):
        client.get_model_version_by_alias(rejected.model_name, "champion")
    assert [p.action.split(":")[0] for p in trained["promotions"][0]] == [
        "champion (auto-promoted)",
        "no version",
        "no alias",
        "champion (auto-promoted)",
    ]
    parent = client.get_run(first.training_run_id)
    assert parent.data.metrics["markets_failed"] == 1 and parent.data.metrics["markets_success"] == 2


def test_champion_predicts_a_spend_plan_in_a_fresh_process(trained) -> None:
    name = trained["second"].runs.query("brand == 'acme' and market == 'DE'").model_name.iloc[0]
    plan = pd.DataFrame(
        {
            "week_start": ["2024-07-01", "2024-07-08"],
            "tv": [1000.0, 0.0],
            "search": [500.0, 500.0],
            "social": [0.0, 0.0],
        }
    ).assign(price_index=1.0)
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri({trained['platform'].mlflow.tracking_uri!r})\n"
        f"model = mlflow.pyfunc.load_model('models:/{name}@champion')\n"
        "plan = pd.read_json(sys.stdin, dtype={'week_start': str})\n"
        "out = model.predict(plan.astype({c: float for c in plan.columns if c != 'week_start'}))\n"
        "print(json.dumps(out.drop(columns='week_start').to_dict('records')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], input=plan.to_json(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(rows) == 2
    for row in rows:
        assert row["q0.05"] < row["q0.5"] < row["q0.95"] and row["expected_mean"] > 0


def test_each_version_carries_its_review_and_a_loaded_champion_supports_loo(trained) -> None:
    import arviz as az

    from pipelines.registry.store import RegistryStore

    client, second = trained["client"], trained["second"]
    acme = second.runs.query("brand == 'acme' and market == 'DE'").iloc[0]
    assert acme.review_verdict == "PASS" and json.loads(acme.review)["psis_loo"]["verdict"] == "PASS"
    assert acme.elpd_loo < 0 and acme.p_loo > 0
    # the second run's challenger was compared with the first run's champion, on their shared weeks
    assert pd.notna(acme.elpd_diff_champion)
    assert "shared weeks" in json.loads(acme.review)["versus_champion"]["message"]
    tags = client.get_model_version(acme.model_name, acme.model_version).tags
    assert tags["review.verdict"] == "PASS" and tags["review.informativeness"].startswith("PASS")
    run = client.get_run(acme.mlflow_run_id)
    for channel in ("tv", "search", "social"):
        assert f"roas.{channel}" in run.data.metrics and f"contribution_share.{channel}.hdi_high" in run.data.metrics
    assert run.data.metrics["review.psis_loo.verdict"] == 0
    (dataset,) = run.inputs.dataset_inputs
    # the gold table and its Delta version (MLflow leaves a version 0 out of the source JSON, so the name carries it)
    assert json.loads(dataset.dataset.source)["path"].endswith("gold/model_input")
    assert dataset.dataset.name == f"model_input@v{acme.input_version}"
    assert dataset.dataset.source_type == "delta_table" and dataset.dataset.name.startswith("model_input@v")
    store = RegistryStore.from_settings(trained["platform"].mlflow)
    champion = store.load_run_model(store.market_run_id(acme.model_name, acme.model_version, "acme", "DE"))
    assert az.loo(champion.idata).pareto_k.size == champion.train_weeks


def test_a_review_verdict_holds_the_version_at_challenger(spark, trained) -> None:
    """acme/DE's review asks for an in-sample R^2 no fit reaches: REVIEW, registered, challenger only."""
    platform, client = trained["platform"], trained["client"]
    brands = brand_configs(
        RawDataConfig(markets={"acme": ["DE", "FR"], "bolt": ["DE", "US"]}, weeks=78, campaigns_per_raw_channel=1),
        QualityLimits(min_history_weeks=52),
    )
    overrides = {"acme/DE": {"review": {"min_r2_train": 1.0}}}
    report = train(spark, trained["root"], brands, platform, AS_OF, markets=["acme/DE"], overrides=overrides)
    run = report.runs.iloc[0]
    assert run.status == "success" and run.review_verdict == "REVIEW"
    assert json.loads(run.review)["goodness_of_fit"]["verdict"] == "REVIEW"
    champion = client.get_model_version_by_alias(run.model_name, "champion").version
    (promotion,) = promote(spark, trained["root"], platform, report.training_run_id)
    assert promotion.action.startswith("challenger (model review: goodness_of_fit: in-sample R2")
    assert str(client.get_model_version_by_alias(run.model_name, "challenger").version) == run.model_version
    assert client.get_model_version_by_alias(run.model_name, "champion").version == champion  # unchanged


def test_brand_unit_fits_one_model_per_brand_and_reports_every_market(spark, trained) -> None:
    """unit: brand. bolt's two markets share one hierarchical model (each still gets its own version and
    gate: bolt/DE's impossible gate rejects it); acme/FR's constant target leaves acme/DE alone, so it
    falls back to its independent model instead of failing."""
    platform, brands = _brand_unit(trained)
    lines: list[str] = []
    overrides = {"bolt/DE": {"gate": {"max_rhat": 0.5}}}
    report = train(spark, trained["root"], brands, platform, AS_OF, overrides=overrides, progress=lines.append)
    runs = report.runs.set_index(report.runs.brand + "/" + report.runs.market)
    assert "as 2 brand models" in lines[0]
    assert runs.loc["acme/FR", "status"] == "failed" and "constant" in runs.loc["acme/FR", "error"]
    assert runs.loc["acme/DE", "status"] == "success"
    assert runs.loc["bolt/US", "status"] == "success" and runs.loc["bolt/DE", "status"] == "rejected"
    # bolt's markets came from one sampling run, in one worker, whose runs record the pooling
    assert runs.loc["bolt/DE", "worker"] == runs.loc["bolt/US", "worker"]
    client = trained["client"]
    for key in ("bolt/DE", "bolt/US"):
        version = client.get_model_version(runs.loc[key, "model_name"], runs.loc[key, "model_version"])
        assert str(version.version) == "3" and version.tags["brand"] == "bolt"
        run = client.get_run(runs.loc[key, "mlflow_run_id"])
        assert run.data.params["pooled_markets"] == "DE,US"
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "outputs")}
        assert "outputs/brand_summary.csv" in artifacts
    assert "pooled_markets" not in client.get_run(runs.loc["acme/DE", "mlflow_run_id"]).data.params
    # bolt's chains were sampled in two Spark tasks (`brand_chain_tasks: auto` on local[2]) and merged; a
    # market's slice of the merged posterior, shipped to its finishing task, is smaller than the draws
    sampling = report.brand_sampling["bolt"]
    assert sampling["tasks"] == 2 and 0 < sampling["market_bytes"] < sampling["draws_bytes"]
    posterior = RegistryStore.from_settings(platform.mlflow).load_run_model(runs.loc["bolt/US", "mlflow_run_id"])
    chains = posterior.idata.posterior
    assert list(chains.chain.values) == [0, 1] and chains.sizes["draw"] == TRAINING.draws
    effect = chains["channel_effect"]  # each task sampled with its own seed: not copies
    assert not np.allclose(effect.sel(chain=0).values, effect.sel(chain=1).values)


def test_a_brand_whose_sampling_dies_fails_its_markets_and_the_other_brand_goes_on(spark, trained, monkeypatch) -> None:
    """bolt's sampling tasks lose their fit processes: both bolt markets fail with the reason and a FAILED
    MLflow run each; acme (its one valid market fitted on its own) trains as before."""
    monkeypatch.setenv(TEST_FAULT_VARIABLE, "bolt/DE=exit")
    platform, brands = _brand_unit(trained)
    report = train(spark, trained["root"], brands, platform, AS_OF, progress=lambda _: None)
    runs = report.runs.set_index(report.runs.brand + "/" + report.runs.market)
    assert (runs.loc[["bolt/DE", "bolt/US"], "status"] == "failed").all()
    assert runs.loc["bolt/US", "error"].startswith("worker process died: exit code 1 (chains ")
    assert runs.loc["acme/DE", "status"] == "success"
    store = RegistryStore.from_settings(platform.mlflow)
    children = store.child_runs(store.experiment_id(platform.mlflow.experiment), report.training_run_id)
    failed = {(r.data.tags["brand"], r.data.tags["market"]) for r in children if r.info.status == "FAILED"}
    # each market's failure is tracked: bolt's two, and acme/FR's constant target as in every run of this lake
    assert failed == {("bolt", "DE"), ("bolt", "US"), ("acme", "FR")}


def _brand_unit(trained: dict) -> tuple[PlatformConfig, dict]:
    """The module's lake trained as brand models: the platform with ``unit: brand`` and the two brands."""
    platform = trained["platform"].model_copy(update={"training": TRAINING.model_copy(update={"unit": "brand"})})
    brands = brand_configs(
        RawDataConfig(markets={"acme": ["DE", "FR"], "bolt": ["DE", "US"]}, weeks=78, campaigns_per_raw_channel=1),
        QualityLimits(min_history_weeks=52),
    )
    return platform, brands
