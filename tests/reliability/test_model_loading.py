"""Loading a registered market model runs no pickle: it is logged as MLflow "models from code" (the code file
``pipelines/registry/pyfunc_model.py`` plus the folder of ``mmm_models.persistence.save``), and it predicts in a
fresh process, from another working directory, exactly what ``mmm_models.prediction.predict`` gives."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from mmm_models import persistence
from mmm_models.fitted import fit
from mmm_models.fitting import FitSettings
from mmm_models.prediction import predict
from mmm_models.simulator import SimulationConfig, simulate_market, simulation_spec
from pipelines.registry import pyfunc_model
from pipelines.registry.pyfunc_model import ARTIFACT_KEY, MarketModel, runtime_requirements, signature
from pipelines.registry.store import RegistryStore, _global_uris

# A plumbing fit, not a statistical one: one short numpyro chain on a small simulated market.
SIMULATION = SimulationConfig(weeks=60, channels=("tv", "search"), l_max=4)
SETTINGS = FitSettings(sampler="numpyro", chains=1, draws=60, tune=60, seed=1)
NAME = "mmm_loading_test"
QUANTILE_COLUMNS = ["expected_mean", "q0.05", "q0.25", "q0.5", "q0.75", "q0.95"]


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A tiny fitted model, registered the way ``pipelines.training.tracking.track`` registers it."""
    root = tmp_path_factory.mktemp("registry")
    spec = simulation_spec(SIMULATION)
    model = fit(spec, simulate_market(SIMULATION, seed=4).data, SETTINGS, market="sim")
    store = RegistryStore(f"sqlite:///{root}/mlflow.db", f"sqlite:///{root}/mlflow.db", (root / "artifacts").as_uri())
    run_id = store.create_run(store.experiment_id("loading"), "sim", {})
    folder = persistence.save(model, root / "outputs" / "model")
    example = model.data.tail(4).drop(columns="y").assign(date=lambda f: f["date"].dt.strftime("%Y-%m-%d"))
    version = store.register_pyfunc(
        run_id,
        NAME,
        python_model=MarketModel.code_path(),
        artifacts={ARTIFACT_KEY: str(folder)},
        signature=signature(spec.channel_names, [c.name for c in spec.controls], spec.date_column),
        input_example=example,
        pip_requirements=runtime_requirements(),
    )
    store.terminate(run_id, "FINISHED")
    return {"root": root, "model": model, "store": store, "run_id": run_id, "version": version}


def plan_after(model, weeks: int = 3) -> pd.DataFrame:
    """A spend plan right after the training data (so carry-over from its last weeks counts), dates as strings."""
    last = model.data["date"].iloc[-1]
    dates = [(last + pd.Timedelta(weeks=i)).strftime("%Y-%m-%d") for i in range(1, weeks + 1)]
    return pd.DataFrame({"date": dates, "tv": [9000.0, 0.0, 4000.0], "search": [3000.0, 3000.0, 0.0]}).assign(
        price_index=1.0
    )


def expected_forecast(model, plan: pd.DataFrame) -> pd.DataFrame:
    """What the pyfunc should return: ``predict`` of the in-memory fit, with the pyfunc's default seed (0)."""
    return predict(model, plan.assign(date=pd.to_datetime(plan["date"])), seed=0).weekly


def downloaded_model(registered, dst: Path) -> Path:
    """The registered version's files (its source is a ``models:/m-...`` URI, resolved through the global URIs)."""
    store = registered["store"]
    source = store.client.get_model_version(NAME, registered["version"]).source
    with _global_uris(store.tracking_uri, store.registry_uri):
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst)))


def test_the_logged_model_is_code_and_data_without_a_pickle(registered, tmp_path) -> None:
    folder = downloaded_model(registered, tmp_path)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    print("logged model files:", files)
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".cloudpickle"))]
    assert "pyfunc_model.py" in files and "artifacts/model/posterior.nc" in files
    flavor = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert Path(flavor["model_code_path"]).name == "pyfunc_model.py" and "python_model" not in flavor
    # the code that runs on load is this project's file, as it was when the model was logged
    assert (folder / "pyfunc_model.py").read_text() == Path(pyfunc_model.__file__).read_text()


def test_a_fresh_process_elsewhere_predicts_what_predict_gives(registered, tmp_path) -> None:
    """``runs:/<run>/model`` loaded in a new interpreter whose working directory is not the project, with MLflow's
    pickle deserialization switched off. The posterior round-trips through NetCDF as float64 and the noise comes
    from the same seed, so the numbers agree to float rounding (rtol 1e-9 allows only summation-order noise)."""
    plan = plan_after(registered["model"])
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri({registered['store'].tracking_uri!r})\n"
        f"model = mlflow.pyfunc.load_model('runs:/{registered['run_id']}/model')\n"
        "plan = pd.DataFrame(json.load(sys.stdin)).astype({'tv': float, 'search': float, 'price_index': float})\n"
        "out = model.predict(plan)\n"
        "print(json.dumps({'dates': out['date'].dt.strftime('%Y-%m-%d').tolist(),\n"
        "                  'columns': out.drop(columns='date').to_dict('list'),\n"
        "                  'pipelines_imported': any(m.split('.')[0] == 'pipelines' for m in sys.modules)}))\n"
    )
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(plan.to_dict("list")),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    expected = expected_forecast(registered["model"], plan)
    assert answer["dates"] == plan["date"].tolist()
    for column in QUANTILE_COLUMNS:
        np.testing.assert_allclose(answer["columns"][column], expected[column], rtol=1e-9, err_msg=column)
    # the model's own copy of the code ran, and it needs mmm_models only, not this project's pipelines package
    assert answer["pipelines_imported"] is False


def test_loading_unpickles_nothing(registered, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    for module in (pickle, cloudpickle):
        monkeypatch.setattr(module, "load", refuse)
        monkeypatch.setattr(module, "loads", refuse)
    store = registered["store"]
    with _global_uris(store.tracking_uri, store.registry_uri):
        loaded = mlflow.pyfunc.load_model(f"runs:/{registered['run_id']}/model")
        by_version = mlflow.pyfunc.load_model(f"models:/{NAME}/{registered['version']}")
    plan = plan_after(registered["model"])
    expected = expected_forecast(registered["model"], plan)
    for model in (loaded, by_version):
        out = model.predict(plan)
        np.testing.assert_allclose(out[QUANTILE_COLUMNS].to_numpy(), expected[QUANTILE_COLUMNS].to_numpy(), rtol=1e-9)
