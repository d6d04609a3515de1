"""The training job on Spark: one model per brand x market with ``groupBy().applyInPandas()``.

The driver opens one MLflow parent run, sends a ``TrainJob`` to the workers, and each group (a market
that ``market_status`` lets through) comes back as one status row. A progress thread prints each
market as its child run finishes. With ``training.unit: brand`` the groups are a brand model's blocks of
chains, then its markets (``pipelines.training.brand_stages``). The rows go to ``models/model_runs`` and
the per-channel posterior summaries to ``models/posterior_summaries``, both keyed by the training run, so
a rerun adds its own rows and never duplicates another run's.

The status rows (one per market, small) are collected to the driver as soon as the stage ends and the
tables are written from there, so they never live only in an executor's blocks, which a lost executor
would take along. Whatever fails on the way, the parent run ends FAILED, never RUNNING.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.config import PROJECT_ROOT, BrandConfig, PlatformConfig
from pipelines.registry.store import RegistryStore, with_retries
from pipelines.tables import LIFT_TESTS, MARKET_STATUS, MODEL_INPUT, MODEL_RUNS, POSTERIOR_SUMMARIES, Lake
from pipelines.training.brand_stages import train_brands
from pipelines.training.contract import RESULT_SCHEMA, TrainJob
from pipelines.training.tasks import one_task_per_group
from pipelines.training.worker import TEST_FAULT_VARIABLE, fit_group_function

log = logging.getLogger(__name__)

SUMMARY_TYPE = "array<struct<channel:string,metric:string,mean:double,sd:double,hdi_low:double,hdi_high:double>>"


@dataclass
class TrainReport:
    """One training job: its MLflow parent run and one status row per market."""

    training_run_id: str
    runs: pd.DataFrame
    wall_s: float
    # unit brand, per brand: its sampling stage's Spark tasks, bytes of draws, mean bytes shipped per market
    brand_sampling: dict[str, dict[str, float]] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return int((self.runs["status"] == status).sum())

    @property
    def all_succeeded(self) -> bool:
        return len(self.runs) > 0 and self.count("success") == len(self.runs)

    def table(self) -> str:
        """Market, status, review verdict, R-hat, ESS, divergences, holdout WAPE and MAPE, seconds, version, error."""
        shown = self.runs.assign(market=self.runs["brand"] + "/" + self.runs["market"])[
            [
                "market",
                "status",
                "review_verdict",
                "max_rhat",
                "min_ess_bulk",
                "divergences",
                "wape_holdout",
                "mape_holdout",
                "total_seconds",
                "model_version",
                "error",
            ]
        ].rename(
            columns={
                "review_verdict": "review",
                "max_rhat": "rhat",
                "min_ess_bulk": "ess",
                "wape_holdout": "holdout_wape",
                "mape_holdout": "holdout_mape",
                "total_seconds": "seconds",
            }
        )
        shown["error"] = shown["error"].fillna("").str.slice(0, 90)
        return shown.sort_values("market").to_string(index=False, float_format=lambda v: f"{v:.3g}", na_rep="-")


def code_version() -> str:
    """Package version plus the git commit, when the code runs from a checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return f"{package_version('mmm-platform')}+{commit}"


def modelling_input(
    spark: SparkSession, root: Lake | str | Path, markets: list[str] | None = None
) -> tuple[DataFrame, list[str]]:
    """``model_input`` rows of the markets that ``market_status`` includes (optionally only ``brand/market`` names).

    Returns the rows and the markets' ``brand/market`` names (for people and progress lines; the rows
    are selected by the (brand, market) pairs themselves, never by splitting those names).
    """
    status = MARKET_STATUS.load(spark, root)
    pairs = {f"{r.brand}/{r.market}": (r.brand, r.market) for r in status.filter("status = 'included'").collect()}
    if markets:
        unknown = sorted(set(markets) - set(pairs))
        if unknown:
            raise ValueError(f"not modelled this run (excluded or unknown): {unknown}; included: {sorted(pairs)}")
        pairs = {name: pairs[name] for name in markets}
    included = sorted(pairs)
    keys = spark.createDataFrame([pairs[name] for name in included], "brand string, market string")
    return MODEL_INPUT.load(spark, root).join(F.broadcast(keys), ["brand", "market"]), included


