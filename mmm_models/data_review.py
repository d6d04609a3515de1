"""The pre-fit data review: can one market's weekly data answer the questions an MMM asks of it?

After Meridian's exploratory checks, run on one market's weekly frame before any fit: per channel,
whether its spend moves at all (coefficient of variation, weeks without spend, no spend in the whole
window); across channels, whether their spends move apart enough to be told from each other (pairwise
correlation, condition number of the standardised spend matrix, variance inflation factors); and the
target, whether it moves at all and whether it moves with anything (the R^2 of a least-squares fit on
the channels, controls, a trend and yearly seasonality).

Each problem is a ``DataFinding`` with a severity: ``warning`` (the fit goes ahead; the finding is
recorded and shown) or ``exclusion`` (the data cannot answer at all: no channel's spend varies, or the
target is constant). The thresholds are ``DataReviewThresholds``, each default with its reason. Pure
NumPy and pandas: no Spark, MLflow or Prefect.

>>> from mmm_models.simulator import SimulationConfig, simulate_market
>>> market = simulate_market(SimulationConfig(correlated=("tv", "search")), seed=1)
>>> review = review_market_data(market.data, ["tv", "search", "social", "display"], ["price_index"], target="y")
>>> [f.check for f in review.warnings]
['spend_correlation']
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:  # annotations only: the platform config imports the thresholds, and `mmm --help` loads no pandas
    import pandas as pd

Severity = Literal["warning", "exclusion"]
WARNING, EXCLUSION = "warning", "exclusion"
YEAR_WEEKS = 365.25 / 7


@dataclass(frozen=True)
class DataReviewThresholds:
    """The limits of the data review; each default says why it is where it is.

    Calibrated on the simulator (``mmm_models.simulator``): its clean markets (always-on, flighted and
    pulsed channels, 156 weeks) raise no finding over many seeds, and its ``correlated`` pair is named.
    """

    # A channel whose weekly spend varies by less than 10% of its mean moves the target by less than a
    # tenth of its own effect from week to week: the model cannot tell its effect from the intercept
    # (the simulator's channels, always-on the steadiest, ran at CV 0.34 or more over 200 seeds).
    min_spend_cv: float = 0.1
    # A channel dark in more than 80% of weeks is measured on a handful of bursts: its effect rests on
    # the few weeks it ran. The simulator's flighted channels were dark in at most 54% of weeks over 200
    # seeds, and TV flights commonly are off half the year; four weeks in five is a channel mostly off.
    max_zero_share: float = 0.8
    # Two channels whose spends correlate above 0.9 share 81% of their weekly variation: the data split
    # their joint effect between them mostly by the priors (the simulator's ``correlated`` pair ran at
    # 0.95-0.98 over 200 seeds; its independent channels stayed below 0.4). Meridian errors only at 0.999.
    max_pair_correlation: float = 0.9
    # kappa = sqrt(largest / smallest eigenvalue) of the channels' correlation matrix. 10 is the usual
    # "strong collinearity" mark for a standardised design (Belsley's 30 is for unstandardised columns):
    # one direction of the spend mix then varies 10x less than the main one. Independent channels gave
    # 1.0-1.6 in the simulator; a pair at r = 0.98 alone gives 10. Named: the channels with VIF > max_vif.
    max_condition_number: float = 10.0
    # The variance inflation factor 10 (R^2 = 0.9 of a channel on the others) is the textbook mark.
    max_vif: float = 10.0
    # A target whose weekly CV is below 1% bounds what media can have moved week to week to 1% of sales:
    # less than typical measurement noise in sales. The simulator's targets ran at CV 0.065 or more.
    min_target_cv: float = 0.01
    # The target "does not move with anything" when a least-squares fit on the channels, controls, a
    # linear trend and two yearly harmonics explains less than 10% of its variance (adjusted R^2). A
    # pure-noise target on the simulator's spends gave at most 0.096 over 200 seeds (156 weeks, 4
    # channels, a control); the simulator's markets gave 0.60 or more.
    min_target_r2: float = 0.1
    # Weeks with a target needed before the target checks run: fewer leave the regression almost
    # without degrees of freedom (the platform's own minimum history is 52 weeks).
    min_weeks: int = 26
    # Exclusions are kept for data that cannot answer at all: no channel varies (every one constant or
    # without spend), or the target is constant. Anything short of that is a warning: a person decides.
    exclude_when_no_channel_varies: bool = True
    exclude_constant_target: bool = True

    def __post_init__(self) -> None:
        for name in ("min_spend_cv", "min_target_cv", "max_condition_number", "max_vif"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_zero_share", "max_pair_correlation"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)}")
        if self.min_weeks < 3:
            raise ValueError(f"min_weeks must be at least 3, got {self.min_weeks}")


@dataclass(frozen=True)
class DataFinding:
    """One problem with a market's data: the check, its severity, the value it turned on and why."""

    check: str
    severity: Severity
    message: str
    value: float | None = None
    threshold: float | None = None
    subject: str = ""  # the channel, the pair ("tv~search"), or "" for the market

    def describe(self) -> str:
        return f"{self.check}: {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DataReview:
    """A market's findings, and the figures they were read from (per channel, design, target)."""

    findings: tuple[DataFinding, ...]
    figures: dict = field(default_factory=dict)

    @property
    def warnings(self) -> list[DataFinding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def exclusions(self) -> list[DataFinding]:
        return [f for f in self.findings if f.severity == EXCLUSION]

    @property
    def excluded(self) -> bool:
        return bool(self.exclusions)

    def checks(self) -> list[str]:
        """The names of the checks that found something, each once, in order."""
        return list(dict.fromkeys(f.check for f in self.findings))

    def summary(self) -> str:
        """Every finding as ``check: message``, joined by ``; `` (empty when the data look fine)."""
        return "; ".join(f.describe() for f in self.findings)


def review_market_data(
    frame: pd.DataFrame,
    channels: Sequence[str],
    controls: Sequence[str] = (),
    target: str = "target",
    date_column: str = "date",
    thresholds: DataReviewThresholds | None = None,
) -> DataReview:
    """Review one market's weekly frame (a row per week: the date, target, spend per channel, controls).

    Weeks whose target is missing (gaps) count for the spend checks, not for the target's. A missing
    spend counts as no spend, as gold writes it.
    """
    limits = thresholds or DataReviewThresholds()
    data = frame.sort_values(date_column).reset_index(drop=True) if date_column in frame else frame
    spend = data[list(channels)].astype(float).fillna(0.0)
    findings, figures = _channel_checks(spend, limits)
    varying = [c for c in channels if figures["channels"][c]["varies"]]
    design_findings, figures["design"] = _design_checks(spend[varying], limits)
    findings += design_findings
    target_findings, figures["target"] = _target_checks(data, spend[varying], list(controls), target, limits)
    findings += target_findings
    return DataReview(tuple(findings), figures)


def _channel_checks(spend: pd.DataFrame, limits: DataReviewThresholds) -> tuple[list[DataFinding], dict]:
    findings, per_channel = [], {}
    for channel in spend.columns:
        x = spend[channel].to_numpy()
        mean = float(x.mean()) if len(x) else 0.0
        cv = float(x.std() / mean) if mean > 0 else 0.0
        zero_share = float(np.mean(x <= 0)) if len(x) else 1.0
        varies = mean > 0 and float(x.std()) > 1e-9 * mean
        per_channel[channel] = {"mean": mean, "cv": cv, "zero_share": zero_share, "varies": varies}
        if mean <= 0:
            findings.append(
                DataFinding("channel_no_spend", WARNING, f"{channel} has no spend in {len(x)} weeks", 0.0, 0.0, channel)
            )
            continue
        if cv < limits.min_spend_cv:
            findings.append(
                DataFinding(
                    "channel_spend_cv",
                    WARNING,
                    f"{channel} spend barely varies (CV {cv:.3f} < {limits.min_spend_cv:g}): "
                    "its effect cannot be told from the baseline",
                    cv,
                    limits.min_spend_cv,
                    channel,
                )
            )
        if zero_share > limits.max_zero_share:
            findings.append(
                DataFinding(
                    "channel_zero_weeks",
                    WARNING,
                    f"{channel} dark in {zero_share:.0%} of weeks (> {limits.max_zero_share:.0%}): "
                    f"its effect rests on {round((1 - zero_share) * len(x))} weeks with spend",
                    zero_share,
                    limits.max_zero_share,
                    channel,
                )
            )
    if limits.exclude_when_no_channel_varies and not any(c["varies"] for c in per_channel.values()):
        findings.append(
            DataFinding(
                "no_media_variation",
                EXCLUSION,
                f"no channel's spend varies over {len(spend)} weeks ({', '.join(spend.columns) or 'no channels'}): "
                "the data cannot say what media does",
                0.0,
                None,
            )
        )
    return findings, {"channels": per_channel}


def _design_checks(spend: pd.DataFrame, limits: DataReviewThresholds) -> tuple[list[DataFinding], dict]:
    names = list(spend.columns)
    if len(names) < 2 or len(spend) < 3:
        return [], {"max_abs_correlation": None, "condition_number": None, "vif": {}}
    corr = np.corrcoef(spend.to_numpy(), rowvar=False)
    findings, pairs = [], []
    for (i, a), (j, b) in itertools.combinations(enumerate(names), 2):
        if abs(corr[i, j]) > limits.max_pair_correlation:
            pairs.append((abs(corr[i, j]), f"{a}~{b}", corr[i, j]))
    for _, pair, r in sorted(pairs, reverse=True):
        findings.append(
            DataFinding(
                "spend_correlation",
                WARNING,
                f"{pair.replace('~', ' and ')} spend together (r {r:+.3f}, |r| > {limits.max_pair_correlation:g}): "
                "the data cannot split their effects",
                abs(r),
                limits.max_pair_correlation,
                pair,
            )
        )
    eigenvalues = np.linalg.eigvalsh(corr)
    smallest = max(float(eigenvalues[0]), 0.0)
    kappa = math.inf if smallest <= 1e-12 * float(eigenvalues[-1]) else math.sqrt(float(eigenvalues[-1]) / smallest)
    vif = _vif(spend)
    if kappa > limits.max_condition_number:
        worst = sorted(vif.items(), key=lambda item: -item[1])
        named = [f"{c} (VIF {_fmt(v)})" for c, v in worst if v > limits.max_vif] or [
            f"{c} (VIF {_fmt(v)})" for c, v in worst[:2]
        ]
        findings.append(
            DataFinding(
                "condition_number",
                WARNING,
                f"media design is collinear (condition number {_fmt(kappa)} > {limits.max_condition_number:g}): "
                f"most collinear {', '.join(named)}",
                kappa,
                limits.max_condition_number,
                ",".join(c for c, v in worst if v > limits.max_vif) or ",".join(c for c, _ in worst[:2]),
            )
        )
    off_diagonal = np.abs(corr[~np.eye(len(names), dtype=bool)])
    figures = {"max_abs_correlation": float(off_diagonal.max()), "condition_number": kappa, "vif": vif}
    return findings, figures


def _vif(spend: pd.DataFrame) -> dict[str, float]:
    """Variance inflation factors: 1 / (1 - R^2) of each channel on the others (inf when the others explain it)."""
    z = spend.to_numpy()
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    found = {}
    for j, channel in enumerate(spend.columns):
        others = np.column_stack([np.ones(len(z)), np.delete(z, j, axis=1)])
        coef, *_ = np.linalg.lstsq(others, z[:, j], rcond=None)
        unexplained = float(np.mean((z[:, j] - others @ coef) ** 2))  # 1 - R^2 (z has unit variance)
        found[channel] = math.inf if unexplained < 1e-10 else 1.0 / unexplained
    return found


def _target_checks(
    data: pd.DataFrame, spend: pd.DataFrame, controls: list[str], target: str, limits: DataReviewThresholds
) -> tuple[list[DataFinding], dict]:
    y_all = data[target].astype(float).to_numpy()
    observed = np.isfinite(y_all)
    weeks = int(observed.sum())
    figures: dict = {"weeks": weeks, "cv": None, "r2": None, "adjusted_r2": None, "max_abs_correlation": None}
    if weeks < limits.min_weeks:
        return [], figures
    y = y_all[observed]
    mean, sd = float(y.mean()), float(y.std())
    cv = sd / abs(mean) if mean != 0 else (math.inf if sd > 0 else 0.0)
    figures["cv"] = cv
    if sd <= 1e-12 * max(abs(mean), 1.0):
        severity = EXCLUSION if limits.exclude_constant_target else WARNING
        return [
            DataFinding("target_constant", severity, f"the target is constant ({mean:g}) over {weeks} weeks", 0.0)
        ], figures
    findings = []
    if cv < limits.min_target_cv:
        findings.append(
            DataFinding(
                "target_cv",
                WARNING,
                f"the target barely varies (CV {cv:.4f} < {limits.min_target_cv:g})",
                cv,
                limits.min_target_cv,
            )
        )
    regressors = spend.assign(**{c: data[c].astype(float) for c in controls})
    correlations = [abs(_corr(regressors[c].to_numpy()[observed], y)) for c in regressors.columns]
    correlations = [c for c in correlations if np.isfinite(c)]
    figures["max_abs_correlation"] = max(correlations) if correlations else None
    r2, adjusted = _regression_r2(y, _design(data, regressors)[observed])
    figures.update(r2=r2, adjusted_r2=adjusted)
    if adjusted is not None and adjusted < limits.min_target_r2:
        strongest = (
            f"; its largest |r| with a channel or control is {figures['max_abs_correlation']:.2f}"
            if (correlations)
            else ""
        )
        findings.append(
            DataFinding(
                "target_unexplained",
                WARNING,
                f"the target does not move with anything: channels, controls, trend and season explain "
                f"{adjusted:.1%} of its variance (adjusted R2 < {limits.min_target_r2:g}){strongest}",
                adjusted,
                limits.min_target_r2,
            )
        )
    return findings, figures


def _design(data: pd.DataFrame, regressors: pd.DataFrame) -> np.ndarray:
    """Intercept, the standardised regressors, a linear trend and two yearly harmonics, one row per week."""
    n = len(data)
    t = np.arange(n, dtype=float)
    columns = [np.ones(n), t / max(n - 1, 1)]
    for k in (1, 2):
        columns += [np.sin(2 * np.pi * k * t / YEAR_WEEKS), np.cos(2 * np.pi * k * t / YEAR_WEEKS)]
    for name in regressors.columns:
        x = regressors[name].to_numpy()
        x = np.where(np.isfinite(x), x, np.nanmean(x) if np.isfinite(x).any() else 0.0)
        if x.std() > 0:
            columns.append((x - x.mean()) / x.std())
    return np.column_stack(columns)


def _regression_r2(y: np.ndarray, design: np.ndarray) -> tuple[float | None, float | None]:
    n, k = design.shape
    if n <= k + 1:
        return None, None
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total
    rank = int(np.linalg.matrix_rank(design))
    adjusted = 1.0 - (1.0 - r2) * (n - 1) / max(n - rank, 1)
    return r2, adjusted


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    if x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def _fmt(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.3g}"
