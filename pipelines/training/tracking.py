"""A market's MLflow child run under the training job's parent run: params, metrics, summary tables,
plots, the saved model, and the pyfunc model registered as a new version with its gate tags.

A failed market still leaves a FAILED child run carrying its error.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmm_models.fitted import FittedModel
from mmm_models.outputs import write_outputs
from pipelines.config import TrainingSettings
from pipelines.registry.store import RegistryStore, model_name
from pipelines.training.contract import TrainJob
from pipelines.training.gate import GateCheck, failures

CURVE_DRAWS = 250  # posterior draws behind the logged response and adstock curves


@dataclass(frozen=True)
class PooledWith:
    """What a market's run records of the brand model it is a slice of."""

    markets: list[str]
    brand_summary: pd.DataFrame


def track(
    model: FittedModel,
    diagnostics: dict,
    checks: list[GateCheck],
    summary: pd.DataFrame,
    training: TrainingSettings,
    job: TrainJob,
    brand: str,
    market: str,
    pooled_with: PooledWith | None = None,
) -> tuple[str, str]:
    """Child run under the job's parent run: params, metrics, artifacts, and the pyfunc model as a new version.

    A market of a brand model also records the markets it was pooled with and the brand-level
    parameters (``outputs/brand_summary.csv``).
    """
    from pipelines.registry.pyfunc_model import ARTIFACT_KEY, MarketModel, runtime_requirements, signature

    store = RegistryStore(job.tracking_uri, job.registry_uri)
    tags = {"mlflow.parentRunId": job.training_run_id, "brand": brand, "market": market, "run_date": job.run_date}
    run_id = store.create_run(job.experiment_id, f"{brand}/{market}", tags)
    data = model.data
    params = {
        "spec": model.spec.name,
        "structure": model.spec.structure_key()[:250],
        "data_first_week": str(data[model.spec.date_column].min().date()),
        "data_last_week": str(data[model.spec.date_column].max().date()),
        "weeks": len(data),
        "code_version": job.code_version,
        **{f"sampler.{k}": v for k, v in training.model_dump().items()},
    }
    if pooled_with is not None:
        params["pooled_markets"] = ",".join(pooled_with.markets)[:6000]
    metrics = {k: float(v) for k, v in diagnostics.items() if v is not None}
    metrics.update({f"timing.{k}": float(v) for k, v in model.timings.items()})
    metrics.update({f"gate.{c.name}.passed": float(c.passed) for c in checks})
    store.log_batch(run_id, params, metrics)
    name = model_name(job.model_prefix, brand, market)
    with tempfile.TemporaryDirectory() as folder:
        outputs = Path(folder) / "outputs"
        write_outputs(model, summary, outputs, curve_draws=CURVE_DRAWS)
        (outputs / "gate.json").write_text(json.dumps([c.to_dict() for c in checks], indent=2))
        if pooled_with is not None:
            pooled_with.brand_summary.to_csv(outputs / "brand_summary.csv")
        store.log_artifacts(run_id, outputs, "outputs")
        spec = model.spec
        example = (
            data.tail(4)
            .drop(columns=[spec.target.column])
            .assign(**{spec.date_column: lambda f: f[spec.date_column].dt.strftime("%Y-%m-%d")})
        )
        version = store.register_pyfunc(
            run_id,
            name,
            python_model=MarketModel(),
            artifacts={ARTIFACT_KEY: str(outputs / "model")},
            signature=signature(spec.channel_names, [c.name for c in spec.controls], spec.date_column),
            input_example=example,
            pip_requirements=runtime_requirements(),  # stated, so MLflow does not load the model to infer them
        )
    version_tags = {"brand": brand, "market": market, "training_run_id": job.training_run_id, "run_date": job.run_date}
    version_tags.update({f"gate.{c.name}": c.describe() for c in checks})
    version_tags["gate.passed"] = str(not failures(checks)).lower()
    store.set_version_tags(name, version, version_tags)
    store.terminate(run_id, "FINISHED")
    return run_id, version


def track_failure(job: TrainJob, brand: str, market: str, error: str) -> None:
    """A failed market still leaves a FAILED child run with the error, when the store is reachable."""
    try:
        store = RegistryStore(job.tracking_uri, job.registry_uri)
        tags = {"mlflow.parentRunId": job.training_run_id, "brand": brand, "market": market, "error": error[:5000]}
        store.terminate(store.create_run(job.experiment_id, f"{brand}/{market}", tags), "FAILED")
    except Exception:  # the status row carries the error either way
        pass
