"""The model review's checks: each verdict from inputs that call for it, and the whole review of a fit."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mmm_models import analysis
from mmm_models.diagnostics import diagnose
from pipelines.config import GateSettings, ReviewSettings
from pipelines.training.gate import evaluate_gate
from pipelines.training.review import (
    FAIL,
    PASS,
    REVIEW,
    baseline,
    goodness_of_fit,
    informativeness,
    review_json,
    review_model,
    review_reasons,
    worst,
)

SETTINGS = ReviewSettings()
FIT = {"r2_train": 0.9, "mape_train": 0.03, "wape_train": 0.03, "r2_holdout": 0.8, "mape_holdout": 0.04}


def test_goodness_of_fit_asks_for_review_below_r2_or_behind_the_naive_forecast() -> None:
    good = goodness_of_fit({**FIT, "wape_holdout": 0.04}, {"best": 0.08}, SETTINGS)
    assert good.verdict == PASS and good.value == pytest.approx(0.5)
    behind = goodness_of_fit({**FIT, "wape_holdout": 0.09}, {"best": 0.08}, SETTINGS)
    assert behind.verdict == REVIEW and "does not beat the naive forecast" in behind.message
    poor = goodness_of_fit({**FIT, "r2_train": 0.32, "wape_holdout": 0.04}, {"best": 0.08}, SETTINGS)
    assert poor.verdict == REVIEW and "R2 0.32 < 0.5" in poor.message
    no_holdout = goodness_of_fit({**FIT, "wape_holdout": None}, {"best": None}, SETTINGS)
    assert no_holdout.verdict == PASS and "no holdout" in no_holdout.message


def learning(contraction: float, shift: float, width: float, channel: str = "tv") -> dict:
    return {"channel": channel, "contraction": contraction, "shift_sd": shift, "relative_width": width}


def test_informativeness_tells_not_learned_from_learned_but_too_wide() -> None:
    table = pd.DataFrame(
        [learning(0.8, 2.0, 0.4, "tv"), learning(0.1, 0.2, 0.9, "search"), learning(0.6, 0.5, 2.1, "social")]
    )
    check = informativeness(table, SETTINGS)
    assert check.verdict == REVIEW and check.value == 1.0
    assert check.details["tv"]["identified"] and not check.details["search"]["learned"]
    assert check.details["social"]["learned"] and not check.details["social"]["identified"]
    assert "search not learned" in check.message and "social ROAS not pinned down (90% HDI 2.1x" in check.message
    moved = informativeness(pd.DataFrame([learning(0.1, 1.5, 0.5)]), SETTINGS)  # narrow prior, but it moved
    assert moved.verdict == PASS


def metric_draws(shares: np.ndarray) -> xr.DataArray:
    """``channel_metric_draws``-shaped draws with only the contribution shares filled in."""
    values = np.zeros((*shares.shape, 2))
    values[..., 1] = shares
    channels = [f"c{i}" for i in range(shares.shape[1])]
    return xr.DataArray(
        values,
        dims=("draw", "channel", "metric"),
        coords={"channel": channels, "metric": ["roas", "contribution_share"]},
    )


def test_baseline_fails_when_media_explain_more_than_everything() -> None:
    rng = np.random.default_rng(0)
    plausible = baseline(metric_draws(rng.uniform(0.05, 0.15, (1000, 3))), SETTINGS)
    assert plausible.verdict == PASS and plausible.value == 0.0
    one_channel = np.column_stack([rng.uniform(0.55, 0.65, 1000), rng.uniform(0.0, 0.1, 1000)])
    hungry = baseline(metric_draws(one_channel), SETTINGS)
    assert hungry.verdict == REVIEW and "c0 credited with 60% of sales" in hungry.message
    doubtful = baseline(metric_draws(rng.uniform(0.3, 0.7, (1000, 2))), SETTINGS)  # sum 0.6-1.4: P(< 0) ~ 0.5
    assert doubtful.verdict == REVIEW and "baseline may be negative" in doubtful.message
    impossible = baseline(metric_draws(rng.uniform(0.5, 0.7, (1000, 2))), SETTINGS)  # sum 1.0-1.4
    assert impossible.verdict == FAIL and impossible.value > SETTINGS.negative_baseline_fail


def test_review_of_a_fit_has_every_check_and_the_worst_verdict(quick_example_fit) -> None:
    model = copy.deepcopy(quick_example_fit)
    diagnostics = diagnose(model).to_dict()
    draws = analysis.channel_metric_draws(model, max_draws=500)
    checks = review_model(model, diagnostics, evaluate_gate(diagnostics, GateSettings()), draws, SETTINGS)
    names = [c.name for c in checks]
    assert names[:4] == ["max_rhat", "min_ess_bulk", "divergences", "holdout_wape_ratio"]
    assert names[4:] == ["goodness_of_fit", "informativeness", "baseline", "psis_loo", "versus_champion"]
    loo = checks[names.index("psis_loo")]
    assert loo.details["weeks"] == model.train_weeks and np.isfinite(loo.details["elpd_loo"])
    assert "MB" in loo.message and loo.details["idata_mb"] > 0
    versus = checks[-1]
    assert versus.verdict == PASS and versus.message.startswith("not compared")
    # the example fit against itself: nothing lost
    again = review_model(model, diagnostics, [], draws, SETTINGS, champion=model)
    assert again[-1].value == pytest.approx(0.0) and again[-1].verdict == PASS
    assert worst(checks) == max((c.verdict for c in checks), key=[PASS, REVIEW, FAIL].index)
    cell = json.loads(review_json(checks))
    assert set(cell) == set(names) and cell["informativeness"]["verdict"] in (PASS, REVIEW)


def test_review_reasons_name_the_review_checks_only() -> None:
    cell = json.dumps(
        {
            "max_rhat": {"verdict": PASS, "message": "1.00 <= 1.01"},
            "informativeness": {"verdict": REVIEW, "message": "tv ROAS not pinned down"},
        }
    )
    assert review_reasons(cell) == "informativeness: tv ROAS not pinned down"
    assert review_reasons(None) == "REVIEW"
