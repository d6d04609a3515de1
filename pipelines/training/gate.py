"""The promotion gate: typed checks of a fitted version against configured thresholds.

Each check keeps its value, threshold and verdict, so that a reviewer sees in the registry (as tags
on the model version) and in ``model_runs`` exactly why a version passed or failed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from pipelines.config import GateSettings


@dataclass(frozen=True)
class GateCheck:
    """One threshold check: ``value`` must be ``rule`` (<= or >=) ``threshold``."""

    name: str
    value: float | None
    rule: str
    threshold: float
    passed: bool

    def describe(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.4g}"
        return f"{'pass' if self.passed else 'FAIL'}: {shown} {self.rule} {self.threshold:g}"

    def to_dict(self) -> dict:
        return asdict(self)


def _check(name: str, value: float | None, rule: str, threshold: float) -> GateCheck:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return GateCheck(name, None, rule, threshold, passed=False)
    passed = value <= threshold if rule == "<=" else value >= threshold
    return GateCheck(name, float(value), rule, threshold, passed)


def evaluate_gate(diagnostics: dict[str, float | None], gate: GateSettings) -> list[GateCheck]:
    """Convergence and holdout checks from a run's diagnostics (``mmm_models.diagnostics`` field names).

    The holdout check compares the error on held-out weeks with the error in sample (WAPE, which,
    unlike MAPE, survives weeks near zero). A ratio, not an absolute level, because markets differ in
    how noisy they are: a model that forecasts its holdout about as well as it fits its history is
    fine even where the noise is large. For i.i.d. noise the ratio's spread over 13 weeks is about
    0.2, so the default of 1.5 is a ~2.5-sd band. An absolute MAPE ceiling can be added by config.
    Without held-out weeks the holdout checks are not applicable and are left out, rather than passed.
    """
    checks = [
        _check("max_rhat", diagnostics.get("max_rhat"), "<=", gate.max_rhat),
        _check("min_ess_bulk", diagnostics.get("min_ess_bulk"), ">=", gate.min_ess_bulk),
        _check("divergences", diagnostics.get("divergences"), "<=", gate.max_divergences),
    ]
    if diagnostics.get("holdout_weeks"):
        holdout, train = diagnostics.get("wape_holdout"), diagnostics.get("wape_train")
        ratio = holdout / train if holdout is not None and train else None
        checks.append(_check("holdout_wape_ratio", ratio, "<=", gate.max_holdout_wape_ratio))
        if gate.max_holdout_mape is not None:
            checks.append(_check("holdout_mape", diagnostics.get("mape_holdout"), "<=", gate.max_holdout_mape))
    return checks


def failures(checks: list[GateCheck]) -> list[GateCheck]:
    return [c for c in checks if not c.passed]
