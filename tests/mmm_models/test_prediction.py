"""What-if prediction and the save/load round trip."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from mmm_models import analysis, persistence
from mmm_models.data import DataError
from mmm_models.prediction import predict


def test_plan_over_history_reproduces_the_fit(quick_example_fit) -> None:
    plan = quick_example_fit.data.drop(columns="y")
    forecast = predict(quick_example_fit, plan, include_noise=False)
    expected = analysis.decomposition(quick_example_fit, max_draws=None)["expected"].to_numpy()
    np.testing.assert_allclose(forecast.weekly["expected_mean"], expected, rtol=1e-9)


def future_plan(model, weeks: int = 8) -> pd.DataFrame:
    """Spend as in the last training weeks, dated right after the data."""
    plan = model.data.tail(weeks).drop(columns="y").reset_index(drop=True)
    plan["date_week"] = model.data["date_week"].iloc[-1] + pd.to_timedelta(7 * np.arange(1, weeks + 1), "D")
    return plan


def test_more_spend_more_outcome(quick_example_fit) -> None:
    plan = future_plan(quick_example_fit)
    base = predict(quick_example_fit, plan, include_noise=False)
    more = predict(quick_example_fit, plan.assign(x1=plan["x1"] * 1.5), include_noise=False)
    assert (more.weekly["expected_mean"] > base.weekly["expected_mean"]).all()


def test_spend_before_the_plan_carries_over(quick_example_fit) -> None:
    plan = future_plan(quick_example_fit).assign(x1=0.0, x2=0.0)
    with_history = predict(quick_example_fit, plan, include_noise=False).weekly["expected_mean"]
    silent = quick_example_fit.data.copy()
    silent.loc[silent.index[-8:], ["x1", "x2"]] = 0.0
    no_history = predict(replace(quick_example_fit, data=silent), plan, include_noise=False).weekly["expected_mean"]
    carry_over = (with_history - no_history).to_numpy()
    assert carry_over[0] > 0  # last training weeks' spend still works in the first plan week
    np.testing.assert_allclose(carry_over[7:], 0.0, atol=1e-9)  # gone after l_max - 1 = 7 weeks
    # a plan that starts later inherits less carry-over: the gap weeks count as zero spend
    later = plan.assign(date_week=plan["date_week"] + pd.Timedelta(weeks=3))
    later_carry = (
        predict(quick_example_fit, later, include_noise=False).weekly["expected_mean"]
        - predict(replace(quick_example_fit, data=silent), later, include_noise=False).weekly["expected_mean"]
    )
    assert 0 < later_carry.iloc[0] < carry_over[0]


def test_quantiles_are_ordered(quick_example_fit) -> None:
    forecast = predict(quick_example_fit, quick_example_fit.data.tail(10).drop(columns="y"))
    q = forecast.weekly[["q0.05", "q0.25", "q0.5", "q0.75", "q0.95"]].to_numpy()
    assert np.all(np.diff(q, axis=1) >= 0)
    assert forecast.total["q0.05"] < forecast.total["q0.5"] < forecast.total["q0.95"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.drop(columns="x2"), "missing columns ['x2']"),
        (lambda p: p.assign(x1=-1.0), "channel 'x1' has negative spend"),
    ],
    ids=["unknown-or-missing-channel", "negative-spend"],
)
def test_bad_plan_is_refused(quick_example_fit, mutate, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        predict(quick_example_fit, mutate(quick_example_fit.data.tail(4).drop(columns="y")))


def test_plan_channels_matched_by_name_not_position(quick_example_fit) -> None:
    plan = quick_example_fit.data.tail(6).drop(columns="y")
    reordered = plan[["x2", "t", "date_week", "event_2", "x1", "event_1"]]
    a = predict(quick_example_fit, plan, include_noise=False).weekly["expected_mean"]
    b = predict(quick_example_fit, reordered, include_noise=False).weekly["expected_mean"]
    np.testing.assert_array_equal(a, b)


def test_save_load_round_trip_gives_identical_predictions(quick_example_fit, tmp_path) -> None:
    persistence.save(quick_example_fit, tmp_path / "model")
    loaded = persistence.load(tmp_path / "model")
    plan = quick_example_fit.data.tail(13).drop(columns="y")
    np.testing.assert_array_equal(predict(quick_example_fit, plan).draws, predict(loaded, plan).draws)
    assert loaded.spec == quick_example_fit.spec and loaded.scaling == quick_example_fit.scaling
    assert loaded.train_weeks == quick_example_fit.train_weeks


def test_load_names_missing_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"posterior\.nc"):
        persistence.load(tmp_path)


def test_what_if_of_the_baseline_itself_is_zero(quick_example_fit) -> None:
    from mmm_models.prediction import compare_scenarios

    plan = future_plan(quick_example_fit)
    same = compare_scenarios(quick_example_fit, plan, plan.copy())
    assert np.all(same.draws == 0.0)
    assert same.difference["hdi_low"] == same.difference["hdi_high"] == 0.0


def test_what_if_credits_carry_over_past_the_plan(quick_example_fit) -> None:
    from mmm_models.prediction import compare_scenarios

    plan = future_plan(quick_example_fit)
    late = plan.copy()
    late.loc[late.index[-1], "x1"] += 1.0  # one more unit of x1 in the plan's last week
    result = compare_scenarios(quick_example_fit, late, plan)
    assert result.difference["hdi_low"] > 0
    # most of the adstocked effect lands after the plan: the spill weeks carry part of the difference
    spill = result.weekly["mean"].iloc[len(plan) :].sum()
    assert spill > 0 and len(result.weekly) == len(plan) + 7