def market_lift_tests(spark: SparkSession, root: Lake | str | Path, markets: list[str]) -> dict[str, list[dict]]:
    """Silver lift tests of ``markets`` (``brand/market`` names), as plain records the workers calibrate on."""
    columns = ["brand", "market", "channel", "start", "end", "spend_delta", "lift", "lift_se"]
    tests = LIFT_TESTS.read(spark, root, columns)
    tests = tests[(tests["brand"] + "/" + tests["market"]).isin(markets)]
    found: dict[str, list[dict]] = {}
    for row in tests.sort_values(["brand", "market", "channel", "start"]).itertuples(index=False):
        found.setdefault(f"{row.brand}/{row.market}", []).append(
            {
                "channel": row.channel,
                "start": str(row.start),
                "end": str(row.end),
                "spend_delta": float(row.spend_delta),
                "lift": float(row.lift),
                "lift_se": float(row.lift_se),
            }
        )
    return found


def train(
    spark: SparkSession,
    root: Lake | str | Path,
    brands: dict[str, BrandConfig],
    platform: PlatformConfig,
    as_of: dt.date,
    progress: Callable[[str], None] = print,
    markets: list[str] | None = None,
    overrides: dict[str, dict] | None = None,
) -> TrainReport:
    """Fit every included market in parallel; write ``model_runs`` and ``posterior_summaries``."""
    start = time.perf_counter()
    store = RegistryStore.from_settings(platform.mlflow)
    experiment_id = store.experiment_id(platform.mlflow.experiment)
    frame, included = modelling_input(spark, root, markets)
    input_version = MODEL_INPUT.data_version(spark, root)
    tags = {"job": "train", "run_date": str(as_of), "input_version": str(input_version)}
    parent = store.create_run(experiment_id, f"train {as_of}", tags)
    try:
        opened = _Opened(store, experiment_id, parent, input_version, start)
        return _train_under(spark, root, brands, platform, as_of, progress, opened, frame, included, overrides)
    except BaseException as exc:  # the parent run ends FAILED, never RUNNING; the error still raises
        _end_failed(store, parent, exc)
        raise


def _train_under(
    spark: SparkSession,
    root: Lake | str | Path,
    brands: dict[str, BrandConfig],
    platform: PlatformConfig,
    as_of: dt.date,
    progress: Callable[[str], None],
    opened: _Opened,
    frame: DataFrame,
    included: list[str],
    overrides: dict[str, dict] | None,
) -> TrainReport:
    """``train`` once its parent run is open: fit, write the tables, log and end the parent run."""
    store, experiment_id, parent = opened.store, opened.experiment_id, opened.run_id
    params = {
        "markets": len(included),
        **platform.training.model_dump(),
        **platform.gate.model_dump(),
        **{f"review.{k}": v for k, v in platform.review.model_dump().items()},
    }
    store.log_batch(parent, params=params)
    job = TrainJob(
        training_run_id=parent,
        run_date=str(as_of),
        experiment_id=experiment_id,
        tracking_uri=store.tracking_uri,
        registry_uri=store.registry_uri,
        model_prefix=platform.mlflow.model_prefix,
        compile_dir=platform.training.compile_dir,
        code_version=code_version(),
        brands={name: b.model_dump() for name, b in brands.items()},
        training=platform.training.model_dump(),
        gate=platform.gate.model_dump(),
        overrides=overrides or {},
        lift_tests=market_lift_tests(spark, root, included),
        review=platform.review.model_dump(),
        input_table=Lake.of(root).location(MODEL_INPUT),
        input_version=opened.input_version,
        test_fault=os.environ.get(TEST_FAULT_VARIABLE, ""),  # test hook; unset in production
    )
    unit, slots = platform.training.unit, _task_slots(spark)
    if unit == "brand":
        groups = sorted({m.split("/", 1)[0] for m in included})
        tasks = platform.training.chain_tasks(slots)
        progress(
            f"training {len(included)} markets as {len(groups)} brand models, each sampled in {tasks} chain "
            f"task{'s' if tasks > 1 else ''} (MLflow parent run {parent})"
        )
    else:
        batches = market_batches(market_weeks(frame), platform.training.batch_size, _own_settings(overrides), slots)
        frame = frame.join(F.broadcast(spark.createDataFrame(batches, BATCH_SCHEMA)), ["brand", "market"])
        groups, keys = sorted({(b, n) for b, _, n in batches}), ["brand", "batch"]
        how = f" in {len(groups)} batches" if len(groups) < len(included) else ""
        progress(f"training {len(included)} market models{how} (MLflow parent run {parent})")
    watcher = _ProgressWatcher(store, experiment_id, parent, len(included), progress)
    watcher.start()
    sampling: dict[str, dict[str, float]] = {}
    try:
        if unit == "brand":
            collected, sampling = train_brands(spark, frame, job, slots)
        else:
            with one_task_per_group(spark, len(groups)):  # models spread over every core
                collected = (
                    frame.groupBy(*keys)
                    .applyInPandas(fit_group_function(job), RESULT_SCHEMA)
                    .collect()  # one small row per market, now on the driver: no executor holds the only copy
                )
    finally:
        watcher.stop()
    results = spark.createDataFrame(collected, RESULT_SCHEMA)
    results = results.withColumn("input_version", F.lit(opened.input_version).cast("long"))
    results = with_data_review(spark, root, results)
    _write_tables(spark, root, results)
    runs = results.drop("summaries").toPandas()  # one row per market
    wall = time.perf_counter() - opened.start
    counts = runs["status"].value_counts().to_dict()
    metrics = {f"markets_{s}": counts.get(s, 0) for s in ("success", "rejected", "failed")}
    metrics["markets_review"] = int((runs["review_verdict"] == "REVIEW").sum())
    if sampling:
        metrics["brand_sampling_tasks"] = sum(stage["tasks"] for stage in sampling.values())
    store.log_batch(parent, metrics={**metrics, "wall_s": wall})
    store.terminate(parent, "FINISHED" if not counts.get("failed") else "FAILED")
    return TrainReport(parent, runs, wall, sampling)


