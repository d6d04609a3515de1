"""The model review: typed checks of a fitted version with a verdict each, after Meridian's model review.

The gate's checks (convergence, holdout WAPE ratio) are the FAIL checks; the review adds goodness of
fit against naive forecasts, per-channel informativeness of ROAS, baseline sanity, PSIS-LOO and the
comparison with the market's champion. Each check has a name, a verdict (PASS / REVIEW / FAIL), its
main value and a message saying why; the version's verdict is the worst of them. A FAIL version is
rejected (no alias); a REVIEW version becomes ``challenger`` and waits for a person (``mmm approve``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from pipelines.config import ReviewSettings
from pipelines.training.gate import GateCheck

if TYPE_CHECKING:
    import arviz as az
    import xarray as xr

    from mmm_models.fitted import FittedModel

Verdict = Literal["PASS", "REVIEW", "FAIL"]
PASS, REVIEW, FAIL = "PASS", "REVIEW", "FAIL"
_ORDER = {PASS: 0, REVIEW: 1, FAIL: 2}


@dataclass(frozen=True)
class ReviewCheck:
    """One review check: its verdict, the value it turned on, and a message a reviewer can act on."""

    name: str
    verdict: Verdict
    message: str
    value: float | None = None
    details: dict = field(default_factory=dict)  # per channel, or the figures behind the message

    def describe(self) -> str:
        return f"{self.verdict}: {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)


def worst(checks: list[ReviewCheck]) -> Verdict:
    """The version's verdict: the worst of its checks (PASS when there are none)."""
    return max((c.verdict for c in checks), key=_ORDER.__getitem__, default=PASS)


def from_gate(check: GateCheck) -> ReviewCheck:
    """A gate check as a review check: failing it is a FAIL."""
    shown = "n/a" if check.value is None else f"{check.value:.4g}"
    return ReviewCheck(
        check.name, PASS if check.passed else FAIL, f"{shown} {check.rule} {check.threshold:g}", check.value
    )


def goodness_of_fit(diagnostics: dict, naive: dict, settings: ReviewSettings) -> ReviewCheck:
    """R^2, MAPE and WAPE in sample and on the holdout, and the holdout WAPE against the better naive forecast."""
    r2 = diagnostics.get("r2_train")
    figures = {k: diagnostics.get(k) for k in ("r2_train", "mape_train", "wape_train", "r2_holdout", "mape_holdout")}
    figures.update(wape_holdout=diagnostics.get("wape_holdout"), naive_wape=naive.get("best"))
    text = f"R2 {_fmt(r2)} in sample, {_fmt(figures['r2_holdout'])} on the holdout; WAPE {_fmt(figures['wape_train'])}"
    problems = []
    if r2 is None or _nan(r2) or r2 < settings.min_r2_train:
        problems.append(f"in-sample R2 {_fmt(r2)} < {settings.min_r2_train:g}")
    ratio = None
    if naive.get("best") and figures["wape_holdout"] is not None:
        ratio = figures["wape_holdout"] / naive["best"]
        text += f", holdout WAPE {_fmt(figures['wape_holdout'])} vs naive {_fmt(naive['best'])} (ratio {ratio:.2f})"
        if ratio > settings.max_naive_wape_ratio:
            problems.append(
                f"does not beat the naive forecast on the holdout ({ratio:.2f} > {settings.max_naive_wape_ratio:g})"
            )
    else:
        text += "; no holdout: not compared with a naive forecast"
    figures["naive_wape_ratio"] = ratio
    verdict = REVIEW if problems else PASS
    return ReviewCheck("goodness_of_fit", verdict, "; ".join([*problems, text]), ratio, figures)


def informativeness(learning, settings: ReviewSettings) -> ReviewCheck:
    """Per channel: learned from the data (contraction or shift) and identified (HDI no wider than the mean)."""
    details, problems = {}, []
    for row in learning.itertuples(index=False):
        learned = row.contraction >= settings.min_roas_contraction or row.shift_sd >= settings.min_roas_shift_sd
        identified = learned and bool(row.relative_width <= settings.max_roas_relative_width)
        details[row.channel] = {
            "contraction": _plain(row.contraction),
            "shift_sd": _plain(row.shift_sd),
            "relative_width": _plain(row.relative_width),
            "learned": bool(learned),
            "identified": identified,
        }
        if not learned:
            problems.append(f"{row.channel} not learned (posterior about its prior: contraction {row.contraction:.2f})")
        elif not identified:
            problems.append(f"{row.channel} ROAS not pinned down (90% HDI {row.relative_width:.1f}x its mean)")
    identified = sum(d["identified"] for d in details.values())
    message = "; ".join(problems) if problems else f"every channel's ROAS learned and identified ({identified})"
    return ReviewCheck("informativeness", REVIEW if problems else PASS, message, float(identified), details)


