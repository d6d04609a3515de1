"""Servers the cluster tests start and stop themselves, each on 127.0.0.1 and a free port.

- a Spark standalone master and one worker (``spark-class ...Master`` / ``...Worker`` from the pip
  ``pyspark``): the worker's executors are JVMs of their own, with Python workers of their own;
- a Spark Connect server (``spark-submit --class ...SparkConnectServer`` with the connect jar the pip
  ``pyspark`` ships, and Delta), as Databricks serverless and standard-access clusters serve PySpark;
- an MLflow tracking server (``mlflow server``) that also proxies artifacts, so training reports over
  HTTP rather than to a file the workers share with the driver.

Each is a context manager: it yields the address once the server answers, and stops the process (and
its children) on the way out, whatever happened inside.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import pyspark

LOOPBACK = "127.0.0.1"
SPARK_HOME = Path(pyspark.__file__).parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def spark_environment(work: Path) -> dict[str, str]:
    """Spark's scripts from the pip ``pyspark``, every address on loopback, Python workers on this interpreter."""
    return {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": LOOPBACK,
        "SPARK_LOG_DIR": str(work),
        "SPARK_WORKER_DIR": str(work / "worker"),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


def delta_package() -> str:
    """The Delta artifact that ``configure_spark_with_delta_pip`` asks Maven for, for this pyspark."""
    spark = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark}_2.13:{version('delta-spark')}"


@contextmanager
def _process(command: list[str], log: Path, env: dict[str, str], ready: Callable[[], bool], what: str, wait_s: float):
    """Start ``command`` in its own process group, wait until ``ready()``, and stop the group at the end."""
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + wait_s
        while not ready():
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not ready after {wait_s:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    return check


def _listens(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex((LOOPBACK, port)) == 0

    return check


def _says(log: Path, text: str) -> Callable[[], bool]:
    return lambda: log.exists() and text in log.read_text(errors="replace")


@contextmanager
def standalone_cluster(work: Path, cores: int = 2, memory: str = "6g") -> Iterator[str]:
    """A master and one worker of ``cores`` cores; yields ``spark://127.0.0.1:<port>`` once the worker registered."""
    work.mkdir(parents=True, exist_ok=True)
    env, port = spark_environment(work), free_port()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    master_log, worker_log = work / "master.log", work / "worker.log"
    master_command = [spark_class, "org.apache.spark.deploy.master.Master", "--host", LOOPBACK, "--port", str(port)]
    master_command += ["--webui-port", str(free_port())]
    url = f"spark://{LOOPBACK}:{port}"
    worker_command = [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", LOOPBACK, "--cores", str(cores)]
    worker_command += ["--memory", memory, "--webui-port", str(free_port()), "--work-dir", str(work / "worker"), url]
    with (
        _process(master_command, master_log, env, _says(master_log, "I have been elected leader"), "Spark master", 120),
        _process(
            worker_command,
            worker_log,
            env,
            _says(worker_log, "Successfully registered with master"),
            "Spark worker",
            120,
        ),
    ):
        yield url


@contextmanager
def connect_server(work: Path, master: str = "local[2]") -> Iterator[str]:
    """A Spark Connect server with Delta over ``master``; yields ``sc://127.0.0.1:<port>`` once it listens."""
    work.mkdir(parents=True, exist_ok=True)
    env, port = spark_environment(work), free_port()
    [connect_jar] = (SPARK_HOME / "jars").glob("spark-connect_*.jar")
    settings = {
        "spark.connect.grpc.binding.address": LOOPBACK,
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.bindAddress": LOOPBACK,
        "spark.driver.host": LOOPBACK,
        "spark.ui.enabled": "false",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.driver.memory": "4g",
    }
    command = [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--class",
        "org.apache.spark.sql.connect.service.SparkConnectServer",
    ]
    command += ["--master", master, "--packages", delta_package()]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    log = work / "connect.log"
    with _process([*command, str(connect_jar)], log, env, _listens(port), "Spark Connect server", 180):
        yield f"sc://{LOOPBACK}:{port}"


@contextmanager
def mlflow_server(work: Path) -> Iterator[str]:
    """An MLflow tracking server (SQLite store, artifacts proxied under ``mlflow-artifacts:/``); yields its URL."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [str(BIN / "mlflow"), "server", "--host", LOOPBACK, "--port", str(port), "--workers", "1"]
    command += [
        "--backend-store-uri",
        f"sqlite:///{work / 'mlflow.db'}",
        "--artifacts-destination",
        str(work / "artifacts"),
    ]
    url = f"http://{LOOPBACK}:{port}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with _process(command, work / "mlflow.log", env, _answers(f"{url}/health"), "MLflow server", 120):
        yield url
