"""A market's MLflow child run under the training job's parent run: params, metrics, summary tables,
and the saved model, registered as a pyfunc model version with its gate and review tags.

Only what a reviewer reads is logged while the market holds its worker: metrics, params, tags, the
summary tables (``outputs/``) and the saved model, written once (the registered model's artifact, which
``RegistryStore.load_run_model`` reads back). Plots and curves are rendered from that saved posterior
where they are read: the market's HTML report (``monitoring.report``, logged to the same run), or
``mmm_models.outputs.write_outputs`` on ``load_run_model(run_id)`` for PNG and CSV files.

A failed market still leaves a FAILED child run carrying its error.

Registering is done once per training run and market: ``registered_run`` finds a FINISHED child run of
the same parent and market that already registered its version (a Spark task or a flow step that was
retried), and the group reuses it, with the status row it stored (``outputs/result.json``), instead of
fitting and registering again.

Light at import (no PyTensor, JAX or plotting): the Spark worker records failures with it too.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.config import TrainingSettings
from pipelines.names import model_name
from pipelines.registry.store import RegistryStore, is_transient, with_retries
from pipelines.training.contract import TrainJob
from pipelines.training.gate import GateCheck, failures
from pipelines.training.review import ReviewCheck, worst

if TYPE_CHECKING:
    from mlflow.entities import Run

    from mmm_models.fitted import FittedModel

log = logging.getLogger(__name__)

RESULT_ARTIFACT = "outputs/result.json"  # the market's status row as fitted, for a retry to reuse
TAG_LIMIT = 5000  # characters of a model version tag's value that MLflow stores
VERDICT_LEVEL = {"PASS": 0, "REVIEW": 1, "FAIL": 2}


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
    record: dict | None = None,
    review: list[ReviewCheck] | None = None,
) -> tuple[str, str]:
    """Child run under the job's parent run: params, metrics, artifacts, and the pyfunc model as a new version.

    Metrics include each channel's ROAS and contribution share (mean and 90% HDI) and each review
    check's verdict (0 PASS, 1 REVIEW, 2 FAIL); the run's dataset input is the gold ``model_input``
    Delta table at the version trained on. The version's tags carry the gate's and the review's
    verdicts (``review.verdict``, ``review.<check>``); ``outputs/review.json`` has every check in full.
    A market of a brand model also records the markets it was pooled with and the brand-level
    parameters (``outputs/brand_summary.csv``). ``record`` (the market's status row so far) is saved as
    ``outputs/result.json``, for ``registered_run``.
    """
    review = review or []
    from mmm_models import persistence
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
    metrics.update(channel_metrics(summary))
    metrics.update({f"review.{c.name}.verdict": float(VERDICT_LEVEL[c.verdict]) for c in review})
    store.log_batch(run_id, params, metrics)
    if job.input_table and job.input_version is not None:
        log_model_input(store, run_id, job.input_table, job.input_version)
    name = model_name(job.model_prefix, brand, market)
    version_tags = {"brand": brand, "market": market, "training_run_id": job.training_run_id, "run_date": job.run_date}
    version_tags.update({f"gate.{c.name}": c.describe() for c in checks})
    version_tags["gate.passed"] = str(not failures(checks)).lower()
    if review:
        version_tags.update({f"review.{c.name}": c.describe()[:TAG_LIMIT] for c in review})
        version_tags["review.verdict"] = worst(review)
    with tempfile.TemporaryDirectory() as folder:
        outputs = Path(folder) / "outputs"
        outputs.mkdir()
        summary.to_csv(outputs / "channel_summary.csv", index=False)
        (outputs / "gate.json").write_text(json.dumps([c.to_dict() for c in checks], indent=2))
        (outputs / "review.json").write_text(json.dumps([c.to_dict() for c in review], indent=2, default=_plain))
        (outputs / "result.json").write_text(json.dumps(record or {}, default=_plain))
        if pooled_with is not None:
            pooled_with.brand_summary.to_csv(outputs / "brand_summary.csv")
        store.log_artifacts(run_id, outputs, "outputs")
        saved = persistence.save(model, Path(folder) / "model")  # the one copy: the registered model's artifact
        spec = model.spec
        version = store.register_pyfunc(
            run_id,
            name,
            tags=version_tags,
            python_model=MarketModel.code_path(),  # models from code: the model is not pickled
            artifacts={ARTIFACT_KEY: str(saved)},
            signature=signature(spec.channel_names, [c.name for c in spec.controls], spec.date_column),
            pip_requirements=runtime_requirements(),  # stated, so MLflow does not load the model to infer them
        )
    store.terminate(run_id, "FINISHED")
    return run_id, version


def channel_metrics(summary: pd.DataFrame) -> dict[str, float]:
    """``roas.<channel>`` and ``contribution_share.<channel>`` (posterior mean) with ``.hdi_low`` / ``.hdi_high``,
    from the wide channel summary, so MLflow compares channels across runs and plots them over run dates."""
    found = {}
    for row in summary.itertuples(index=False):
        for metric in ("roas", "contribution_share"):
            for stat, suffix in (("mean", ""), ("hdi_low", ".hdi_low"), ("hdi_high", ".hdi_high")):
                value = getattr(row, f"{metric}_{stat}")
                if pd.notna(value):
                    found[f"{metric}.{row.channel}{suffix}"] = float(value)
    return found


def log_model_input(store: RegistryStore, run_id: str, table: str, version: int) -> None:
    """The run's dataset input: the gold ``model_input`` Delta table (a folder, or a Unity Catalog name, which
    has no ``/``) at ``version`` (``mlflow.log_input``'s entity, logged through the client: the fit process has
    no active fluent run)."""
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    where = {"path": table} if "/" in table else {"delta_table_name": table}
    dataset = MetaDataset(DeltaDatasetSource(**where, delta_table_version=version), name=f"model_input@v{version}")
    entity = DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", "training")])
    with_retries(lambda: store.client.log_inputs(run_id, datasets=[entity]), "log the model_input dataset")


def track_failure(job: TrainJob, brand: str, market: str, error: str) -> None:
    """A failed market still leaves a FAILED child run with the error, when the store is reachable.

    A child run of the market left RUNNING (its process died while tracking it) is the one ended FAILED;
    otherwise a new one is created.
    """
    try:
        store = RegistryStore(job.tracking_uri, job.registry_uri)
        running = _market_runs(store, job, brand, market, "RUNNING")
        if running:
            for run in running:
                with_retries(lambda r=run: store.client.set_tag(r.info.run_id, "error", error[:5000]), "tag failed run")
                store.terminate(run.info.run_id, "FAILED")
            return
        tags = {"mlflow.parentRunId": job.training_run_id, "brand": brand, "market": market, "error": error[:5000]}
        store.terminate(store.create_run(job.experiment_id, f"{brand}/{market}", tags), "FAILED")
    except Exception:  # the status row carries the error either way
        pass


def registered_run(job: TrainJob, brand: str, market: str) -> tuple[str, str, dict] | None:
    """(run id, version, stored status row) of a FINISHED child run of this training run and market that
    registered a version of the market's model; None when there is none (the market is still to fit).

    Looked up through the store's client, with retries: a store that stays unreachable raises.
    """
    store = RegistryStore(job.tracking_uri, job.registry_uri)
    name = model_name(job.model_prefix, brand, market)
    for run in _market_runs(store, job, brand, market, "FINISHED"):
        run_id = run.info.run_id
        versions = with_retries(
            lambda r=run_id: store.client.search_model_versions(f"run_id = '{r}'"), f"find versions of {name}"
        )
        numbers = [int(v.version) for v in versions if v.name == name]
        if not numbers:
            continue
        record = _stored_record(store, run_id)
        if record is not None:
            return run_id, str(max(numbers)), record
    return None


def reuse(result: dict, found: tuple[str, str, dict]) -> None:
    """Fill a market's status row from the run ``registered_run`` found."""
    run_id, version, record = found
    result.update({k: v for k, v in record.items() if k in _RECORDED})
    result.update(mlflow_run_id=run_id, model_version=version)
    log.info("%s/%s: reusing run %s (version %s)", result["brand"], result["market"], run_id, version)


