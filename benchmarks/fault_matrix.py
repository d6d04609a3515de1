"""Fault matrix: every bad input of the hardening issue through the real pipeline, and six faults, on real Spark.

    python benchmarks/fault_matrix.py [--workdir /tmp/mmm_fault_matrix]

Bad inputs: the cases of ``tests/reliability/scenarios.py`` (the reliability tests use the same ones):
landing files of every kind, bad records, names, markets and lift tests in one landing folder, run
through ``run_pipeline`` twice (the second run must change nothing); a landing folder whose sources
have no ingestible file; bad brand files; a brand name that would write outside the landing folder.
Each counts as quarantined with a reason when it ends in quarantine, an exclusion or a refusal whose
message names the problem. Awkward but valid inputs (a BOM, typed Parquet dates, a Spark Parquet
folder, DE/de spellings) must be accepted; they are listed, not counted as bad.

Faults, on ``local[2]`` with MLflow on SQLite: a fit process killed mid-fit and a hung sampler (one
training run over 4 markets), a retried task, a tracking store locked for 20 s, two ``mmm pipeline``
at once on one lake, and a ``mmm pipeline`` killed mid-run, then run again.

``rows_lost`` adds up, for every lake: landing rows that are neither in bronze nor in a file quarantined
whole, and records that are neither passed nor quarantined at any stage. The table comes first; the last
line is one JSON object. About 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.data.run import run_pipeline
from pipelines.data.synthetic_raw import brand_configs
from pipelines.lock import lake_lock
from pipelines.spark import get_spark
from pipelines.tables import (
    BRONZE,
    LIFT_TESTS,
    MARKET_STATUS,
    MODEL_INPUT,
    MODEL_RUNS,
    QUARANTINE,
    WEEKLY_CONTROLS,
    WEEKLY_SALES,
    WEEKLY_SPEND,
)
from pipelines.training import driver
from pipelines.training.worker import fit_group_function
from tests.reliability import scenarios

LOCK_S = 20  # how long the tracking store stays locked
LAKE_TABLES = [*BRONZE.values(), WEEKLY_SPEND, WEEKLY_SALES, WEEKLY_CONTROLS, LIFT_TESTS, MODEL_INPUT]
LAKE_TABLES += [QUARANTINE, MARKET_STATUS]


@dataclass
class Row:
    """One line of the table: what was tried, what the platform did, and whether that is what it should do."""

    group: str
    case: str
    ok: bool
    outcome: str


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/mmm_fault_matrix")
    args = parser.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    start = time.perf_counter()
    spark = get_spark("fault-matrix", master="local[2]")
    bad, accepted, faults, lost, crashes = [], [], [], 0, 0
    seconds, clock = {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        seconds[name], clock = time.perf_counter() - clock, time.perf_counter()

    # --- bad inputs ---
    matrix = scenarios.build_matrix(work / "matrix" / "landing")
    root = work / "matrix" / "lake"
    reports = []
    try:
        for _ in range(2):  # the second run on the same files must pass and change nothing
            reports.append(run_pipeline(spark, matrix.folder, root, matrix.brands, scenarios.AS_OF, lambda _: None))
    except Exception as exc:
        crashes += 1
        print(f"pipeline crashed: {type(exc).__name__}: {exc}")
    for case in scenarios.MATRIX_CASES:
        problem = matrix.problem(spark, root, case) if len(reports) == 2 else "the pipeline crashed"
        expected_bad = case not in ACCEPTED
        if expected_bad:
            bad.append(Row("input", case, problem is None, problem or _reason(spark, root, case)))
        else:  # what silver made of its rows, if anything
            accepted.append(Row("input", case, problem is None, problem or f"ingested {_reason(spark, root, case)}"))
    if len(reports) == 2:
        flows = matrix.flows_on(spark, root)
        accepted.append(Row("input", "clean markets flow on exactly", flows is None, flows or "acme/FR, bolt/US"))
        lost += sum(matrix.rows_lost(spark, root, report) for report in reports)
    lap("matrix (2 pipeline runs)")

    missing_landing, missing_brands = scenarios.sources_missing(work / "missing" / "landing")
    try:
        report = run_pipeline(
            spark, missing_landing, work / "missing" / "lake", missing_brands, scenarios.AS_OF, lambda _: None
        )
        (status,) = report.statuses
        ok = status.status == "excluded" and "min_history" in status.checks
        bad.append(Row("input", "sources_without_any_ingested_file", ok, f"market excluded: {status.reason[:70]}"))
        lost += sum(abs(s.rows_in - s.rows_passed - s.rows_quarantined) for s in report.stages)
    except Exception as exc:
        bad.append(Row("input", "sources_without_any_ingested_file", False, f"crashed: {type(exc).__name__}: {exc}"))

    for case, (_, parts) in scenarios.CONFIG_CASES.items():
        bad.append(
            _refusal(f"brand_file_{case}", lambda c=case: scenarios.config_refusal(work / "brands" / c, c), parts)
        )
    bad.append(
        _refusal(
            "brand_name_leaving_landing", lambda: scenarios.escaping_brand_refusal(work / "escape"), ("not a safe",)
        )
    )
    crashes += sum(row.outcome.startswith("crashed") for row in bad)
    lap("missing sources, brand files")

    # --- faults ---
    faults += _training_faults(spark, work / "train")
    lap("training faults (2 training runs)")
    concurrent, lake_rows = _concurrent_runs(spark, work / "concurrent")
    faults.append(concurrent)
    lap("two mmm pipeline at once")
    interrupted, interrupted_lost = _interrupted_run(spark, work / "concurrent", lake_rows)
    faults.append(interrupted)
    lost += interrupted_lost
    lap("interrupted run and rerun")

    print(f"\n{'kind':<7}{'case':<44}{'as it should':<14}outcome")
    for row in [*bad, *accepted, *faults]:
        print(f"{row.group:<7}{row.case:<44}{'yes' if row.ok else 'NO':<14}{row.outcome[:150]}")
    print(f"\naccepted as they should be: {sum(r.ok for r in accepted)} of {len(accepted)} awkward but valid inputs")
    print(
        ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items()) + f"; {time.perf_counter() - start:.0f} s in all"
    )
    result = {
        "bad_inputs": len(bad),
        "quarantined_with_reason": sum(r.ok for r in bad),
        "crashes": crashes,
        "faults": len(faults),
        "faults_survived": sum(r.ok for r in faults),
        "rows_lost": lost,
    }
    print(json.dumps(result))


ACCEPTED = {k for k, c in scenarios.MATRIX_FILES.items() if c.reasons is None} | {"market_spellings"}


def _reason(spark, root: Path, case: str) -> str:
    """The quarantine or exclusion reason that ``case`` got, for the table."""
    if case in scenarios.MARKET_CASES:
        brand, market = scenarios.MARKET_CASES[case][:2]
        status = MARKET_STATUS.read(spark, root).set_index(["brand", "market"]).loc[(brand, market)]
        return f"excluded, {status.checks}: {status.reason}"
    quarantine = QUARANTINE.read(spark, root)
    rows = quarantine[quarantine.source_file.fillna("").map(lambda name: Path(name).stem == case)]
    return "; ".join(f"{r.check}: {r.reason}" for r in rows.drop_duplicates(["check"]).itertuples())


def _refusal(case: str, attempt: Callable[[], str], parts: tuple[str, ...]) -> Row:
    """A refusal that must name its problem (``parts``); anything else raised is a crash."""
    try:
        message = attempt()
    except AssertionError as exc:
        return Row("input", case, False, f"accepted: {exc}")
    except Exception as exc:
        return Row("input", case, False, f"crashed: {type(exc).__name__}: {exc}")
    problem = " ".join(message.split(".yaml: ", 1)[-1].splitlines()[0].split())  # after the file's name
    return Row("input", case, all(p in message for p in parts), f"refused: {problem}")


def _training_faults(spark, folder: Path) -> list[Row]:
    """A killed fit process and a hung sampler in one training run of 4 markets; a retried task; a locked store."""
    from mlflow import MlflowClient

    rows = []
    training = scenarios.TRAINING.model_copy(update={"compile_dir": str(folder / "pytensor")})
    try:
        found = scenarios.faulty_training(spark, folder, training)
    except Exception as exc:
        reason = f"training crashed: {type(exc).__name__}: {exc}"
        return [Row("fault", name, False, reason) for name in ("killed worker", "hung sampler", "retried task")] + [
            Row("fault", "tracking store locked", False, reason)
        ]
    report, client, job = found["report"], found["client"], found["job"]
    runs = report.runs.set_index(report.runs.brand + "/" + report.runs.market)
    stored = MODEL_RUNS.read(spark, found["root"])
    parent = client.get_run(report.training_run_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{report.training_run_id}'")
    settled = parent.info.status != "RUNNING" and not [c for c in children if c.info.status == "RUNNING"]
    fitted = all(runs.loc[m, "status"] in ("success", "rejected") for m in ("acme/FR", "bolt/US"))
    died = runs.loc["acme/DE", "error"] == "worker process died: exit code 1"
    rows.append(
        Row(
            "fault",
            "killed worker (os._exit in a fit)",
            died and fitted and len(stored) == 4 and settled,
            f"acme/DE failed: {runs.loc['acme/DE', 'error']}; acme/FR, bolt/US fitted; model_runs {len(stored)} rows; "
            f"parent {parent.info.status}",
        )
    )
    hung = runs.loc["bolt/DE", "error"] == f"timed out after {scenarios.HANG_TIMEOUT_S} s"
    rows.append(
        Row(
            "fault",
            "hung sampler (market_timeout_s)",
            hung and fitted and settled,
            f"bolt/DE failed: {runs.loc['bolt/DE', 'error']}; the others fitted",
        )
    )

    first = runs.loc["bolt/US"]
    group = MODEL_INPUT.load(spark, found["root"]).filter("brand = 'bolt' and market = 'US'").toPandas()
    again = fit_group_function(job)(group).iloc[0]
    versions = [str(v.version) for v in client.search_model_versions(f"name = '{first.model_name}'")]
    same = (again.mlflow_run_id, again.model_version) == (first.mlflow_run_id, first.model_version)
    rows.append(
        Row(
            "fault",
            "retried task (same job, same market)",
            same and versions == ["1"],
            f"run {again.mlflow_run_id[:8]} v{again.model_version} reused; versions {versions}",
        )
    )
    rows.append(_locked_store(spark, found, MlflowClient))
    return rows


LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
"""


