"""The weekly steps through a Spark Connect server on 127.0.0.1 (no sparkContext, RDDs or JVM gateway in
the client, as on Databricks serverless), reporting to an MLflow tracking server: see tests/cluster/weekly.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.servers import connect_server, mlflow_server
from tests.cluster.weekly import check_outcome, run_weekly_steps, write_project

pytestmark = pytest.mark.slow


def test_the_weekly_steps_run_through_spark_connect(tmp_path: Path) -> None:
    project = tmp_path / "project"
    with mlflow_server(tmp_path / "mlflow") as tracking_uri, connect_server(tmp_path / "connect") as address:
        write_project(project, tracking_uri)
        run_weekly_steps(project, address)
        check_outcome(project, tracking_uri)
