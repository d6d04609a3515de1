"""The one door to MLflow: the store's URIs (resolved once), one client, the experiment, runs, the
registry's aliases, a run's saved model, and retries.

Local default: a SQLite tracking and registry store and an artifact folder under the project's
``outputs/``. Several workers write to that store at once, and SQLite answers "database is locked"
under contention; remote servers have their own hiccups. Every call therefore goes through
``with_retries``: exponential backoff with jitter, on errors that can be transient.

No other module builds an MLflow client or sets MLflow's URIs: the driver builds a ``RegistryStore``
from the platform's ``MlflowSettings``; a Spark worker rebuilds it from the plain URIs of its
``TrainJob`` (``RegistryStore(job.tracking_uri, job.registry_uri)``).
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pipelines.config import PROJECT_ROOT, MlflowSettings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from mmm_models.fitted import FittedModel

log = logging.getLogger(__name__)
T = TypeVar("T")

RUN_MODEL_ARTIFACT = "outputs/model"  # where the training job logs the saved mmm_models model of a run


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


def model_name(prefix: str, brand: str, market: str) -> str:
    """Registered model name for one brand x market (Unity Catalog adds catalog.schema. in front)."""
    return f"{prefix}_{brand}_{market}".lower().replace("-", "_").replace(" ", "_")


@dataclass(frozen=True)
class RegistryStore:
    """An MLflow tracking store and model registry, by their resolved URIs, with one lazily built client.

    ``artifact_location`` is where a new experiment keeps its artifacts; a worker, which only writes to
    an existing experiment, leaves it ``None``. The store is plain data until ``client`` is first used.
    """

    tracking_uri: str
    registry_uri: str
    artifact_location: str | None = None

    @classmethod
    def from_settings(cls, settings: MlflowSettings, base: Path = PROJECT_ROOT) -> RegistryStore:
        """The store of ``settings``, local paths made absolute against ``base`` (a SQLite file's folder created)."""

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
        return cls(tracking, registry, artifacts)

    @cached_property
    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        return MlflowClient(self.tracking_uri, self.registry_uri)

    # --- tracking: the experiment and its runs ---

    def experiment_id(self, name: str) -> str:
        """The experiment's id, creating it (with the store's artifact location) the first time."""
        found = with_retries(lambda: self.client.get_experiment_by_name(name), "get experiment")
        if found is not None:
            return found.experiment_id
        return with_retries(
            lambda: self.client.create_experiment(name, artifact_location=self.artifact_location),
            "create experiment",
        )

    def create_run(self, experiment_id: str, run_name: str, tags: Mapping[str, str]) -> str:
        """A new run's id."""
        run = with_retries(
            lambda: self.client.create_run(experiment_id, run_name=run_name, tags=dict(tags)), f"create run {run_name}"
        )
        return run.info.run_id

    def log_batch(
        self, run_id: str, params: Mapping[str, object] | None = None, metrics: Mapping[str, float] | None = None
    ) -> None:
        """Params (as strings) and metrics (at step 0, now) of a run, in one call."""
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        with_retries(
            lambda: self.client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
                params=[Param(k, str(v)) for k, v in (params or {}).items()],
            ),
            "log params and metrics",
        )

    def log_artifacts(self, run_id: str, folder: str | Path, artifact_path: str) -> None:
        with_retries(lambda: self.client.log_artifacts(run_id, str(folder), artifact_path), "log artifacts")

    def terminate(self, run_id: str, status: str) -> None:
        """End a run as ``FINISHED`` or ``FAILED``."""
        with_retries(lambda: self.client.set_terminated(run_id, status), f"end run ({status})")

    def child_runs(self, experiment_id: str, parent_run_id: str) -> list[Run]:
        """The runs under ``parent_run_id`` (one search, no retries: for best-effort progress)."""
        return self.client.search_runs(
            [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=10000
        )

    def load_run_model(self, run_id: str) -> FittedModel:
        """The fitted model saved with a training run (downloaded to a temporary folder, read back).

        Goes through the run, not ``models:/``, so it needs no global MLflow URIs.
        """
        import mlflow

        from mmm_models import persistence

        with tempfile.TemporaryDirectory() as folder:
            local = with_retries(
                lambda: mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=RUN_MODEL_ARTIFACT, dst_path=folder, tracking_uri=self.tracking_uri
                ),
                "download model",
            )
            return persistence.load(local)

    # --- registry: versions and aliases ---

    def register_pyfunc(self, run_id: str, name: str, **log_model_args: Any) -> str:
        """Log a pyfunc model as artifact ``model`` of run ``run_id`` and register it as a new version of ``name``.

        ``log_model_args`` go to ``mlflow.pyfunc.log_model``. MLflow's fluent API reads the global URIs,
        so they are set for this call only. Returns the new version.
        """
        import mlflow

        def log_model():
            with _global_uris(self.tracking_uri, self.registry_uri), mlflow.start_run(run_id=run_id):
                return mlflow.pyfunc.log_model(name="model", registered_model_name=name, **log_model_args)

        info = with_retries(log_model, f"log and register {name}")
        return str(info.registered_model_version)

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            with_retries(
                lambda k=key, v=value: self.client.set_model_version_tag(name, version, k, v), f"tag {name} v{version}"
            )

    def version_run_id(self, name: str, version: str) -> str:
        """The MLflow run that registered ``version`` of ``name``."""
        return with_retries(lambda: self.client.get_model_version(name, version).run_id, f"get the run of {name}")

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version behind ``alias`` of registered model ``name``; None when the model or the alias is missing.

        A missing alias is an answer, not an error to retry; other registry errors are retried, then raised.
        """
        from mlflow.exceptions import MlflowException

        def lookup() -> str | None:
            try:
                return self.client.get_registered_model(name).aliases.get(alias)
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                    return None
                raise

        version = with_retries(lookup, f"look up {name}@{alias}")
        return None if version is None else str(version)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        with_retries(lambda: self.client.set_registered_model_alias(name, alias, version), f"set {name}@{alias}")


@contextmanager
def _global_uris(tracking_uri: str, registry_uri: str) -> Iterator[None]:
    """MLflow's global tracking and registry URIs set for the block, then put back exactly, unset included.

    (``mlflow.set_registry_uri`` cannot unset, and a set registry URI wins over the one a client would
    derive from its own tracking URI; so the module state and the environment are restored directly.
    Leaked, the URIs sent later clients of the process without an explicit registry to this store.)
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_state
    from mlflow.tracking._tracking_service import utils as tracking_state

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = tracking_state._tracking_uri, registry_state._registry_uri, {n: os.environ.get(n) for n in names}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    try:
        yield
    finally:
        tracking_state._tracking_uri, registry_state._registry_uri = saved[0], saved[1]
        for name, value in saved[2].items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
