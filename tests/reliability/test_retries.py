"""The retry policy of MLflow calls (``pipelines.registry.store.with_retries``): transient errors are retried with
backoff up to a deadline, permanent ones raise at once; and registering a model version stays single under retries."""

from __future__ import annotations

import time

import pytest
import requests
from mlflow.exceptions import MlflowException, RestException
from sqlalchemy.exc import OperationalError

from pipelines.registry.store import RegistryStore, is_transient, with_retries

FAST = {"base_delay": 0.001, "max_delay": 0.01}


def mlflow_error(code: str, message: str = "boom") -> MlflowException:
    from mlflow.protos import databricks_pb2

    return MlflowException(message, error_code=getattr(databricks_pb2, code))


def raised_while_handling(error: BaseException, cause: BaseException) -> BaseException:
    """``error`` as MLflow's REST client raises it: inside ``except`` (so with ``cause`` as its context)."""
    try:
        try:
            raise cause
        except type(cause):
            raise error  # noqa: B904 -- the point: MLflow does not say ``from``
    except type(error) as raised:
        return raised


class Flaky:
    """A callable that raises ``errors`` one by one, then returns ``"done"``; it counts its calls."""

    def __init__(self, *errors: BaseException):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


TRANSIENT = [
    requests.ConnectionError("connection refused"),
    requests.Timeout("read timed out"),
    ConnectionResetError("reset by peer"),
    mlflow_error("TEMPORARILY_UNAVAILABLE"),
    mlflow_error("RESOURCE_EXHAUSTED"),
    mlflow_error("REQUEST_LIMIT_EXCEEDED"),
    raised_while_handling(mlflow_error("INTERNAL_ERROR", "API request failed"), requests.ConnectionError("refused")),
    mlflow_error("INTERNAL_ERROR", "API request to endpoint /runs/create failed with error code 502 != 200"),
    RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "503 from the server"}),
    RestException({"error_code": "INTERNAL_ERROR", "message": "500 from the server"}),
    OperationalError("INSERT INTO runs", {}, Exception("database is locked")),
    mlflow_error("INVALID_STATE", "(sqlite3.OperationalError) database is locked"),
]
PERMANENT = [
    mlflow_error("RESOURCE_DOES_NOT_EXIST"),
    mlflow_error("INVALID_PARAMETER_VALUE", "Invalid name: 'bad/name'"),
    mlflow_error("NOT_IMPLEMENTED"),
    mlflow_error("INTERNAL_ERROR", "Unable to fetch model"),  # MLflow's default code, for local faults too
    raised_while_handling(mlflow_error("INTERNAL_ERROR", "Unable to fetch"), mlflow_error("RESOURCE_DOES_NOT_EXIST")),
    mlflow_error("INTERNAL_ERROR", "API request to endpoint /runs/create failed with error code 501 != 200"),
    RestException({"error_code": "PERMISSION_DENIED", "message": "no"}),
    OperationalError("SELECT", {}, Exception("no such table: runs")),
    FileNotFoundError("model/MLmodel"),
    ValueError("bad model name"),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient_errors_are_classified_transient(error):
    assert is_transient(error)


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_permanent_errors_are_classified_permanent(error):
    assert not is_transient(error)


def test_an_error_raised_from_a_connection_error_is_transient_but_mlflow_codes_decide_for_themselves():
    try:
        try:
            raise requests.ConnectionError("refused")
        except requests.ConnectionError as cause:
            raise RuntimeError("could not reach the store") from cause
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    try:
        try:
            raise requests.ConnectionError("refused")
        except requests.ConnectionError as cause:
            raise mlflow_error("INVALID_PARAMETER_VALUE") from cause
    except MlflowException as wrapped:
        assert not is_transient(wrapped)


@pytest.mark.parametrize("error", PERMANENT[:3], ids=lambda e: e.error_code)
def test_a_permanent_error_fails_at_once(error):
    call = Flaky(error)
    start = time.monotonic()
    with pytest.raises(MlflowException) as raised:
        with_retries(call, "permanent", deadline=30)  # a long deadline: it must not be waited for
    assert raised.value is error
    assert call.calls == 1
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_a_transient_error_is_retried_until_success(error):
    call = Flaky(error, error, error)
    assert with_retries(call, "transient", deadline=5, **FAST) == "done"
    assert call.calls == 4


def test_a_transient_error_that_never_clears_stops_at_the_deadline():
    calls = 0

    def always_down():
        nonlocal calls
        calls += 1
        raise requests.ConnectionError(f"refused ({calls})")

    start = time.monotonic()
    with pytest.raises(requests.ConnectionError, match=r"refused \(\d+\)"):
        with_retries(always_down, "never clears", deadline=0.3, base_delay=0.01, max_delay=0.05)
    elapsed = time.monotonic() - start
    assert calls > 2  # it did retry, with backoff ...
    assert elapsed < 0.3 + 0.2  # ... and gave up by the deadline (no sleep past it)


def test_backoff_grows_exponentially_with_jitter(caplog):
    call = Flaky(*[mlflow_error("TEMPORARILY_UNAVAILABLE")] * 4)
    with caplog.at_level("WARNING", logger="pipelines.registry.store"):
        assert with_retries(call, "backoff", deadline=60, base_delay=0.05, max_delay=0.3) == "done"
    waits = [record.args[-1] for record in caplog.records if record.args and record.args[0] == "backoff"]
    assert len(waits) == 4
    for wait, low in zip(waits, [0.05, 0.1, 0.2, 0.3], strict=True):
        assert low <= wait <= low + 0.05  # exponential, capped at max_delay, plus up to base_delay of jitter


class Constant:
    """A trivial pyfunc model."""

    def predict(self, context, model_input):
        return model_input


@pytest.fixture
def sqlite_store(tmp_path):
    from pipelines.config import MlflowSettings

    settings = MlflowSettings(tracking_uri="sqlite:///mlflow.db", artifact_location="artifacts")
    return RegistryStore.from_settings(settings, base=tmp_path)


def test_register_pyfunc_creates_one_version_when_the_first_answer_is_lost(sqlite_store, monkeypatch):
    """The version is created, but its answer lost (a timeout): the retry finds it instead of adding another."""
    import mlflow.pyfunc

    store = sqlite_store
    experiment = store.experiment_id("retries")
    run_id = store.create_run(experiment, "run", {})
    create = store.client.create_model_version
    lost = []

    def create_but_lose_the_answer(*args, **kwargs):
        version = create(*args, **kwargs)
        if not lost:
            lost.append(version)
            raise requests.Timeout("read timed out")
        return version

    monkeypatch.setattr(store.client, "create_model_version", create_but_lose_the_answer)
    model = type("ConstantModel", (mlflow.pyfunc.PythonModel, Constant), {})()
    version = store.register_pyfunc(run_id, "mmm_retry_test", python_model=model, pip_requirements=[])
    assert version == "1"
    assert len(lost) == 1
    versions = store.client.search_model_versions("name = 'mmm_retry_test'")
    assert [(str(v.version), v.run_id) for v in versions] == [("1", run_id)]
    # a second registration from another run is a new version, not a match of the first
    other = store.create_run(experiment, "other", {})
    assert store.register_pyfunc(other, "mmm_retry_test", python_model=model, pip_requirements=[]) == "2"


def test_register_pyfunc_rejects_a_bad_name_without_retrying(sqlite_store, caplog):
    import mlflow.pyfunc

    store = sqlite_store
    run_id = store.create_run(store.experiment_id("retries"), "run", {})
    model = type("ConstantModel", (mlflow.pyfunc.PythonModel, Constant), {})()
    with caplog.at_level("WARNING", logger="pipelines.registry.store"), pytest.raises(MlflowException) as raised:
        store.register_pyfunc(run_id, "", python_model=model, pip_requirements=[])
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
    assert not [r for r in caplog.records if r.name == "pipelines.registry.store"]  # no retry
