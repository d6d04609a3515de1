"""Alert rules over the monitoring tables: typed, with visible thresholds (``MonitoringSettings``).

Severity ``critical`` holds a challenger back from automatic promotion; ``warning`` asks for a look.
The defaults, and why:

- **Posterior drift** (per market, channel and business metric): warning at a mean shift of 2
  champion sds; critical at 3 sds *and* 90% HDIs that overlap by at most 10%. A refit on one more
  quarter moves a posterior mean by about 0.3 sd when nothing changed (see ``monitoring.drift``), so
  2 sds is roughly 7 times refit noise, and 3 sds with parted intervals is a model that changed its
  mind. The HDI condition keeps a sharp champion posterior from turning small moves into criticals.
- **Lift calibration** (per test): the z-score of the observed lift against the model (model sd and
  test se combined) is about N(0, 1) for a calibrated model. Warning at |z| >= 2.5 (1.2% of honest
  tests), critical at |z| >= 4 (6 in 100,000): the model contradicts an experiment.
- **Lift coverage** (per channel with at least 3 tests): warning when fewer than half of its tests
  lie in the 90% interval; a calibrated model covers 90%, and 3 of 3 tests missing happens with
  probability 0.001.
- **Data drift** (per market): warning at a spend-mix PSI of 0.25, or a recent target level 2 weekly
  sds from the training mean (see ``monitoring.data_drift``). Data drift warns, it never blocks: the
  new data is the reason to refit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.config import MonitoringSettings

WARNING, CRITICAL = "warning", "critical"
ALERT_COLUMNS = [
    "rule",
    "severity",
    "brand",
    "market",
    "channel",
    "metric",
    "value",
    "threshold",
    "model_name",
    "champion_version",
    "challenger_version",
    "context",
    "detail",
]


def _alerts(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{c: row.get(c) for c in ALERT_COLUMNS} for row in rows], columns=ALERT_COLUMNS)


def drift_alerts(drift: pd.DataFrame, settings: MonitoringSettings) -> pd.DataFrame:
    """An alert per market, channel and metric whose posterior moved beyond the thresholds."""
    rows = []
    for row in drift.to_dict("records"):
        if row["metric"] not in settings.drift_metrics:
            continue
        shift = abs(row["mean_shift_sd"])
        if shift >= settings.drift_critical_sd and row["hdi_overlap"] <= settings.drift_critical_max_overlap:
            severity, threshold = CRITICAL, settings.drift_critical_sd
        elif shift >= settings.drift_warning_sd:
            severity, threshold = WARNING, settings.drift_warning_sd
        else:
            continue
        detail = (
            f"{row['metric']} {row['champion_mean']:.4g} -> {row['challenger_mean']:.4g} "
            f"({row['mean_shift_sd']:+.1f} sd; 90% HDI {row['champion_hdi_low']:.3g}..{row['champion_hdi_high']:.3g}"
            f" -> {row['challenger_hdi_low']:.3g}..{row['challenger_hdi_high']:.3g}, overlap {row['hdi_overlap']:.2f})"
        )
        rows.append(
            {
                **row,
                "rule": "posterior_drift",
                "severity": severity,
                "value": shift,
                "threshold": threshold,
                "context": "",
                "detail": detail,
            }
        )
    return _alerts(rows)


def calibration_alerts(calibration: pd.DataFrame, settings: MonitoringSettings) -> pd.DataFrame:
    """An alert per lift test that the model contradicts, and per channel whose coverage is too low."""
    rows = []
    for row in calibration.to_dict("records"):
        z = abs(row["z_score"])
        if z >= settings.lift_critical_z:
            severity, threshold = CRITICAL, settings.lift_critical_z
        elif z >= settings.lift_warning_z:
            severity, threshold = WARNING, settings.lift_warning_z
        else:
            continue
        window = f"{pd.Timestamp(row['start']).date()}..{pd.Timestamp(row['end']).date()}"
        detail = (
            f"test {window}: observed lift {row['lift']:.4g} +- {row['lift_se']:.3g}, "
            f"model {row['model_lift_mean']:.4g}"
            f" (90% HDI {row['model_lift_hdi_low']:.4g}..{row['model_lift_hdi_high']:.4g}), z {row['z_score']:+.1f}"
        )
        rows.append(
            {
                **row,
                "challenger_version": row["model_version"],
                "rule": "lift_calibration",
                "metric": "lift_z_score",
                "severity": severity,
                "value": z,
                "threshold": threshold,
                "context": window,
                "detail": detail,
            }
        )
    if not calibration.empty:
        keys = ["brand", "market", "channel", "model_name", "model_version"]
        for key, group in calibration.groupby(keys, dropna=False):
            covered = float(group["inside_predictive_interval"].mean())
            if len(group) < settings.min_tests_for_coverage or covered >= settings.min_lift_coverage:
                continue
            detail = f"{int(group['inside_predictive_interval'].sum())} of {len(group)} tests inside the 90% interval"
            rows.append(
                {
                    **dict(zip(keys, key, strict=True)),
                    "challenger_version": key[-1],
                    "rule": "lift_coverage",
                    "metric": "coverage",
                    "severity": WARNING,
                    "value": covered,
                    "threshold": settings.min_lift_coverage,
                    "context": f"{len(group)} tests",
                    "detail": detail,
                }
            )
    return _alerts(rows)


def data_drift_alerts(data_drift: pd.DataFrame, settings: MonitoringSettings) -> pd.DataFrame:
    """A warning per market whose spend mix or target level left its training window's range."""
    limits = {"spend_mix_psi": settings.spend_mix_psi_warning, "target_shift_sd": settings.target_shift_warning_sd}
    rows = []
    for row in data_drift.to_dict("records"):
        threshold = limits.get(row["metric"])
        if threshold is None or not np.isfinite(row["value"]) or abs(row["value"]) < threshold:
            continue
        context = f"{row['recent_start']}..{row['recent_end']} vs {row['reference_start']}..{row['reference_end']}"
        rows.append(
            {
                **row,
                "challenger_version": row["model_version"],
                "rule": "data_drift",
                "severity": WARNING,
                "value": abs(row["value"]),
                "threshold": threshold,
                "context": context,
                "detail": f"{row['metric']} {row['value']:+.3g}",
            }
        )
    return _alerts(rows)


def severity_counts(alerts: pd.DataFrame) -> dict[str, int]:
    """Alerts per severity, every severity present (0 when none)."""
    counts = alerts["severity"].value_counts() if len(alerts) else pd.Series(dtype=int)
    return {severity: int(counts.get(severity, 0)) for severity in (CRITICAL, WARNING)}


def evaluate(tables: dict[str, pd.DataFrame], settings: MonitoringSettings) -> pd.DataFrame:
    """Every rule over the tables it reads (``posterior_drift``, ``lift_calibration``, ``data_drift``), as one frame."""
    checks = {
        "posterior_drift": drift_alerts,
        "lift_calibration": calibration_alerts,
        "data_drift": data_drift_alerts,
    }
    found = [check(tables[name], settings) for name, check in checks.items() if len(tables.get(name, ()))]
    found = [alerts for alerts in found if len(alerts)]
    return pd.concat(found, ignore_index=True) if found else _alerts([])
