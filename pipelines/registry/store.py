"""The one door to MLflow: the store's URIs (resolved once), one client, the experiment, runs, the
registry's aliases, a run's saved model, and retries.

Local default: a SQLite tracking and registry store and an artifact folder under the project's
``outputs/``. Several workers write to that store at once, and SQLite answers "database is locked"
under contention; remote servers have their own hiccups. Every call therefore goes through
``with_retries`` (tenacity): exponential backoff with jitter up to an overall deadline, on transient
errors only (connection errors and timeouts, HTTP 429 and 5xx, "database is locked"); a permanent
error (a missing resource, an invalid name) raises at once.

Credentials never sit in a URI: ``from_settings`` refuses one with a password (MLflow reads
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` or a Databricks profile from the
environment), and ``redact`` masks any that slips through before a URI is printed.

No other module builds an MLflow client or sets MLflow's URIs: the driver builds a ``RegistryStore``
from the platform's ``MlflowSettings``; a Spark worker rebuilds it from the plain URIs of its
``TrainJob`` (``RegistryStore(job.tracking_uri, job.registry_uri)``).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from pipelines.config import MlflowSettings, is_uri, project_dir

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from mmm_models.fitted import FittedModel

log = logging.getLogger(__name__)
T = TypeVar("T")

LEGACY_RUN_MODEL_ARTIFACT = "outputs/model"  # where runs logged before the saved model was stored once have it


# MLflow error codes worth another try: the server (or the SQL store behind it) is busy, overloaded or
# briefly broken (MLflow's SQL store reports a SQLAlchemy OperationalError as TEMPORARILY_UNAVAILABLE).
TRANSIENT_ERROR_CODES = frozenset(
    {"TEMPORARILY_UNAVAILABLE", "RESOURCE_EXHAUSTED", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED"}
)
# 5xx codes that a retry cannot fix.
PERMANENT_5XX_CODES = frozenset({"NOT_IMPLEMENTED", "INVALID_STATE", "DATA_LOSS"})
# MLflow's REST client on a server answer that is not JSON (a proxy's 502, say): a bare INTERNAL_ERROR.
_HTTP_STATUS_MESSAGE = re.compile(r"failed with error code (\d{3}) != ")
DEFAULT_DEADLINE_S = 60.0


def _connection_errors() -> tuple[type[BaseException], ...]:
    import requests
    import urllib3

    return (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.RetryError,  # the REST client's own retries on 429/5xx ran out
        urllib3.exceptions.HTTPError,
        ConnectionError,
        TimeoutError,
    )


def _transient_status(status: int, error_code: str | None = None) -> bool:
    return (status == 429 or status >= 500) and status != 501 and error_code not in PERMANENT_5XX_CODES


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` can clear by itself, so that trying again makes sense.

    Transient: connection errors and timeouts (requests, urllib3, the built-in ones), "database is locked"
    (SQLite under contention, as SQLAlchemy's OperationalError or MLflow's wrap of it), a server's HTTP 429 or
    5xx (``RestException``, or MLflow's error on a non-JSON answer), and the MLflow codes TEMPORARILY_UNAVAILABLE,
    RESOURCE_EXHAUSTED, REQUEST_LIMIT_EXCEEDED and DEADLINE_EXCEEDED. MLflow raises a bare INTERNAL_ERROR for
    local faults too (a model it cannot find, a bad argument), so that one counts as transient only when raised
    while handling a connection error, or when it reports a server's 5xx. Anything else is permanent.
    """
    from mlflow.exceptions import MlflowException, RestException

    connection = _connection_errors()
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if "database is locked" in str(error):
            return True
        if isinstance(error, RestException):  # the server's answer
            return error.error_code in TRANSIENT_ERROR_CODES or _transient_status(
                error.get_http_status_code(), error.error_code
            )
        if isinstance(error, MlflowException) and error.error_code != "INTERNAL_ERROR":
            return error.error_code in TRANSIENT_ERROR_CODES or _transient_status(
                error.get_http_status_code(), error.error_code
            )
        if isinstance(error, MlflowException):  # a bare INTERNAL_ERROR: the server's status, or what it wraps
            if (status := _HTTP_STATUS_MESSAGE.search(error.message)) and _transient_status(int(status[1])):
                return True
            error = error.__cause__ or error.__context__  # MLflow's REST client wraps without ``from``
            continue
        if isinstance(error, connection):
            return True
        if getattr(error, "connection_invalidated", False):  # SQLAlchemy: the database connection dropped
            return True
        error = error.__cause__
    return False


