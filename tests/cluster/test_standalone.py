"""The weekly steps on a Spark standalone cluster on 127.0.0.1 (master and one worker, executors in JVMs of
their own), reporting to an MLflow tracking server: see tests/cluster/weekly.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.servers import mlflow_server, standalone_cluster
from tests.cluster.weekly import check_outcome, run_weekly_steps, write_project

pytestmark = pytest.mark.slow


def test_the_weekly_steps_run_on_a_standalone_cluster_with_a_tracking_server(tmp_path: Path) -> None:
    project = tmp_path / "project"
    with mlflow_server(tmp_path / "mlflow") as tracking_uri, standalone_cluster(tmp_path / "spark") as master:
        write_project(project, tracking_uri)
        run_weekly_steps(project, master)
        check_outcome(project, tracking_uri)
    executor_logs = list((tmp_path / "spark" / "worker").glob("app-*/*/stderr"))
    assert executor_logs, "no executor ran in the worker's own JVM"  # one folder per application and executor
    fitted = [log for log in executor_logs if "Running task" in log.read_text(errors="replace")]
    assert fitted, "the worker's executors ran no task"
