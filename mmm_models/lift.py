"""Lift tests (geo experiments) as data: validation, and the arrays their likelihood terms use.

A lift test says: in ``channel``, spend changed by ``spend_delta`` in total over the weeks
``start``..``end``, and the outcome changed by ``lift`` with standard error ``lift_se``. The change is
spread over the window in proportion to the channel's actual spend there (evenly if it had none), so
a go-dark holdout (``spend_delta`` = minus the window's spend) takes every week to zero. The
model's lift for the test is the difference of the channel's contribution with and without that
change, over the test window *and the weeks its adstock carries into*, so carry-over counts, not
the saturation curve alone. Tests are padded to a multiple of ``TEST_BUCKET`` (masked), so markets
with different numbers of tests share one compiled sampler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mmm_models.constants import GP_BASIS
from mmm_models.data import DataError, ScalingFactors, lag_tensor
from mmm_models.spec import ModelSpec
from mmm_models.time_varying import basis

LIFT_COLUMNS = ["channel", "start", "end", "spend_delta", "lift", "lift_se"]
TEST_BUCKET = 4


@dataclass(frozen=True)
class LiftDesign:
    """Arrays of the lift-test likelihood; R rows hold every test's window and carry-over weeks."""

    base_lags: np.ndarray  # (R, l_max, channels) scaled spend as it was
    changed_lags: np.ndarray  # (R, l_max, channels) with the test's spend change
    rows: np.ndarray  # (tests, R) 1 where a row belongs to a test
    channel: np.ndarray  # (tests, channels) one-hot of the test's channel
    observed: np.ndarray  # (tests,) observed lift / target scale
    se: np.ndarray  # (tests,) standard error / target scale (1 for padding)
    mask: np.ndarray  # (tests,) 1 for a real test
    time_basis: dict[str, np.ndarray] = field(default_factory=dict)  # HSGP basis of the R rows' weeks

    def model_data(self) -> dict[str, np.ndarray]:
        return {
            **{f"lift_{name}": value for name, value in self.time_basis.items()},
            "lift_base_lags": self.base_lags,
            "lift_changed_lags": self.changed_lags,
            "lift_rows": self.rows,
            "lift_channel": self.channel,
            "lift_observed": self.observed,
            "lift_se": self.se,
            "lift_mask": self.mask,
        }


def validate_lift_tests(
    spec: ModelSpec, tests: pd.DataFrame, data: pd.DataFrame, market: str = "market"
) -> pd.DataFrame:
    """Check lift tests against the spec and the market's weeks; return them with Monday week starts."""
    missing = [c for c in LIFT_COLUMNS if c not in tests.columns]
    if missing:
        raise DataError(f"{market}: lift tests lack columns {missing}")
    tests = tests.copy().reset_index(drop=True)  # extra columns (brand, market, notes) are kept
    unknown = sorted(set(tests["channel"]) - set(spec.channel_names))
    if unknown:
        raise DataError(f"{market}: lift tests name unknown channels {unknown}; the model has {spec.channel_names}")
    for column in ("start", "end"):
        tests[column] = pd.to_datetime(tests[column])
        tests[column] = tests[column] - pd.to_timedelta(tests[column].dt.dayofweek, "D")
    for column in ("spend_delta", "lift", "lift_se"):
        tests[column] = pd.to_numeric(tests[column], errors="coerce")
        if tests[column].isna().any():
            raise DataError(f"{market}: lift test column {column!r} has missing or non-numeric values")
    if (tests["lift_se"] <= 0).any():
        raise DataError(f"{market}: every lift test needs a standard error > 0")
    if (tests["start"] > tests["end"]).any():
        raise DataError(f"{market}: a lift test ends before it starts")
    weeks = pd.to_datetime(data[spec.date_column])
    outside = tests[(tests["start"] < weeks.iloc[0]) | (tests["end"] > weeks.iloc[-1])]
    if len(outside):
        raise DataError(
            f"{market}: lift tests {outside.index.tolist()} fall outside the data's weeks "
            f"{weeks.iloc[0].date()}..{weeks.iloc[-1].date()}"
        )
    for index, test in tests.iterrows():
        window = ((weeks >= test["start"]) & (weeks <= test["end"])).to_numpy()
        if test["spend_delta"] < 0 and -test["spend_delta"] > data.loc[window, test["channel"]].sum() * (1 + 1e-9):
            raise DataError(f"{market}: lift test {index} removes more {test['channel']} spend than there was")
    return tests