def with_retries(
    call: Callable[[], T],
    what: str,
    deadline: float = DEFAULT_DEADLINE_S,
    base_delay: float = 0.5,
    max_delay: float = 10.0,
) -> T:
    """``call()``; on a transient error wait about 0.5, 1, 2, 4... s (at most ``max_delay``, plus jitter) and try
    again, until it succeeds or the next wait would pass ``deadline`` seconds since the first try; then the last
    error is raised. A permanent error (see ``is_transient``) is raised at once.
    """

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (%s); retry %d in %.1f s", what, error, state.attempt_number, wait)

    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_before_delay(deadline),
        wait=wait_exponential(multiplier=base_delay, max=max_delay) + wait_random(0, base_delay),
        before_sleep=log_retry,
        reraise=True,
    )
    return retrying(call)


SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "secret", "token", "key", "signature", "sig", "credential")


def _has_password(uri: str) -> bool:
    try:
        return urlsplit(uri).password is not None
    except ValueError:  # not a URL (a bad port, say): nothing to find
        return False


def refuse_credentials(uri: str, where: str = "the MLflow URI") -> None:
    """Raise ``ValueError`` if ``uri`` carries a password (``https://user:secret@host``, ``postgresql://u:pw@h/db``)."""
    if _has_password(uri):
        raise ValueError(
            f"{where} ({redact(uri)}) contains a password. Keep credentials out of the configuration: give the "
            "URI without them and set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
            "in the environment (PGPASSWORD or ~/.pgpass for a PostgreSQL store), or on Databricks read them from a "
            "secret scope (dbutils.secrets) into those variables."
        )


