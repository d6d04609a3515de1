"""Alert rules at their thresholds, and alert identity across reruns."""

from __future__ import annotations

import pandas as pd

from monitoring.rules import calibration_alerts, data_drift_alerts, drift_alerts, evaluate, severity_counts
from monitoring.tables import alert_ids
from pipelines.config import MonitoringSettings

SETTINGS = MonitoringSettings()
KEYS = {"brand": "acme", "market": "DE", "model_name": "mmm_acme_de"}


def drift_row(channel: str, shift: float, overlap: float, metric: str = "roas") -> dict:
    return {
        **KEYS,
        "champion_version": "1",
        "challenger_version": "2",
        "channel": channel,
        "metric": metric,
        "mean_shift_sd": shift,
        "hdi_overlap": overlap,
        "champion_mean": 1.0,
        "challenger_mean": 1.0 + shift,
        "champion_hdi_low": 0.5,
        "champion_hdi_high": 1.5,
        "challenger_hdi_low": 0.5 + shift,
        "challenger_hdi_high": 1.5 + shift,
    }


def test_drift_severity_follows_shift_and_overlap() -> None:
    drift = pd.DataFrame(
        [
            drift_row("quiet", 1.9, 0.6),
            drift_row("warned", -2.1, 0.4),  # the size of the shift counts, not its sign
            drift_row("critical", 3.5, 0.05),
            drift_row("big_but_overlapping", 3.5, 0.5),  # shift alone is a warning
            drift_row("unwatched", 9.0, 0.0, metric="adstock_half_life"),
        ]
    )
    settings = SETTINGS.model_copy(update={"drift_metrics": ["roas"]})
    alerts = drift_alerts(drift, settings).set_index("channel")
    assert set(alerts.index) == {"warned", "critical", "big_but_overlapping"}
    assert alerts.loc["critical", "severity"] == "critical" and alerts.loc["critical", "threshold"] == 3.0
    assert alerts.loc["warned", "severity"] == "warning" and alerts.loc["warned", "value"] == 2.1
    assert alerts.loc["big_but_overlapping", "severity"] == "warning"
    assert alerts.loc["critical", "challenger_version"] == "2" and "+3.5 sd" in alerts.loc["critical", "detail"]


def calibration_rows(z_scores: list[float], inside: list[bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            **KEYS,
            "model_version": "2",
            "channel": "tv",
            "start": pd.date_range("2024-01-01", periods=len(z_scores), freq="28D"),
            "end": pd.date_range("2024-01-22", periods=len(z_scores), freq="28D"),
            "lift": 100.0,
            "lift_se": 10.0,
            "model_lift_mean": 90.0,
            "model_lift_hdi_low": 80.0,
            "model_lift_hdi_high": 100.0,
            "z_score": z_scores,
            "inside_predictive_interval": inside,
        }
    )


def test_each_contradicted_lift_test_alerts_and_low_coverage_warns() -> None:
    alerts = calibration_alerts(calibration_rows([0.5, -2.6, 4.2], [True, False, False]), SETTINGS)
    per_test = alerts[alerts["rule"] == "lift_calibration"].sort_values("value")
    assert list(per_test["severity"]) == ["warning", "critical"]
    assert per_test["context"].nunique() == 2  # each test is its own alert, named by its window
    coverage = alerts[alerts["rule"] == "lift_coverage"]
    assert len(coverage) == 1 and coverage["value"].iloc[0] == 1 / 3 and coverage["severity"].iloc[0] == "warning"
    # two tests are too few to judge coverage
    assert "lift_coverage" not in set(calibration_alerts(calibration_rows([3.0, 3.0], [False, False]), SETTINGS).rule)


def test_data_drift_warns_and_never_blocks() -> None:
    windows = {"reference_start": "2023-01-02", "reference_end": "2024-01-01", "recent_start": "2024-01-08"}
    rows = pd.DataFrame(
        [
            {**KEYS, **windows, "recent_end": "2024-04-01", "model_version": "2", "channel": "(all)",
             "metric": "spend_mix_psi", "value": 0.3},
            {**KEYS, **windows, "recent_end": "2024-04-01", "model_version": "2", "channel": "(all)",
             "metric": "target_shift_sd", "value": -1.0},
        ]
    )  # fmt: skip
    alerts = data_drift_alerts(rows, SETTINGS)
    assert list(alerts["metric"]) == ["spend_mix_psi"] and list(alerts["severity"]) == ["warning"]


def test_alert_ids_are_stable_and_tell_findings_apart() -> None:
    drift = pd.DataFrame([drift_row("tv", 3.5, 0.0), drift_row("search", 3.5, 0.0)])
    first, again = evaluate({"posterior_drift": drift}, SETTINGS), evaluate({"posterior_drift": drift}, SETTINGS)
    assert list(alert_ids(first)) == list(alert_ids(again))  # a rerun finds the same alerts: same ids
    assert alert_ids(first).nunique() == 2
    later = evaluate({"posterior_drift": drift.assign(challenger_version="3")}, SETTINGS)
    assert set(alert_ids(later)).isdisjoint(alert_ids(first))  # the next version's finding is a new alert
    assert severity_counts(first) == {"critical": 2, "warning": 0}
    assert severity_counts(evaluate({}, SETTINGS)) == {"critical": 0, "warning": 0}
