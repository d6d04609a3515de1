"""The fitted market model as an MLflow pyfunc: a spend plan in, outcome quantiles out.

``load_model("models:/<name>@champion").predict(plan)`` works in a fresh process: the artifact is the
folder written by ``mmm_models.persistence.save`` (posterior, spec, scaling factors, data), and the
plan's first week may follow the training data directly, in which case the spend of the weeks before
it carries over through adstock.

The model is logged as MLflow "models from code": this file is the model's code (``MarketModel.code_path()``
is what ``log_model`` gets as ``python_model``). MLflow copies it into the logged model and runs it on load
(it ends with ``set_model``), so nothing is unpickled: no ``python_model.pkl`` is written, and the saved
folder holds only NetCDF, YAML and JSON. Loading needs ``mmm_models`` (and what it imports) installed.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature, set_model
from mlflow.types import ColSpec, Schema

ARTIFACT_KEY = "fitted_model"
# What loading and predicting needs besides this project's ``mmm_models`` (pinned to what trained it).
RUNTIME_PACKAGES = ("mlflow", "pymc", "pytensor", "arviz", "numpy", "pandas", "scipy", "xarray", "pydantic", "pyyaml")


def runtime_requirements() -> list[str]:
    """Pinned pip requirements of the pyfunc model; stating them spares MLflow inferring them (a model load)."""
    return [f"{name}=={version(name)}" for name in RUNTIME_PACKAGES]


class MarketModel(mlflow.pyfunc.PythonModel):
    """Loads the saved fitted model once, then predicts weekly outcome quantiles for any plan."""

    @staticmethod
    def code_path() -> str:
        """This file, to log as the model's code (``mlflow.pyfunc.log_model(python_model=...)``)."""
        return str(Path(__file__).resolve())

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        from mmm_models.persistence import load

        self.model = load(context.artifacts[ARTIFACT_KEY])

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        from mmm_models.prediction import predict

        plan = model_input.copy()
        date = self.model.spec.date_column
        plan[date] = pd.to_datetime(plan[date])
        forecast = predict(self.model, plan, seed=int((params or {}).get("seed", 0)))
        return forecast.weekly.rename(columns={"date": date})


def signature(channels: list[str], controls: list[str], date_column: str) -> ModelSignature:
    """Plan columns in (week, spend per channel, controls); weekly mean and quantiles out."""
    inputs = Schema([ColSpec("string", date_column), *(ColSpec("double", c) for c in [*channels, *controls])])
    outputs = Schema(
        [ColSpec("datetime", date_column), ColSpec("double", "expected_mean")]
        + [ColSpec("double", f"q{q:g}") for q in (0.05, 0.25, 0.5, 0.75, 0.95)]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


# What MLflow loads when it runs this file as a logged model's code (also set, harmlessly, on a plain import).
set_model(MarketModel())
