"""Faults in training (issue 18): a fit process that dies or hangs costs only its market's row, the parent
run never stays RUNNING, and a retried task registers no second version for the same training run.

The faults come from the test hook ``MMM_TEST_FAULT`` (``pipelines.training.worker.inject_test_fault``).
"""

from __future__ import annotations

import json
import math
import operator
import os
import time
from dataclasses import replace

import pandas as pd
import pytest

from pipelines.config import TrainingSettings
from pipelines.tables import MODEL_INPUT, MODEL_RUNS, POSTERIOR_SUMMARIES
from pipelines.training import driver
from pipelines.training.contract import TrainJob
from pipelines.training.worker import (
    FitError,
    FitProcess,
    FitProcessDiedError,
    FitTimeoutError,
    fit_group_function,
    group_timeout_s,
)
from tests.reliability.scenarios import AS_OF, FAULTS, HANG_TIMEOUT_S, faulty_training

# --- the fit process on its own (no Spark, no model): fast ---


def test_fit_process_survives_errors_and_reports_death_and_timeout(tmp_path) -> None:
    process = FitProcess(str(tmp_path / "compile"))
    pid = process.call(os.getpid, (), 60)
    assert pid == process.pid != os.getpid()
    assert process.call(operator.add, (1, 2), 10) == 3
    with pytest.raises(FitError, match="ValueError: math domain error"):
        process.call(math.sqrt, (-1,), 10)
    assert process.call(os.getpid, (), 10) == pid  # one long-lived process: an error does not replace it

    start = time.perf_counter()
    with pytest.raises(FitTimeoutError, match=r"timed out after 0\.5 s"):
        process.call(time.sleep, (60,), 0.5)
    assert time.perf_counter() - start < 15 and not process.alive()  # killed, not waited for

    dying = FitProcess(str(tmp_path / "compile"))
    with pytest.raises(FitProcessDiedError, match="worker process died: exit code 3"):
        dying.call(os._exit, (3,), 30)
    assert not dying.alive()


def test_group_limit_follows_market_overrides_and_brand_size() -> None:
    job = TrainJob(
        training_run_id="run",
        run_date="2024-06-03",
        experiment_id="0",
        tracking_uri="sqlite://",
        registry_uri="sqlite://",
        model_prefix="mmm",
        compile_dir="/tmp/unused",
        code_version="test",
        brands={},
        training=TrainingSettings(market_timeout_s=100).model_dump(),
        gate={},
    )
    assert group_timeout_s(job, "acme", ["DE"]) == 100
    overridden = replace(job, overrides={"acme/DE": {"training": {"market_timeout_s": 7}}})
    assert group_timeout_s(overridden, "acme", ["DE"]) == 7
    brand = replace(overridden, training={**job.training, "unit": "brand"})
    assert group_timeout_s(brand, "acme", ["DE", "FR"]) == 200  # the joint fit: the job's limit per market
    assert TrainingSettings().market_timeout_s == 3600


# --- on Spark, with real fits ---


@pytest.fixture(scope="module")
def faulty(spark, tmp_path_factory):
    """One training run over 4 markets: acme/DE's fit process dies (``os._exit(1)``), bolt/DE's hangs past
    its 5 s limit, acme/FR and bolt/US fit normally (``scenarios.faulty_training``)."""
    found = faulty_training(spark, tmp_path_factory.mktemp("faults"))
    print(found["report"].table())
    return found


