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

    Without held-out weeks the holdout check is not applicable and is left out, rather than passed.
    """
    checks = [
        _check("max_rhat", diagnostics.get("max_rhat"), "<=", gate.max_rhat),
        _check("min_ess_bulk", diagnostics.get("min_ess_bulk"), ">=", gate.min_ess_bulk),
        _check("divergences", diagnostics.get("divergences"), "<=", gate.max_divergences),
    ]
    if diagnostics.get("holdout_weeks"):
        checks.append(_check("holdout_mape", diagnostics.get("mape_holdout"), "<=", gate.max_holdout_mape))
    return checks


def failures(checks: list[GateCheck]) -> list[GateCheck]:
    return [c for c in checks if not c.passed]
