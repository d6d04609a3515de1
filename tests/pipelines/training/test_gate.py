"""The promotion gate's checks: what passes, what fails, and how each verdict reads."""

from __future__ import annotations

from pipelines.config import GateSettings
from pipelines.training.gate import evaluate_gate, failures


def test_gate_passes_fails_and_explains() -> None:
    gate = GateSettings()
    good = {
        "max_rhat": 1.004,
        "min_ess_bulk": 900.0,
        "divergences": 0,
        "wape_train": 0.05,
        "wape_holdout": 0.07,
        "mape_holdout": 0.9,  # a week near zero: large MAPE, and no absolute ceiling by default
        "holdout_weeks": 13,
    }
    assert failures(evaluate_gate(good, gate)) == []
    overfit = failures(evaluate_gate({**good, "wape_holdout": 0.2}, gate))
    assert [c.name for c in overfit] == ["holdout_wape_ratio"] and overfit[0].describe() == "FAIL: 4 <= 2.5"
    ceiling = GateSettings(max_holdout_mape=0.25)
    assert [c.name for c in failures(evaluate_gate(good, ceiling))] == ["holdout_mape"]
    bad = {**good, "max_rhat": 1.05, "divergences": 3}
    failed = failures(evaluate_gate(bad, gate))
    assert [c.name for c in failed] == ["max_rhat", "divergences"]
    assert failed[0].describe() == "FAIL: 1.05 <= 1.01"
    no_holdout = {**good, "holdout_weeks": 0, "wape_holdout": None}
    assert "holdout_wape_ratio" not in [c.name for c in evaluate_gate(no_holdout, gate)]
    assert failures(evaluate_gate({**good, "wape_holdout": float("nan")}, gate))[0].name == "holdout_wape_ratio"