def spend_change(window_spend: np.ndarray, delta: float) -> np.ndarray:
    """A test's change per week: in proportion to the actual spend, evenly where there was none."""
    total = window_spend.sum()
    if total > 0:
        return delta * window_spend / total
    return np.full(len(window_spend), delta / len(window_spend))


def build_lift_design(
    spec: ModelSpec, tests: pd.DataFrame, data: pd.DataFrame, scaling: ScalingFactors, bucket: int = TEST_BUCKET
) -> LiftDesign:
    """Arrays for validated ``tests`` on the market's validated weekly ``data``."""
    lags, channels = spec.max_l_max - 1, spec.channel_names
    weeks = pd.to_datetime(data[spec.date_column]).reset_index(drop=True)
    spend = data[channels].to_numpy(float) / np.array([scaling.spend[c] for c in channels])
    n_tests = int(np.ceil(len(tests) / bucket) * bucket)
    base_parts, changed_parts, owners, row_dates = [], [], [], []
    for k, test in tests.iterrows():
        first = int(np.flatnonzero(weeks >= test["start"])[0])
        last = int(np.flatnonzero(weeks <= test["end"])[-1])
        # spend from l_max-1 weeks before the window to l_max-1 weeks after it (zero beyond the data)
        local = np.zeros((last - first + 1 + 2 * lags, len(channels)))
        lo, hi = max(first - lags, 0), min(last + lags, len(weeks) - 1)
        local[lo - (first - lags) : hi - (first - lags) + 1] = spend[lo : hi + 1]
        changed = local.copy()
        column = channels.index(test["channel"])
        window = slice(lags, lags + last - first + 1)
        changed[window, column] += spend_change(
            local[window, column], test["spend_delta"] / scaling.spend[test["channel"]]
        )
        changed[window, column] = np.maximum(changed[window, column], 0.0)  # a go-dark test ends at exactly 0
        # rows where the effect shows: the window and the carry-over weeks after it
        base_parts.append(lag_tensor(local, spec.max_l_max)[lags:])
        changed_parts.append(lag_tensor(changed, spec.max_l_max)[lags:])
        owners.extend([k] * (len(local) - lags))
        row_dates.append(pd.date_range(weeks[first], periods=len(local) - lags, freq="7D").to_numpy("datetime64[D]"))
    owners_array = np.array(owners)
    rows = np.zeros((n_tests, len(owners)))
    rows[owners_array, np.arange(len(owners))] = 1.0
    onehot = np.zeros((n_tests, len(channels)))
    onehot[np.arange(len(tests)), [channels.index(c) for c in tests["channel"]]] = 1.0
    observed, se, mask = np.zeros(n_tests), np.ones(n_tests), np.zeros(n_tests)
    observed[: len(tests)] = tests["lift"].to_numpy(float) / scaling.target
    se[: len(tests)] = tests["lift_se"].to_numpy(float) / scaling.target
    mask[: len(tests)] = 1.0
    time_basis = {}
    if spec.time_varying is not None:
        dates = np.concatenate(row_dates)
        time_basis = {GP_BASIS: basis(dates, scaling.time_origin, scaling.time_span_weeks, spec.time_varying)[GP_BASIS]}
    return LiftDesign(
        base_lags=np.concatenate(base_parts),
        changed_lags=np.concatenate(changed_parts),
        rows=rows,
        channel=onehot,
        observed=observed,
        se=se,
        mask=mask,
        time_basis=time_basis,
    )
