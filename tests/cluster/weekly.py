"""The weekly steps as the cluster tests run them (issue 17): a Spark standalone cluster and a Spark Connect server,
both on 127.0.0.1, training reporting to an MLflow tracking server, never to a file shared with the driver.

Each step is the ``mmm`` console script in a process of its own, with the options the Databricks bundle
gives it (pipeline, train --no-promote, monitor, promote, recommend), as a scheduler runs them. The test
reads the outcome the way a user would: the Delta tables (with ``deltalake``, no Spark in this process),
and the registry through the tracking server.

- Standalone: the master and one worker are separate JVMs; the worker's executors are JVMs of their own
  (their logs under the worker's folder) with Python workers of their own.
- Spark Connect: the client has no ``sparkContext``, no RDDs and no JVM gateway, as on Databricks
  serverless and standard-access clusters, so the run shows that no step needs them.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import LENIENT_REVIEW

MMM = str(Path(sys.executable).parent / "mmm")
# Over a year of history (min_history_weeks 52) and 13 holdout weeks, no more: these tests are about where
# the job runs, not about the statistics.
WEEKS = 70
AS_OF = dt.date(2023, 1, 2) + dt.timedelta(weeks=WEEKS)  # the Monday after the synthetic weeks (they start 2023-01-02)
MARKETS = ["acme/DE", "acme/FR"]


def write_project(project: Path, tracking_uri: str) -> None:
    """A project folder: short chains, a lenient gate and review (this test is about where the job runs, not
    about the statistics), MLflow on the server with its artifacts proxied by it."""
    conf = project / "conf"
    conf.mkdir(parents=True)
    platform = {
        "landing": "../landing",
        "lake": "../lake",
        "mlflow": {
            "tracking_uri": tracking_uri,
            "artifact_location": "mlflow-artifacts:/cluster-test",
            "experiment": "cluster-test",
        },
        "training": {
            "chains": 2,
            "draws": 150,
            "tune": 150,
            "compile_dir": str(project / "pytensor"),
            "market_timeout_s": 1200,
        },
        "gate": {"max_rhat": 1.3, "min_ess_bulk": 10, "max_divergences": 1000, "max_holdout_wape_ratio": 100},
        "review": LENIENT_REVIEW.model_dump(),
    }
    (conf / "platform.yaml").write_text(yaml.safe_dump(platform))


def mmm(project: Path, *args: str) -> subprocess.CompletedProcess:
    """One command as a scheduler runs it: the console script, in the project folder, in a process of its own."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MMM_SPARK_MASTER", None)
    result = subprocess.run([MMM, *args], cwd=project, env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


def run_weekly_steps(project: Path, master: str) -> None:
    """Landing files, then the bundle's steps in its order against ``master``."""
    landing = ["--out", str(project / "landing"), "--brands", "acme", "--markets", "2", "--weeks", str(WEEKS)]
    mmm(project, "generate-raw", *landing, "--lift-tests")
    on = ["--project", str(project), "--master", master]
    week = [*on, "--brands", "acme", "--as-of", AS_OF.isoformat()]
    mmm(project, "pipeline", *week)
    mmm(project, "train", *week, "--no-promote")
    mmm(project, "monitor", *week)
    mmm(project, "promote", *on)
    mmm(project, "recommend", *week)


def check_outcome(project: Path, tracking_uri: str) -> None:
    """Every market trained, registered on the tracking server (artifacts through its proxy), promoted, recommended."""
    from mlflow import MlflowClient

    from pipelines.tables import BUDGET_RECOMMENDATIONS, MODEL_RUNS
    from serving.lake import LakeReader

    lake = LakeReader(project / "lake")
    runs = lake.read(MODEL_RUNS)
    assert sorted(runs["brand"] + "/" + runs["market"]) == MARKETS
    assert set(runs["status"]) == {"success"}, runs[["market", "status", "error"]]
    recommendations = lake.read(BUDGET_RECOMMENDATIONS)
    assert set(recommendations["brand"] + "/" + recommendations["market"]) == set(MARKETS)
    assert set(recommendations["status"]) == {"success"}
    assert recommendations["recommended_spend"].notna().all()

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    for market in MARKETS:
        brand, code = market.split("/")
        champion = client.get_model_version_by_alias(f"mmm_{brand}_{code.lower()}", "champion")
        run = client.get_run(champion.run_id)
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri  # through the server
        assert client.list_artifacts(champion.run_id), "the version's run has no artifacts"
    assert not (project / "mlflow.db").exists() and not (project / "outputs" / "mlflow.db").exists()