def _locked_store(spark, found: dict, client_type: type) -> Row:
    """Train bolt/US again while another process holds the SQLite tracking store's exclusive lock for LOCK_S."""
    database = found["platform"].mlflow.tracking_uri.removeprefix("sqlite:///")
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, database, str(LOCK_S)], stdout=subprocess.PIPE, text=True)
    assert locker.stdout.readline().strip() == "locked"
    start = time.perf_counter()
    try:
        report = driver.train(
            spark, found["root"], found["brands"], found["platform"], scenarios.AS_OF, print, markets=["bolt/US"]
        )
    except Exception as exc:
        return Row("fault", "tracking store locked 20 s", False, f"training failed: {type(exc).__name__}: {exc}")
    finally:
        locker.wait()
    waited = time.perf_counter() - start
    status = report.runs.iloc[0].status
    parent = client_type(found["platform"].mlflow.tracking_uri).get_run(report.training_run_id).info.status
    ok = status in ("success", "rejected") and parent == "FINISHED" and report.runs.iloc[0].model_version == "2"
    outcome = (
        f"retried, then bolt/US {status} v{report.runs.iloc[0].model_version} after {waited:.0f} s; parent {parent}"
    )
    return Row("fault", f"tracking store locked {LOCK_S} s", ok, outcome)