def baseline(metrics: xr.DataArray, settings: ReviewSettings) -> ReviewCheck:
    """The probability of a negative baseline share, and the largest channel share."""
    from mmm_models.review import baseline_share_draws

    shares = baseline_share_draws(metrics)
    negative = float(np.mean(shares < 0))
    channel_shares = metrics.sel(metric="contribution_share").mean("draw")
    top = str(channel_shares.idxmax("channel").item())
    top_share = float(channel_shares.max())
    details = {"negative_baseline_probability": negative, "baseline_share": float(np.mean(shares)), top: top_share}
    text = f"baseline share {np.mean(shares):.2f} (P(< 0) {negative:.2f}); largest channel {top} {top_share:.2f}"
    if negative > settings.negative_baseline_fail:
        return ReviewCheck("baseline", FAIL, f"negative baseline: {text}", negative, details)
    problems = []
    if negative > settings.negative_baseline_review:
        problems.append(f"baseline may be negative (P {negative:.2f} > {settings.negative_baseline_review:g})")
    if top_share > settings.max_channel_share:
        problems.append(f"{top} credited with {top_share:.0%} of sales (> {settings.max_channel_share:.0%})")
    return ReviewCheck("baseline", REVIEW if problems else PASS, "; ".join([*problems, text]), negative, details)


def psis_loo(elpd: az.ELPDData, sizes: dict[str, int], settings: ReviewSettings) -> ReviewCheck:
    """ELPD, p_loo and the share of weeks whose Pareto k is bad; the saved predictive groups' size."""
    k = np.asarray(elpd.pareto_k)
    bad = float(np.mean(k > settings.max_pareto_k))
    megabytes = sum(sizes.values()) / 1e6
    details = {
        "elpd_loo": float(elpd.elpd_loo),
        "se": float(elpd.se),
        "p_loo": float(elpd.p_loo),
        "max_pareto_k": float(k.max()),
        "bad_k_share": bad,
        "weeks": int(k.size),
        "idata_mb": megabytes,
    }
    text = (
        f"ELPD {elpd.elpd_loo:.1f} (se {elpd.se:.1f}), p_loo {elpd.p_loo:.1f}, "
        f"{bad:.0%} of {k.size} weeks with Pareto k > {settings.max_pareto_k:g}; InferenceData {megabytes:.1f} MB"
    )
    if bad > settings.max_bad_k_share:
        return ReviewCheck("psis_loo", REVIEW, f"LOO unreliable: {text}", bad, details)
    return ReviewCheck("psis_loo", PASS, text, bad, details)


def versus_champion(
    elpd: az.ELPDData, champion: az.ELPDData | None, why_none: str, settings: ReviewSettings
) -> ReviewCheck:
    """Challenger minus champion ELPD on their shared weeks; REVIEW when it lost clearly."""
    from mmm_models.predictive import elpd_difference

    if champion is None:
        return ReviewCheck("versus_champion", PASS, f"not compared: {why_none}")
    found = elpd_difference(elpd, champion)
    diff, se, weeks = found["elpd_diff"], found["se"], int(found["weeks"])
    text = f"ELPD {diff:+.1f} (se {se:.1f}) against the champion over {weeks} shared weeks"
    if weeks < 2:
        return ReviewCheck("versus_champion", PASS, f"not compared: {weeks} shared weeks", None, found)
    if diff < -settings.max_elpd_loss_se * se:
        return ReviewCheck("versus_champion", REVIEW, f"predicts worse than the champion: {text}", diff, found)
    return ReviewCheck("versus_champion", PASS, text, diff, found)


def review_model(
    model: FittedModel,
    diagnostics: dict,
    gate_checks: list[GateCheck],
    metrics: xr.DataArray,
    settings: ReviewSettings,
    champion: FittedModel | None = None,
    why_no_champion: str = "the market has no champion",
) -> list[ReviewCheck]:
    """Every check of one fitted market (predictive groups added to ``model.idata`` on the way).

    ``metrics`` are the fit's ``channel_metric_draws``; ``champion`` the market's current champion
    (its saved InferenceData must have a ``log_likelihood`` group to be compared).
    """
    from mmm_models import predictive
    from mmm_models.review import naive_holdout_wape, prior_metric_draws, roas_learning

    predictive.add_predictive_groups(model, settings.max_predictive_draws, settings.prior_draws)
    checks = [from_gate(c) for c in gate_checks]
    checks.append(goodness_of_fit(diagnostics, naive_holdout_wape(model), settings))
    checks.append(informativeness(roas_learning(metrics, prior_metric_draws(model)), settings))
    checks.append(baseline(metrics, settings))
    elpd = predictive.loo(model)
    checks.append(psis_loo(elpd, predictive.idata_nbytes(model), settings))
    champion_elpd = None
    if champion is not None and "log_likelihood" in champion.idata.groups():
        champion_elpd = predictive.loo(champion)
    elif champion is not None:
        why_no_champion = "the champion's saved model has no log_likelihood (trained before the review)"
    checks.append(versus_champion(elpd, champion_elpd, why_no_champion, settings))
    return checks


def review_json(checks: list[ReviewCheck]) -> str:
    """The ``model_runs.review`` cell: each check's verdict, value and message, by name."""
    return json.dumps({c.name: {"verdict": c.verdict, "value": c.value, "message": c.message} for c in checks})


def _nan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or _nan(value) else f"{value:.3g}"


def _plain(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def review_reasons(review: str | None) -> str:
    """The REVIEW checks of a ``model_runs.review`` cell, as one line (their names and messages)."""
    checks = json.loads(review) if review else {}
    found = [f"{name}: {c['message']}" for name, c in checks.items() if c.get("verdict") == REVIEW]
    return " | ".join(found)[:1000] or "REVIEW"
