"""The promotion step: aliases move only through the gate.

For one training run (default: the latest), each ``success`` version becomes ``challenger``; with
``auto_promote`` it also becomes ``champion``, unless monitoring raised a critical alert on it (drift
or a contradicted lift test, in ``outputs/alerts``) while the market has a champion already: then it
stays ``challenger`` until a reviewer approves it. (A market's first version becomes champion either
way, flagged by its alerts: without a champion the market gets no recommendations at all.) A version
whose model review (``model_runs.review_verdict``) is REVIEW becomes ``challenger`` only, even as the
market's first version: the review found something a person must look at. A ``rejected`` version (gate
or review FAIL) never gets an alias, and its tags say why. ``approve`` promotes a reviewed
challenger by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.config import PlatformConfig
from pipelines.registry.store import RegistryStore
from pipelines.tables import ALERTS, MODEL_RUNS, Lake, MissingTableError
from pipelines.training.review import REVIEW, review_reasons

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class Promotion:
    brand: str
    market: str
    model_name: str | None
    version: str | None
    action: str  # what happened, in words


def latest_training_run(spark: SparkSession, root: Lake | str | Path) -> str:
    """The id of the newest training run in ``model_runs``."""
    try:
        runs = MODEL_RUNS.load(spark, root)
    except MissingTableError:
        runs = None
    latest = None if runs is None else runs.orderBy(F.col("recorded_at").desc()).select("training_run_id").first()
    if latest is None:
        raise ValueError("model_runs is empty: run `mmm train` first")
    return latest[0]


def promote(
    spark: SparkSession, root: Lake | str | Path, platform: PlatformConfig, training_run_id: str | None = None
) -> list[Promotion]:
    """Apply the gate's verdicts of one training run as registry aliases."""
    store = RegistryStore.from_settings(platform.mlflow)
    training_run_id = training_run_id or latest_training_run(spark, root)
    runs = (
        MODEL_RUNS.load(spark, root).filter(F.col("training_run_id") == training_run_id).collect()  # one row per market
    )
    critical = critical_alerts(spark, root)
    promotions = []
    for run in sorted(runs, key=lambda r: (r.brand, r.market)):
        if run.status == "failed" or run.model_version is None:
            promotions.append(Promotion(run.brand, run.market, run.model_name, None, f"no version: {run.error}"))
            continue
        if run.status == "rejected":
            promotions.append(
                Promotion(run.brand, run.market, run.model_name, run.model_version, f"no alias: {run.error}")
            )
            continue
        # A critical alert stops a version replacing a champion. A market's first version still becomes
        # champion (there is nothing better to decide with), and its alerts say what to review.
        # A REVIEW verdict never becomes champion by itself, first version or not: a person approves it.
        has_champion = store.alias_version(run.model_name, CHAMPION) is not None
        held = critical.get((run.model_name, run.model_version), 0) if has_champion else 0
        in_review = getattr(run, "review_verdict", None) == REVIEW
        automatic = platform.gate.auto_promote and not held and not in_review
        aliases = [CHALLENGER, CHAMPION] if automatic else [CHALLENGER]
        for alias in aliases:
            store.set_alias(run.model_name, alias, run.model_version)
        action = "champion (auto-promoted)" if platform.gate.auto_promote else "challenger (awaiting review)"
        if held:
            action = f"challenger (held back: {held} critical monitoring alerts; review, then approve)"
        if in_review:
            action = f"challenger (model review: {review_reasons(run.review)}; review, then approve)"
        promotions.append(Promotion(run.brand, run.market, run.model_name, run.model_version, action))
    return promotions


def critical_alerts(spark: SparkSession, root: Lake | str | Path) -> dict[tuple[str, str], int]:
    """Critical monitoring alerts (``outputs/alerts``, written by ``mmm monitor``) per (model name, version)."""
    if not ALERTS.exists(spark, root):
        return {}
    rows = (
        ALERTS.load(spark, root)
        .filter(F.col("severity") == "critical")
        .groupBy("model_name", "challenger_version")
        .count()
        .collect()
    )
    return {(r.model_name, r.challenger_version): r["count"] for r in rows}


def approve(platform: PlatformConfig, model_name: str) -> str:
    """Make the current challenger of ``model_name`` its champion (manual review); returns the version."""
    store = RegistryStore.from_settings(platform.mlflow)
    challenger = store.alias_version(model_name, CHALLENGER)
    if challenger is None:
        raise ValueError(f"{model_name} has no {CHALLENGER} version to approve")
    store.set_alias(model_name, CHAMPION, challenger)
    return challenger
