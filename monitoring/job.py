"""``run_monitoring``: drift, calibration, data drift and alerts for the latest training run.

For each market the latest training run registered a version for, the job loads that version and
its reference (see ``monitoring.registry``) from MLflow and computes:

- posterior drift in business units over the training weeks both saw -> ``outputs/posterior_drift``;
- the new version's agreement with the market's lift tests (silver ``lift_tests``) ->
  ``outputs/lift_calibration``;
- data drift: the last ``recent_weeks`` of the new version's data against the weeks before them ->
  ``outputs/data_drift``;
- alerts from ``monitoring.rules`` -> ``outputs/alerts``, and a ``monitoring.*`` tag on the version.

Run it between training and promotion (``mmm train --no-promote``, ``mmm monitor``, ``mmm promote``):
promotion holds back a version with a critical alert. A market whose monitoring fails is reported
with its error, and the others go on.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession

from mmm_models.fitted import FittedModel
from monitoring import rules
from monitoring.calibration import lift_calibration
from monitoring.data_drift import data_drift
from monitoring.posterior import posterior_drift
from monitoring.registry import VersionPair, reference_version
from monitoring.tables import write
from pipelines.config import BrandConfig, MonitoringSettings, PlatformConfig
from pipelines.registry.promotion import latest_training_run
from pipelines.registry.store import RegistryStore
from pipelines.tables import ALERTS, DATA_DRIFT, LIFT_CALIBRATION, LIFT_TESTS, MODEL_RUNS, POSTERIOR_DRIFT, Lake

MARKET_TABLES = {table.name: table for table in (POSTERIOR_DRIFT, LIFT_CALIBRATION, DATA_DRIFT)}


@dataclass
class MonitorReport:
    """One monitoring run: a row per market, the alerts it raised, and the markets it could not monitor."""

    training_run_id: str
    markets: pd.DataFrame
    alerts: pd.DataFrame
    new_alerts: int
    errors: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        """Alerts of this run by severity (``critical``, ``warning``)."""
        return rules.severity_counts(self.alerts)

    def summary(self) -> str:
        """The per-market table and a closing line of counts."""
        table = self.markets.to_string(index=False, float_format=lambda v: f"{v:.3g}", na_rep="-")
        counts = self.counts
        line = (
            f"{len(self.markets)} markets monitored for training run {self.training_run_id}: "
            f"{counts['critical']} critical and {counts['warning']} warning alerts ({self.new_alerts} new), "
            f"{len(self.errors)} markets failed, in {self.wall_s:.0f} s"
        )
        failed = "".join(f"\n  {market}: {error}" for market, error in sorted(self.errors.items()))
        return f"{table}\n\n{line}{failed}"


def run_monitoring(
    spark: SparkSession,
    root: Lake | str | Path,
    brands: dict[str, BrandConfig],
    platform: PlatformConfig,
    as_of: dt.date,
    progress: Callable[[str], None] | None = None,
) -> MonitorReport:
    """Monitor every version registered by the latest training run; write the four tables and return a report."""
    start, say = time.perf_counter(), progress or (lambda _: None)
    settings = platform.monitoring
    training_run_id = latest_training_run(spark, root)
    history = MODEL_RUNS.read(spark, root)
    latest = history[(history["training_run_id"] == training_run_id) & history["model_version"].notna()]
    store = RegistryStore.from_settings(platform.mlflow)
    lift_tests = LIFT_TESTS.read(spark, root)
    say(f"monitoring {len(latest)} markets of training run {training_run_id}")
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in MARKET_TABLES}
    rows, errors = [], {}
    context = {"training_run_id": training_run_id, "as_of": as_of}
    for i, run in enumerate(latest.sort_values(["brand", "market"]).itertuples(), start=1):
        name = f"{run.brand}/{run.market}"
        try:
            reference = reference_version(store, run.model_name, run.model_version, history, run.brand, run.market)
            pair = VersionPair(
                run.brand,
                run.market,
                run.model_name,
                run.model_version,
                run.mlflow_run_id,
                *(reference or (None, None)),
            )
            if run.brand not in brands:
                raise ValueError(f"brand {run.brand!r} has no brand config")
            tests = market_lift_tests(lift_tests, run.brand, run.market)
            market = monitor_market(pair, store, tests, settings)
        except Exception as exc:  # one market's failure is reported; the others go on
            errors[name] = f"{type(exc).__name__}: {exc}"
            say(f"  [{i}/{len(latest)}] {name}: FAILED {errors[name][:160]}")
            continue
        for table, frame in market.items():
            frames[table].append(frame.assign(**context))
        row = market_row(pair, market, settings)
        rows.append(row)
        say(
            f"  [{i}/{len(latest)}] {name}: v{pair.champion_version or '-'} -> v{pair.challenger_version}, "
            f"max drift {row['max_shift_sd']:.2g} sd, {row['lift_tests']} lift tests, "
            f"{row['critical']} critical / {row['warning']} warning"
        )
    tables = {t: pd.concat(f, ignore_index=True) if f else pd.DataFrame() for t, f in frames.items()}
    alerts = rules.evaluate(tables, settings).assign(as_of=as_of)
    stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for name, frame in tables.items():
        if len(frame):
            write(spark, root, MARKET_TABLES[name], frame, stamp)
    new_alerts = write(spark, root, ALERTS, alerts, stamp)
    tag_versions(store, latest, alerts)
    markets = pd.DataFrame(rows)
    return MonitorReport(training_run_id, markets, alerts, new_alerts, errors, time.perf_counter() - start)


def market_lift_tests(lift_tests: pd.DataFrame, brand: str, market: str) -> pd.DataFrame:
    """The market's tests from silver ``lift_tests`` (typed, model channel names); one row per test."""
    columns = ["channel", "start", "end", "spend_delta", "lift", "lift_se"]
    if lift_tests.empty:
        return pd.DataFrame(columns=columns)
    tests = lift_tests[(lift_tests["brand"] == brand) & (lift_tests["market"] == market)]
    return tests[columns].reset_index(drop=True)


