"""MLflow plumbing shared by the driver and the Spark workers: store URIs, the experiment, retries.

Local default: a SQLite tracking and registry store and an artifact folder under the project's
``outputs/``. Several workers write to that store at once, and SQLite answers "database is locked"
under contention; remote servers have their own hiccups. Every call therefore goes through
``with_retries``: exponential backoff with jitter, on errors that can be transient.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pipelines.config import MlflowSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


def _transient_errors() -> tuple[type[BaseException], ...]:
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import OperationalError

    return (MlflowException, OperationalError, OSError)


def with_retries(call: Callable[[], T], what: str, attempts: int = 6, base_delay: float = 0.5) -> T:
    """``call()``; on a transient error wait 0.5, 1, 2, 4... s (with jitter) and try again."""
    transient = _transient_errors()
    for attempt in range(attempts):
        try:
            return call()
        except transient as exc:
            if attempt == attempts - 1:
                raise
            delay = base_delay * 2**attempt * (1 + 0.25 * random.random())
            log.warning("%s failed (%s); retry %d/%d in %.1f s", what, exc, attempt + 1, attempts - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def resolve_uris(settings: MlflowSettings, base: Path) -> tuple[str, str, str]:
    """Tracking URI, registry URI and artifact location, with local paths made absolute against ``base``."""

    def absolute(uri: str) -> str:
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            return f"sqlite:///{(base / uri.removeprefix('sqlite:///')).resolve()}"
        return uri

    tracking = absolute(settings.tracking_uri)
    registry = absolute(settings.registry_uri) if settings.registry_uri else tracking
    artifacts = settings.artifact_location
    if "://" not in artifacts:
        artifacts = (base / artifacts).resolve().as_uri()
    if tracking.startswith("sqlite:///"):
        Path(tracking.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return tracking, registry, artifacts


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str) -> str:
    """The experiment's id, creating it (with its artifact location) the first time."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    found = with_retries(lambda: client.get_experiment_by_name(name), "get experiment")
    if found is not None:
        return found.experiment_id
    return with_retries(
        lambda: client.create_experiment(name, artifact_location=artifact_location), "create experiment"
    )


def model_name(prefix: str, brand: str, market: str) -> str:
    """Registered model name for one brand x market (Unity Catalog adds catalog.schema. in front)."""
    return f"{prefix}_{brand}_{market}".lower().replace("-", "_").replace(" ", "_")


def alias_version(client, name: str, alias: str) -> str | None:
    """The version behind ``alias`` of registered model ``name``; None when the model or the alias is missing.

    A missing alias is an answer, not an error to retry; other registry errors are retried, then raised.
    """
    from mlflow.exceptions import MlflowException

    def lookup() -> str | None:
        try:
            return client.get_registered_model(name).aliases.get(alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return None
            raise

    version = with_retries(lookup, f"look up {name}@{alias}")
    return None if version is None else str(version)


RUN_MODEL_ARTIFACT = "outputs/model"  # where the training job logs the saved mmm_models model of a run


def load_run_model(tracking_uri: str, run_id: str):  # -> mmm_models.fitted.FittedModel
    """The fitted model saved with a training run's MLflow run (downloaded to a temporary folder, read back).

    Goes through the run, not ``models:/``, so it needs no global MLflow URIs.
    """
    import tempfile

    import mlflow

    from mmm_models import persistence

    with tempfile.TemporaryDirectory() as folder:
        local = with_retries(
            lambda: mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=RUN_MODEL_ARTIFACT, dst_path=folder, tracking_uri=tracking_uri
            ),
            "download model",
        )
        return persistence.load(local)