BATCH_SCHEMA = "brand string, market string, batch int"


def market_weeks(frame: DataFrame) -> dict[tuple[str, str], int]:
    """Weeks of modelling input per (brand, market): one small aggregate, collected."""
    rows = frame.groupBy("brand", "market").count().collect()
    return {(r["brand"], r["market"]): int(r["count"]) for r in rows}


def market_batches(
    weeks: dict[tuple[str, str], int], batch_size: int, overridden: set[str], slots: int
) -> list[tuple[str, str, int]]:
    """(brand, market, batch) for every market: the groups of the training stage, one Spark task each.

    A batch holds markets of one brand (one spec), at most ``batch_size``, of similar history lengths
    (sorted by weeks, so that they share compiled shapes). A brand's markets are cut into batches of
    near-equal size, and batches are split further while there are fewer of them than ``slots`` (the
    cluster's task slots), so that no core waits idle while another fits a big batch. A market with a
    training override of its own is a batch by itself (its settings differ from its neighbours').
    """
    by_brand: dict[str, list[str]] = {}
    batches: list[list[tuple[str, str]]] = []
    for (brand, market), _ in sorted(weeks.items(), key=lambda item: (item[0][0], item[1], item[0][1])):
        if f"{brand}/{market}" in overridden or batch_size == 1:
            batches.append([(brand, market)])
        else:
            by_brand.setdefault(brand, []).append(market)
    for brand, markets in by_brand.items():
        count = -(-len(markets) // batch_size)
        batches += [[(brand, m) for m in part] for part in _near_equal(markets, count)]
    while len(batches) < min(slots, len(weeks)):
        largest = max(batches, key=len)
        batches.remove(largest)
        batches += [part for part in _near_equal(largest, 2)]
    order = {brand: 0 for brand, _ in weeks}
    rows = []
    for batch in sorted(batches):
        brand = batch[0][0]
        rows += [(brand, market, order[brand]) for _, market in batch]
        order[brand] += 1
    return rows


def _near_equal(items: list, parts: int) -> list[list]:
    """``items`` cut into ``parts`` contiguous runs whose sizes differ by at most one."""
    size, extra = divmod(len(items), parts)
    cuts = [i * size + min(i, extra) for i in range(parts + 1)]
    return [items[cuts[i] : cuts[i + 1]] for i in range(parts)]


def _own_settings(overrides: dict[str, dict] | None) -> set[str]:
    """The ``brand/market`` names whose override changes their training settings."""
    return {name for name, override in (overrides or {}).items() if override.get("training")}


def _task_slots(spark: SparkSession) -> int:
    """Tasks the cluster runs at once (a classic session's default parallelism; 2 where it cannot be read)."""
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext
        return int(spark.conf.get("spark.default.parallelism", "2") or 2)


@dataclass(frozen=True)
class _Opened:
    """A training job's store, experiment and open parent run."""

    store: RegistryStore
    experiment_id: str
    run_id: str
    input_version: int
    start: float  # perf_counter at the job's start


def _end_failed(store: RegistryStore, parent: str, error: BaseException) -> None:
    """End the parent run FAILED with the error as a tag; a store that fails here is logged, not raised
    (the error that brought the run down is the one to see)."""
    try:
        message = f"{type(error).__name__}: {error}"[:5000]
        with_retries(lambda: store.client.set_tag(parent, "error", message), "tag the failed training run")
        store.terminate(parent, "FAILED")
    except Exception:
        log.exception("could not end training run %s as FAILED", parent)


def previous_training(
    spark: SparkSession, root: Lake | str | Path, run_date: dt.date, markets: list[str] | None = None
) -> str | None:
    """The training run that already fitted today's ``model_input`` for ``run_date``, if there is one.

    The weekly flow uses it to stay idempotent: a rerun on the same data and date reuses that run's
    versions instead of registering new ones. (``mmm train`` itself always fits anew.)
    """
    if not MODEL_RUNS.exists(spark, root):
        return None
    version = MODEL_INPUT.data_version(spark, root)
    runs = MODEL_RUNS.load(spark, root)
    if "input_version" not in runs.columns:
        return None
    done = (
        runs.filter((F.col("run_date") == F.lit(run_date)) & (F.col("input_version") == version))
        .groupBy("training_run_id")
        .agg(F.collect_set(F.concat_ws("/", "brand", "market")).alias("markets"), F.max("recorded_at").alias("at"))
        .orderBy(F.desc("at"))
        .collect()
    )
    wanted = set(markets or modelling_input(spark, root)[1])
    return next((row.training_run_id for row in done if wanted <= set(row.markets)), None)


def with_data_review(spark: SparkSession, root: Lake | str | Path, results: DataFrame) -> DataFrame:
    """Each market's pre-fit data review (``data_review``, ``data_warnings``) from ``market_status``, as gold
    wrote it for the input trained on; null for a lake whose ``market_status`` predates the review."""
    status = MARKET_STATUS.load(spark, root)
    review = [
        F.col(name) if name in status.columns else F.lit(None).cast(kind).alias(name)
        for name, kind in (("data_review", "string"), ("data_warnings", "int"))
    ]
    return results.join(F.broadcast(status.select("brand", "market", *review)), ["brand", "market"], "left")


def _write_tables(spark: SparkSession, root: Lake | str | Path, results: DataFrame) -> None:
    finished = results.withColumn("recorded_at", F.current_timestamp())
    MODEL_RUNS.insert_new(spark, root, finished.drop("summaries"))
    summaries = finished.filter(F.col("summaries").isNotNull()).select(
        "training_run_id",
        "run_date",
        "brand",
        "market",
        "model_name",
        "model_version",
        F.explode(F.from_json("summaries", SUMMARY_TYPE)).alias("s"),
        "recorded_at",
    )
    summaries = summaries.select(*[c for c in summaries.columns if c != "s"], "s.*")
    POSTERIOR_SUMMARIES.insert_new(spark, root, summaries)


HEARTBEAT_S = 60.0  # a line at least this often while nothing finishes (a brand model fits all its markets at once)


class _ProgressWatcher(threading.Thread):
    """Prints a line for each child run that finishes, by polling MLflow (workers cannot print to the driver),
    and a heartbeat line every ``HEARTBEAT_S`` while none does, so a long fit never looks stuck."""

    def __init__(
        self, store: RegistryStore, experiment_id: str, parent: str, total: int, progress: Callable[[str], None]
    ) -> None:
        super().__init__(daemon=True)
        self.store, self.experiment_id, self.parent, self.total, self.progress = (
            store,
            experiment_id,
            parent,
            total,
            progress,
        )
        self.seen: set[str] = set()
        self.halt = threading.Event()
        self.started = self.last_line = time.perf_counter()

    def run(self) -> None:
        while not self.halt.wait(3.0):
            self.poll()
            now = time.perf_counter()
            if now - self.last_line >= HEARTBEAT_S:
                self.last_line = now
                self.progress(
                    f"  ... {len(self.seen)}/{self.total} markets done, still fitting ({now - self.started:.0f} s)"
                )

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=10)
        self.poll()

    def poll(self) -> None:
        try:
            runs = self.store.child_runs(self.experiment_id, self.parent)
        except Exception:  # progress is best effort; the final table is authoritative
            return
        for run in runs:
            if run.info.status in ("FINISHED", "FAILED") and run.info.run_id not in self.seen:
                self.seen.add(run.info.run_id)
                m = run.data.metrics
                detail = (
                    f"R-hat {m['max_rhat']:.3f}, ESS {m['min_ess_bulk']:.0f}, {m.get('timing.wall_s', 0):.1f} s fit"
                    if "max_rhat" in m
                    else run.data.tags.get("error", "")[:120]
                )
                self.progress(
                    f"  [{len(self.seen)}/{self.total}] {run.info.run_name} {run.info.status.lower()}: {detail}"
                )
                self.last_line = time.perf_counter()