def _by_market(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.set_index(runs.brand + "/" + runs.market)


@pytest.mark.slow
def test_a_dead_or_hung_fit_fails_only_its_market(spark, faulty) -> None:
    report, client = faulty["report"], faulty["client"]
    assert faulty["job"].test_fault == FAULTS == "acme/DE=exit,bolt/DE=hang"  # what the workers saw
    runs = _by_market(report.runs)
    assert len(runs) == 4
    assert runs.loc["acme/DE", "status"] == "failed"
    assert runs.loc["acme/DE", "error"] == "worker process died: exit code 1"
    assert runs.loc["bolt/DE", "status"] == "failed"
    assert runs.loc["bolt/DE", "error"] == f"timed out after {HANG_TIMEOUT_S} s"
    for market in ("acme/FR", "bolt/US"):  # fitted and registered, whatever else happened
        assert runs.loc[market, "status"] in ("success", "rejected")
        assert runs.loc[market, "model_version"] == "1" and runs.loc[market, "mlflow_run_id"]

    stored = MODEL_RUNS.load(spark, faulty["root"]).toPandas()
    assert len(stored) == 4 and set(stored.training_run_id) == {report.training_run_id}
    assert _by_market(stored).loc["acme/DE", "error"] == "worker process died: exit code 1"
    summaries = POSTERIOR_SUMMARIES.load(spark, faulty["root"]).toPandas()
    assert set(summaries.brand + "/" + summaries.market) == {"acme/FR", "bolt/US"}

    parent = client.get_run(report.training_run_id)
    assert parent.info.status == "FAILED"  # ended, never left RUNNING; FAILED since markets failed
    assert parent.data.metrics["markets_failed"] == 2
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{report.training_run_id}'")
    by_name = {run.info.run_name: run for run in children}
    assert by_name["acme/DE"].info.status == "FAILED"
    assert by_name["acme/DE"].data.tags["error"] == "worker process died: exit code 1"
    assert by_name["bolt/DE"].data.tags["error"].startswith("timed out after")
    assert not [run for run in children if run.info.status == "RUNNING"]


@pytest.mark.slow
def test_a_retried_task_reuses_the_registered_version(spark, faulty) -> None:
    """The same TrainJob's group function run again for a market it already registered (a Spark task or flow
    step retry): the same run and version come back, nothing is fitted or registered again."""
    report, client, job = faulty["report"], faulty["client"], faulty["job"]
    first = _by_market(report.runs).loc["bolt/US"]
    rows = (
        MODEL_INPUT.load(spark, faulty["root"]).filter("brand = 'bolt' and market = 'US'").toPandas()
    )  # the group's rows, as applyInPandas hands them over
    again = fit_group_function(job)(rows).iloc[0]
    assert (again.mlflow_run_id, again.model_version, again.status) == (
        first.mlflow_run_id,
        first.model_version,
        first.status,
    )
    assert again.max_rhat == pytest.approx(first.max_rhat) and again.gate == first.gate
    stored = POSTERIOR_SUMMARIES.load(spark, faulty["root"]).filter("brand = 'bolt' and market = 'US'").toPandas()
    assert len(json.loads(again.summaries)) == len(stored) > 0  # its posterior summaries come back too
    versions = client.search_model_versions(f"name = '{first.model_name}'")
    assert [str(v.version) for v in versions] == ["1"]
    children = client.search_runs(
        [job.experiment_id], f"tags.mlflow.parentRunId = '{job.training_run_id}' and tags.market = 'US'"
    )
    assert len(children) == 1


@pytest.mark.slow
def test_a_driver_failure_ends_the_parent_run_failed(spark, faulty, monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise OSError("lift tests unreadable")

    monkeypatch.setattr(driver, "market_lift_tests", broken)
    platform = faulty["platform"]
    with pytest.raises(OSError, match="unreadable"):
        driver.train(spark, faulty["root"], faulty["brands"], platform, AS_OF, progress=lambda _: None)
    client = faulty["client"]
    experiment = client.get_experiment_by_name(platform.mlflow.experiment).experiment_id
    newest = client.search_runs([experiment], "tags.job = 'train'", order_by=["attributes.start_time DESC"])[0]
    assert newest.info.run_id != faulty["report"].training_run_id
    assert newest.info.status == "FAILED" and "lift tests unreadable" in newest.data.tags["error"]
