"""A market's run stores its saved model once (the registered model's artifact), with no plots, and
``RegistryStore.load_run_model`` reads it back, as it still reads a run logged before (``outputs/model``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmm_models import analysis, persistence
from mmm_models.diagnostics import diagnose
from mmm_models.fitted import fit
from mmm_models.fitting import FitSettings
from mmm_models.simulator import SimulationConfig, simulate_market, simulation_spec
from pipelines.config import GateSettings, TrainingSettings
from pipelines.names import model_name
from pipelines.registry.store import LEGACY_RUN_MODEL_ARTIFACT, RegistryStore
from pipelines.training.contract import TrainJob
from pipelines.training.gate import evaluate_gate
from pipelines.training.tracking import track

# A plumbing fit, not a statistical one: one short numpyro chain on a small simulated market.
SIMULATION = SimulationConfig(weeks=60, channels=("tv", "search"), l_max=4)
SETTINGS = FitSettings(sampler="numpyro", chains=1, draws=60, tune=60, seed=1)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """A tiny fitted market tracked as the training job tracks it, on a fresh SQLite store."""
    root = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{root}/mlflow.db"
    store = RegistryStore(uri, uri, (root / "artifacts").as_uri())
    experiment = store.experiment_id("tracking")
    job = TrainJob(
        training_run_id=store.create_run(experiment, "training", {}),
        run_date="2025-06-02",
        experiment_id=experiment,
        tracking_uri=uri,
        registry_uri=uri,
        model_prefix="mmm",
        compile_dir=str(root / "pytensor"),
        code_version="test",
        brands={},
        training=TrainingSettings().model_dump(),
        gate=GateSettings().model_dump(),
    )
    model = fit(simulation_spec(SIMULATION), simulate_market(SIMULATION, seed=4).data, SETTINGS, market="sim/M1")
    diagnostics = diagnose(model).to_dict()
    checks = evaluate_gate(diagnostics, GateSettings())
    summary = analysis.channel_summary(model)
    run_id, version = track(model, diagnostics, checks, summary, TrainingSettings(), job, "sim", "M1")
    return {"root": root, "store": store, "model": model, "run_id": run_id, "version": version, "job": job}


def test_the_run_stores_the_model_once_and_no_plots(tracked) -> None:
    files = [p.relative_to(tracked["root"] / "artifacts") for p in (tracked["root"] / "artifacts").rglob("*")]
    assert len([f for f in files if f.name == persistence.POSTERIOR_FILE]) == 1, files
    assert not [f for f in files if f.suffix == ".png"], files
    logged = {a.path for a in tracked["store"].client.list_artifacts(tracked["run_id"], "outputs")}
    assert logged == {f"outputs/{n}" for n in ("channel_summary.csv", "gate.json", "review.json", "result.json")}


def test_the_version_is_created_with_its_gate_tags(tracked) -> None:
    name = model_name("mmm", "sim", "M1")
    tags = tracked["store"].client.get_model_version(name, tracked["version"]).tags
    assert tags["brand"] == "sim" and tags["market"] == "M1"
    assert tags["gate.passed"] in ("true", "false") and "gate.max_rhat" in tags


def test_load_run_model_reads_the_registered_models_copy(tracked) -> None:
    loaded = tracked["store"].load_run_model(tracked["run_id"])
    np.testing.assert_array_equal(
        loaded.idata.posterior["channel_coef"].values, tracked["model"].idata.posterior["channel_coef"].values
    )
    assert loaded.spec == tracked["model"].spec


def test_load_run_model_still_reads_a_run_logged_before(tracked, tmp_path: Path) -> None:
    store, model = tracked["store"], tracked["model"]
    run_id = store.create_run(tracked["job"].experiment_id, "legacy", {})
    folder = persistence.save(model, tmp_path / "model")
    store.log_artifacts(run_id, folder, LEGACY_RUN_MODEL_ARTIFACT)
    loaded = store.load_run_model(run_id)
    np.testing.assert_array_equal(
        loaded.idata.posterior["channel_coef"].values, model.idata.posterior["channel_coef"].values
    )