def redact(uri: str) -> str:
    """``uri`` fit to print: a password in it, and query values that look secret (``token=``...), shown as ``***``."""
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:
        return uri
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(any(word in k.lower() for word in SECRET_QUERY_KEYS) for k, _ in pairs):
            masked = [(k, "***" if any(w in k.lower() for w in SECRET_QUERY_KEYS) else v) for k, v in pairs]
            query = urlencode(masked, safe="*")
    if netloc == parts.netloc and query == parts.query:
        return uri
    return urlunsplit(parts._replace(netloc=netloc, query=query))


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
    def from_settings(cls, settings: MlflowSettings, base: Path | None = None) -> RegistryStore:
        """The store of ``settings``, local paths made absolute against ``base`` (default: the project folder;
        ``PlatformConfig.from_yaml`` has made a file's paths absolute already), a SQLite file's folder created."""
        base = base or project_dir()

        def absolute(uri: str) -> str:
            if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
                return f"sqlite:///{(base / uri.removeprefix('sqlite:///')).resolve()}"
            return uri

        for field in ("tracking_uri", "registry_uri", "artifact_location"):
            refuse_credentials(getattr(settings, field) or "", f"mlflow.{field}")
        tracking = absolute(settings.tracking_uri)
        registry = absolute(settings.registry_uri) if settings.registry_uri else tracking
        artifacts = settings.artifact_location
        if not is_uri(artifacts):
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

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str) -> None:
        """One file as an artifact of a run (a finished run too: a report added after training); a second call
        with the same file name replaces it."""
        with_retries(lambda: self.client.log_artifact(run_id, str(path), artifact_path), "log artifact")

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

        The saved model is the artifact of the pyfunc model the run logged (its only copy); a run logged
        before it was stored once has it as the run artifact ``outputs/model`` instead. Goes through the
        run and its logged model, not ``models:/``, so it needs no global MLflow URIs.
        """
        import mlflow

        from mmm_models import persistence

        with tempfile.TemporaryDirectory() as folder:
            where = self._saved_model_uri(run_id, folder)
            local = with_retries(
                lambda: mlflow.artifacts.download_artifacts(
                    artifact_uri=where, dst_path=folder, tracking_uri=self.tracking_uri
                ),
                "download model",
            )
            return persistence.load(local)

    def _saved_model_uri(self, run_id: str, folder: str) -> str:
        """Where the run's saved model lies: the pyfunc model's artifact (its path read from the model's
        ``MLmodel``, downloaded into ``folder``), else the run's ``outputs/model`` artifact."""
        import mlflow
        from mlflow.models import Model

        from pipelines.registry.pyfunc_model import ARTIFACT_KEY

        run = with_retries(lambda: self.client.get_run(run_id), f"get run {run_id}")
        logged = run.outputs.model_outputs if run.outputs else []
        if not logged:
            return f"{run.info.artifact_uri.rstrip('/')}/{LEGACY_RUN_MODEL_ARTIFACT}"
        model = with_retries(lambda: self.client.get_logged_model(logged[-1].model_id), "get the logged model")
        location = model.artifact_location.rstrip("/")
        description = with_retries(
            lambda: mlflow.artifacts.download_artifacts(
                artifact_uri=f"{location}/MLmodel", dst_path=folder, tracking_uri=self.tracking_uri
            ),
            "download MLmodel",
        )
        artifacts = Model.load(description).flavors["python_function"]["artifacts"]
        return f"{location}/{artifacts[ARTIFACT_KEY]['path']}"

    # --- registry: versions and aliases ---

    def register_pyfunc(
        self, run_id: str, name: str, tags: Mapping[str, str] | None = None, **log_model_args: Any
    ) -> str:
        """Log a pyfunc model as artifact ``model`` of run ``run_id`` and register it as a new version of ``name``
        with ``tags`` (set in the same call that creates the version).

        ``log_model_args`` go to ``mlflow.pyfunc.log_model``. Give ``python_model`` as the path of a code file
        that calls ``mlflow.models.set_model`` ("models from code", e.g. ``MarketModel.code_path()``): then
        nothing is pickled, and loading the model never unpickles. (A ``PythonModel`` instance is still taken,
        and cloudpickled, for throwaway models.) MLflow's fluent API reads the global URIs, so they are set for
        this call only. Returns the new version.

        Registering is not idempotent, so the steps are retried apart: the log (a retry at worst leaves an
        unregistered logged model behind), the registered model (created unless it exists), then the version,
        where a retry first looks for a version of ``name`` from this run (the failed try may have created it
        and lost the answer) and creates one only when there is none.
        """
        import mlflow
        from mlflow.exceptions import MlflowException

        def log_model():
            with _global_uris(self.tracking_uri, self.registry_uri), mlflow.start_run(run_id=run_id):
                return mlflow.pyfunc.log_model(name="model", **log_model_args)

        info = with_retries(log_model, f"log model {name}")

        def ensure_model() -> None:
            try:
                self.client.create_registered_model(name)
            except MlflowException as exc:
                if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                    raise

        with_retries(ensure_model, f"create registered model {name}")
        tries = 0

        def create_version() -> str:
            nonlocal tries
            tries += 1
            if tries > 1 and (existing := self._run_version(name, run_id)) is not None:
                return existing
            # MLflow's SQL registry resolves ``models:/<id>`` through the global tracking URI
            with _global_uris(self.tracking_uri, self.registry_uri):
                created = self.client.create_model_version(
                    name, info.model_uri, run_id=run_id, tags=dict(tags or {}), model_id=info.model_id
                )
            return str(created.version)

        return with_retries(create_version, f"register {name}")

    def _run_version(self, name: str, run_id: str) -> str | None:
        """The newest version of ``name`` from run ``run_id``, if any (by run only: Unity Catalog takes one filter)."""
        found = self.client.search_model_versions(f"run_id = '{run_id}'")
        versions = [int(v.version) for v in found if v.name == name]
        return str(max(versions)) if versions else None

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            with_retries(
                lambda k=key, v=value: self.client.set_model_version_tag(name, version, k, v), f"tag {name} v{version}"
            )

    def market_run_id(self, name: str, version: str, brand: str, market: str) -> str:
        """The run behind ``version`` of ``name``, once its ``brand``/``market`` tags say it models that market.

        A version whose tags name another market (a name collision, a hand-made alias) is refused, so
        monitoring and recommendations never act on another market's model.
        """
        found = with_retries(lambda: self.client.get_model_version(name, version), f"get {name} v{version}")
        tagged = ((found.tags or {}).get("brand"), (found.tags or {}).get("market"))
        if tagged != (brand, market):
            raise ValueError(f"{name} v{version} is tagged {tagged[0]}/{tagged[1]}, not {brand}/{market}: not used")
        return found.run_id

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