def _concurrent_runs(spark, folder: Path) -> tuple[Row, dict[str, int]]:
    """Two ``mmm pipeline`` at once on one lake: the second waits for the lock; each file lands once."""
    scenarios.write_cli_project(folder)
    runs = [
        subprocess.Popen(
            scenarios.pipeline_command(folder, "lake"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    codes = [run.returncode for run in runs]
    counts = _table_counts(spark, folder / "lake")
    new_files = sum(int(line.split()[2]) for out in outputs for line in out.splitlines() if line.startswith("ingest "))
    landed = sum(1 for source in ("spend", "sales", "controls") for _ in (folder / "landing" / source).iterdir())
    once = scenarios.each_file_once(spark, folder / "lake", folder / "landing")
    ok = codes == [0, 0] and new_files == landed and once
    outcome = f"exit codes {codes}; {new_files} new files ingested of {landed}; each file once in bronze: {once}"
    return Row("fault", "two mmm pipeline at once on one lake", ok, outcome), counts


def _interrupted_run(spark, folder: Path, reference: dict[str, int]) -> tuple[Row, int]:
    """``mmm pipeline`` killed (SIGKILL, JVM included) after ingesting sales, then run again: the lake ends as an
    uninterrupted run leaves it."""
    killed_at = scenarios.kill_pipeline_after(folder, "lake_interrupted", "ingest sales")
    landing, lake = folder / "landing", folder / "lake_interrupted"
    brands = brand_configs(scenarios.SMALL, scenarios.SMALL_LIMITS)
    try:
        with lake_lock(lake, "fault matrix rerun", wait_s=60):
            report = run_pipeline(spark, landing, lake, brands, scenarios.AS_OF, lambda _: None)
    except Exception as exc:
        return Row("fault", "interrupted run, then rerun", False, f"rerun failed: {type(exc).__name__}: {exc}"), 0
    counts = _table_counts(spark, lake)
    lost = sum(abs(s.rows_in - s.rows_passed - s.rows_quarantined) for s in report.stages)
    once = scenarios.each_file_once(spark, lake, landing)
    lost += 0 if once else 1
    ok = killed_at is not None and counts == reference and once and lost == 0
    outcome = f"killed after '{killed_at}'; rerun: tables as an uninterrupted run's: {counts == reference}"
    return Row("fault", "interrupted run (SIGKILL), then rerun", ok, outcome), lost


def _table_counts(spark, lake: Path) -> dict[str, int]:
    return {table.name: table.count(spark, lake) for table in LAKE_TABLES}


if __name__ == "__main__":
    main()
