"""What the platform exposes: the dashboard server (one file, local Host only), the local Spark driver (127.0.0.1),
the PyTensor compile folder (private to the user), and credentials in MLflow URIs (refused, redacted)."""

from __future__ import annotations

import argparse
import http.client
import os
import stat
import threading

import pytest

from monitoring.dashboard import dashboard_server
from pipelines.config import MlflowSettings
from pipelines.registry.store import RegistryStore, redact
from pipelines.spark import is_loopback_master, session_config
from pipelines.training.worker import isolate_worker, private_dir

# --- the dashboard server ---


@pytest.fixture
def dashboard(tmp_path):
    """A dashboard file with the MLflow store beside it, served on a free port in a thread; yields the port."""
    (tmp_path / "dashboard.html").write_text("<html>the dashboard</html>")
    (tmp_path / "mlflow.db").write_bytes(b"SQLite format 3\x00 secrets")
    server = dashboard_server(tmp_path / "dashboard.html", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def get(port: int, path: str, host: str | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_dashboard_server_listens_on_loopback_only(tmp_path):
    server = dashboard_server(tmp_path / "dashboard.html", port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_the_dashboard_is_served(dashboard):
    for path in ("/", "/dashboard.html", "/dashboard.html?refresh=1"):
        status, body = get(dashboard, path)
        assert (status, body) == (200, b"<html>the dashboard</html>"), path
    assert get(dashboard, "/", host=f"localhost:{dashboard}")[0] == 200


@pytest.mark.parametrize("path", ["/mlflow.db", "/../mlflow.db", "/%2e%2e/mlflow.db", "/lake/", "/dashboard.html/x"])
def test_files_beside_the_dashboard_are_not_served(dashboard, path):
    status, body = get(dashboard, path)
    assert status == 404
    assert b"secrets" not in body


def test_the_market_reports_beside_it_are_served_and_nothing_else(dashboard, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "acme_de.html").write_text("<html>acme/DE</html>")
    (reports / "notes.txt").write_text("not a report")
    (reports / "sub").mkdir()
    (reports / "sub" / "x.html").write_text("<html>nested</html>")
    assert get(dashboard, "/reports/acme_de.html") == (200, b"<html>acme/DE</html>")
    for path in ("/reports/notes.txt", "/reports/sub/x.html", "/reports/../mlflow.db", "/reports/%2e%2e/dashboard.html",
                 "/reports/..%2fmlflow.db", "/reports/missing.html", "/reports/"):  # fmt: skip
        status, body = get(dashboard, path)
        assert status == 404, path
        assert b"secrets" not in body and b"nested" not in body


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost", "0.0.0.0:{port}"])
def test_a_foreign_host_header_is_refused(dashboard, host):
    status, body = get(dashboard, "/", host=host.format(port=dashboard))
    assert status in (400, 403)
    assert b"the dashboard" not in body


# --- the local Spark driver ---


def test_the_local_spark_session_binds_to_loopback(spark):
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.driver.host") == "127.0.0.1"


@pytest.mark.parametrize(
    "master, loopback",
    [
        ("local", True),
        ("local[2]", True),
        ("local[*]", True),
        ("local-cluster[2,1,1024]", True),
        ("spark://127.0.0.1:7077", True),
        ("spark://localhost:7077", True),
        ("spark://10.0.0.5:7077", False),
        ("spark://127.0.0.10:7077", False),
        ("spark://cluster.internal:7077", False),
        ("yarn", False),
        ("k8s://https://k8s.example:443", False),
    ],
)
def test_only_local_masters_get_the_loopback_address(master, loopback):
    assert is_loopback_master(master) is loopback
    config = session_config(master, cores=2)
    if loopback:
        assert config["spark.driver.bindAddress"] == config["spark.driver.host"] == "127.0.0.1"
    else:
        assert "spark.driver.bindAddress" not in config
        assert "spark.driver.host" not in config


# --- the PyTensor compile folder ---


def test_a_missing_compile_folder_is_created_private(tmp_path):
    old = os.umask(0)  # even with a permissive umask
    try:
        folder = private_dir(str(tmp_path / "nested" / "pytensor"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert private_dir(folder) == folder  # and accepted when it exists


@pytest.mark.parametrize("mode", [0o770, 0o777, 0o702])
def test_a_group_or_world_writable_compile_folder_is_refused(tmp_path, mode):
    folder = tmp_path / "pytensor"
    folder.mkdir()
    folder.chmod(mode)
    with pytest.raises(PermissionError, match="writable by its group or others"):
        private_dir(str(folder))


def test_a_compile_folder_of_another_user_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "pytensor"
    folder.mkdir(mode=0o700)
    owner = folder.stat().st_uid
    monkeypatch.setattr(os, "getuid", lambda: owner + 1)
    with pytest.raises(PermissionError, match="belongs to another user"):
        private_dir(str(folder))


def test_a_compile_folder_that_is_a_link_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "pytensor").symlink_to(target)
    with pytest.raises(PermissionError, match="not a folder"):
        private_dir(str(tmp_path / "pytensor"))


def test_isolate_worker_refuses_an_open_compile_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTENSOR_FLAGS", "floatX=float64")
    monkeypatch.setenv("XLA_FLAGS", "")
    folder = tmp_path / "pytensor"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(PermissionError, match=str(folder)):
        isolate_worker(str(folder))
    assert os.environ["PYTENSOR_FLAGS"] == "floatX=float64"  # refused before anything was set


# --- credentials in MLflow URIs ---


@pytest.mark.parametrize(
    "settings",
    [
        {"tracking_uri": "https://user:hunter2@mlflow.example"},
        {"tracking_uri": "postgresql://mmm:hunter2@db.example:5432/mlflow"},
        {"registry_uri": "https://user:hunter2@registry.example"},
        {"artifact_location": "s3://key:hunter2@bucket/mlartifacts"},
    ],
)
def test_a_password_in_an_mlflow_uri_is_refused(settings, tmp_path):
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_PASSWORD") as raised:
        RegistryStore.from_settings(MlflowSettings(**settings), base=tmp_path)
    message = str(raised.value)
    assert "hunter2" not in message  # the error shows the URI redacted
    assert "***" in message
    assert "secret scope" in message


def test_uris_without_a_password_are_accepted(tmp_path):
    for uri in ("sqlite:///mlflow.db", "https://mlflow.example", "https://user@mlflow.example", "databricks"):
        store = RegistryStore.from_settings(MlflowSettings(tracking_uri=uri), base=tmp_path)
        assert store.tracking_uri.endswith(uri.removeprefix("sqlite:///"))


@pytest.mark.parametrize(
    "uri, shown",
    [
        ("https://user:secret@mlflow.example:5000/x", "https://user:***@mlflow.example:5000/x"),
        ("postgresql://mmm:secret@db.example/mlflow", "postgresql://mmm:***@db.example/mlflow"),
        ("https://mlflow.example/?token=secret&x=1", "https://mlflow.example/?token=***&x=1"),
        ("https://user@mlflow.example", "https://user@mlflow.example"),
        ("sqlite:////work/outputs/mlflow.db", "sqlite:////work/outputs/mlflow.db"),
        ("databricks-uc", "databricks-uc"),
        ("http://[not a url", "http://[not a url"),
    ],
)
def test_redact(uri, shown):
    assert redact(uri) == shown


def test_mmm_ui_prints_redacted_uris_and_binds_to_loopback(tmp_path, monkeypatch, capsys):
    from jobs import train

    platform = tmp_path / "platform.yaml"
    platform.write_text("mlflow:\n  tracking_uri: https://mlflow.example/?token=secret\n")
    calls = []
    monkeypatch.setattr(train.subprocess, "call", lambda command: calls.append(command) or 0)
    assert train.ui(argparse.Namespace(platform=platform, project=tmp_path, port=5123)) == 0
    printed = capsys.readouterr().out
    assert "token=***" in printed
    assert "secret" not in printed
    [command] = calls
    assert command[command.index("--host") + 1] == "127.0.0.1"