def monitor_market(
    pair: VersionPair, store: RegistryStore, tests: pd.DataFrame, settings: MonitoringSettings
) -> dict[str, pd.DataFrame]:
    """The three tables' rows for one market (drift is empty for a market's first version)."""
    keys = {"brand": pair.brand, "market": pair.market, "model_name": pair.model_name}
    challenger = store.load_run_model(pair.challenger_run_id)
    drift = pd.DataFrame()
    if pair.champion_run_id is not None:
        champion = store.load_run_model(pair.champion_run_id)
        drift = posterior_drift(champion, challenger, tuple(settings.drift_metrics), settings.max_draws).assign(
            **keys, champion_version=pair.champion_version, challenger_version=pair.challenger_version
        )
    calibration = lift_calibration(challenger, tests) if len(tests) else pd.DataFrame()
    if len(calibration):
        calibration = calibration.assign(**keys, model_version=pair.challenger_version)
    recent = recent_data_drift(challenger, settings.recent_weeks)
    if len(recent):
        recent = recent.assign(**keys, model_version=pair.challenger_version)
    return {"posterior_drift": drift, "lift_calibration": calibration, "data_drift": recent}


def recent_data_drift(model: FittedModel, recent_weeks: int) -> pd.DataFrame:
    """Data drift of the model's last ``recent_weeks`` against the weeks before them (empty if too short)."""
    data = model.data
    if len(data) < 2 * recent_weeks:
        return pd.DataFrame()
    reference, recent = data.iloc[:-recent_weeks], data.iloc[-recent_weeks:]
    dates = pd.to_datetime(data[model.spec.date_column]).dt.date
    windows = {
        "reference_start": dates.iloc[0],
        "reference_end": dates.iloc[-recent_weeks - 1],
        "recent_start": dates.iloc[-recent_weeks],
        "recent_end": dates.iloc[-1],
    }
    return data_drift(reference, recent, model.channel_names, model.spec.target.column).assign(**windows)


def market_row(pair: VersionPair, market: dict[str, pd.DataFrame], settings: MonitoringSettings) -> dict:
    """The summary line of one market: versions, largest drift, lift tests and coverage, alerts by severity."""
    drift, calibration = market["posterior_drift"], market["lift_calibration"]
    alerts = rules.evaluate(market, settings)
    counts = rules.severity_counts(alerts)
    return {
        "market": f"{pair.brand}/{pair.market}",
        "champion": pair.champion_version or "-",
        "challenger": pair.challenger_version,
        "max_shift_sd": float(drift["mean_shift_sd"].abs().max()) if len(drift) else float("nan"),
        "lift_tests": len(calibration),
        "lift_coverage": float(calibration["inside_predictive_interval"].mean()) if len(calibration) else float("nan"),
        "critical": counts["critical"],
        "warning": counts["warning"],
    }


def tag_versions(store: RegistryStore, runs: pd.DataFrame, alerts: pd.DataFrame) -> None:
    """``monitoring.critical_alerts`` / ``monitoring.warning_alerts`` on each version, for reviewers in the UI."""
    for run in runs.itertuples():
        mine = alerts[(alerts["model_name"] == run.model_name) & (alerts["challenger_version"] == run.model_version)]
        tags = {f"monitoring.{s}_alerts": str(c) for s, c in rules.severity_counts(mine).items()}
        store.set_version_tags(run.model_name, run.model_version, tags)
