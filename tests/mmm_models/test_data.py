"""Bad data gets a clear error; scaling and design arrays are what the model expects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmm_models.data import (
    DataError,
    ScalingFactors,
    build_design,
    fourier_features,
    padded_length,
    validate_market_frame,
)
from mmm_models.spec import ModelSpec


def frame_of(weeks: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "date": pd.date_range("2023-01-02", periods=weeks, freq="7D"),
            "y": rng.uniform(50, 100, weeks),
            "tv": rng.uniform(0, 10, weeks),
            "search": rng.uniform(0, 5, weeks),
        }
    )


SPEC = ModelSpec.from_dict(
    {"name": "m", "target": {"column": "y"}, "channels": [{"name": "tv"}, {"name": "search"}], "min_weeks": 20}
)


def test_valid_frame_passes_and_sorts() -> None:
    frame = frame_of().sample(frac=1, random_state=0)
    out = validate_market_frame(SPEC, frame)
    assert out["date"].is_monotonic_increasing and len(out) == 40


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda f: f.assign(tv=f.tv.where(f.index != 3)),
            "column 'tv' has missing or non-numeric values in weeks 2023-01-23",
        ),
        (
            lambda f: f.assign(search=f.search.where(f.index != 5, -1.0)),
            "channel 'search' has negative spend in weeks 2023-02-06",
        ),
        (lambda f: f.head(12), "12 weeks of history, the model needs at least 20"),
        (lambda f: f.drop(index=[10]), "missing weeks after 2023-03-06"),
        (lambda f: pd.concat([f, f.tail(1)]), "duplicate weeks 2023-10-02"),
        (lambda f: f.assign(date=f.date + pd.Timedelta(days=2)), "weeks must start on Monday"),
        (lambda f: f.drop(columns="search"), "missing columns ['search']"),
        (lambda f: f.assign(y=5.0), "target 'y' is constant"),
        (lambda f: f.assign(tv="lots"), "column 'tv' has missing or non-numeric values"),
        (lambda f: f.iloc[0:0], "no rows"),
    ],
    ids=[
        "nan",
        "negative-spend",
        "too-few-weeks",
        "missing-week",
        "duplicate-week",
        "not-monday",
        "missing-column",
        "constant-target",
        "non-numeric",
        "empty",
    ],
)
def test_bad_data_is_refused_with_reason(mutate, message: str) -> None:
    with pytest.raises(DataError) as error:
        validate_market_frame(SPEC, mutate(frame_of()), market="DE")
    assert message in str(error.value) and str(error.value).startswith("DE:")


def test_too_few_weeks_for_l_max() -> None:
    spec = ModelSpec.from_dict(
        {
            "name": "m",
            "target": {"column": "y"},
            "min_weeks": 1,
            "channels": [{"name": "tv", "adstock": {"l_max": 13}}, {"name": "search"}],
        }
    )
    with pytest.raises(DataError, match="twice the longest adstock l_max 13"):
        validate_market_frame(spec, frame_of(weeks=25))


def test_channel_without_spend_is_refused() -> None:
    frame = validate_market_frame(SPEC, frame_of().assign(search=0.0))
    with pytest.raises(DataError, match="'search' has no spend in the training window"):
        ScalingFactors.compute(SPEC, frame)


def test_scaling_and_design() -> None:
    frame = validate_market_frame(SPEC, frame_of())
    scaling = ScalingFactors.compute(SPEC, frame)
    assert scaling.spend["tv"] == pytest.approx(frame.tv.max())
    assert scaling.target == pytest.approx(frame.y.max())
    design = build_design(SPEC, frame, scaling, holdout_weeks=4)
    weeks = padded_length(40)
    assert design.pad == weeks - 40 == 12
    assert design.spend_lags.shape == (weeks, 8, 2)
    assert design.mask.sum() == 36 and design.mask[: design.pad].sum() == 0 and design.mask[-4:].sum() == 0
    # lag tensor: lag l of week t is the scaled spend of week t - l
    np.testing.assert_allclose(design.spend_lags[design.pad + 5, 2, 0], frame.tv.iloc[3] / scaling.spend["tv"])
    # time runs 0..1 over the training frame, the trend's first column
    np.testing.assert_allclose(design.trend[[design.pad, -1], 0], [0.0, 1.0])
    # share-parameterised channels: effect scale is the observed scaled target total
    np.testing.assert_allclose(design.effect_scale, (design.target * design.mask).sum())


def test_refit_keeps_stored_scaling() -> None:
    first = validate_market_frame(SPEC, frame_of())
    scaling = ScalingFactors.compute(SPEC, first)
    later = validate_market_frame(SPEC, frame_of(weeks=52, seed=3))
    design = build_design(SPEC, later, scaling, bucket=None)
    np.testing.assert_allclose(design.spend[:, 0] / scaling.spend["tv"], design.spend_lags[:, 0, 0])
    assert ScalingFactors.from_dict(scaling.to_dict()) == scaling


def test_fourier_period_is_a_year() -> None:
    dates = pd.date_range("2020-01-06", periods=200, freq="7D").to_numpy("datetime64[D]")
    features = fourier_features(dates, 365.25 / 7, 2)
    assert features.shape == (200, 4)
    # 52 weeks fall 1.25 days short of a year: the 2nd harmonic's phase moves 2 * 2pi * 1.25 / 365.25 = 0.043
    np.testing.assert_allclose(features[0], features[52], atol=0.045)


def test_target_gaps_are_refused_by_default_and_masked_when_allowed(example_frame, example_spec) -> None:
    frame = example_frame.copy()
    frame.loc[[40, 41, 90], "y"] = np.nan
    with pytest.raises(DataError, match="missing or non-numeric values in weeks 2019-01-07, 2019-01-14, 2019-12-23"):
        validate_market_frame(example_spec, frame)
    data = validate_market_frame(example_spec, frame, allow_target_gaps=True)
    scaling = ScalingFactors.compute(example_spec, data)
    assert scaling.target == pytest.approx(example_frame["y"].drop(index=[40, 41, 90]).abs().max())
    design = build_design(example_spec, data, scaling, holdout_weeks=10, bucket=None)
    gaps = np.isnan(data["y"].to_numpy())
    assert design.mask[gaps].sum() == 0 and np.isfinite(design.target).all()
    assert design.mask.sum() == len(data) - 10 - 3  # the gaps and the held-out weeks are out of the likelihood