# what a status row keeps of its fit in ``outputs/result.json`` (the rest is the row's own: weeks, worker...)
_RECORDED = (
    "status",
    "error",
    "gate",
    "max_rhat",
    "min_ess_bulk",
    "divergences",
    "r2_train",
    "mape_train",
    "wape_train",
    "r2_holdout",
    "mape_holdout",
    "wape_holdout",
    "fit_seconds",
    "summary_seconds",
    "compiled",
    "review_verdict",
    "review",
    "elpd_loo",
    "p_loo",
    "elpd_diff_champion",
    "summaries",
)


def recorded(result: dict) -> dict:
    """What of ``result`` goes into ``outputs/result.json``."""
    return {k: result.get(k) for k in _RECORDED}


def _market_runs(store: RegistryStore, job: TrainJob, brand: str, market: str, status: str) -> list[Run]:
    """The child runs of the job's parent run for ``brand``/``market`` with ``status``, newest first."""
    query = (
        f"tags.mlflow.parentRunId = '{job.training_run_id}' and tags.brand = '{brand}' "
        f"and tags.market = '{market}' and attributes.status = '{status}'"
    )
    return with_retries(
        lambda: store.client.search_runs(
            [job.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"], max_results=100
        ),
        f"find {status} runs of {brand}/{market}",
    )


def _stored_record(store: RegistryStore, run_id: str) -> dict | None:
    """The status row a run saved (``outputs/result.json``); None when it has none."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            local = with_retries(
                lambda: store.client.download_artifacts(run_id, RESULT_ARTIFACT, folder), "download result.json"
            )
        except Exception as exc:
            if is_transient(exc):  # the store stays unreachable: not a reason to register again
                raise
            return None  # no such artifact (a run from before it was saved): fit anew
        record = json.loads(Path(local).read_text())
    return record or None


def _plain(value: object) -> object:
    """JSON for numpy scalars and the like."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")
