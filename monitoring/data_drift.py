"""Data drift: has a market's recent input moved far from the weeks its model was trained on?

- ``spend_mix_psi``: the population stability index of the spend mix (each channel's share of the
  total spend), recent weeks against the training window: ``sum (q - p) ln(q / p)``. 0.25 is the
  usual "significant shift" level; for four channels it is one channel's share going from a quarter
  to a half. Per channel, ``spend_share_change`` (q - p) says which channel moved.
- ``target_shift_sd``: (recent mean target - training mean) / training weekly sd. Seasonality moves a
  quarter's mean by about one weekly sd; two is a level the model has not seen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SHARE_FLOOR = 1e-4  # a channel with no spend on one side: PSI stays finite but large
ALL_CHANNELS = "(all)"


def population_stability_index(reference: np.ndarray, recent: np.ndarray) -> float:
    """PSI of two discrete distributions given as non-negative weights (normalised here)."""
    reference, recent = np.asarray(reference, dtype=float), np.asarray(recent, dtype=float)
    if reference.shape != recent.shape or (reference < 0).any() or (recent < 0).any():
        raise ValueError("PSI needs two non-negative weight vectors of the same length")
    if reference.sum() <= 0 or recent.sum() <= 0:
        raise ValueError("PSI needs weights with a positive total on both sides")
    p = np.maximum(reference / reference.sum(), SHARE_FLOOR)
    q = np.maximum(recent / recent.sum(), SHARE_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def data_drift(reference: pd.DataFrame, recent: pd.DataFrame, channels: list[str], target: str) -> pd.DataFrame:
    """Rows (channel, metric, value, reference_value, recent_value) for one market's two windows."""
    for name, frame in (("reference", reference), ("recent", recent)):
        missing = [c for c in [*channels, target] if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} weeks lack columns {missing}")
        if frame.empty:
            raise ValueError(f"no {name} weeks to compare")
    spend_ref = reference[channels].sum().to_numpy(float)
    spend_new = recent[channels].sum().to_numpy(float)
    rows = []
    if spend_ref.sum() > 0 and spend_new.sum() > 0:
        rows.append(
            {
                "channel": ALL_CHANNELS,
                "metric": "spend_mix_psi",
                "value": population_stability_index(spend_ref, spend_new),
                "reference_value": np.nan,
                "recent_value": np.nan,
            }
        )
        share_ref, share_new = spend_ref / spend_ref.sum(), spend_new / spend_new.sum()
        for channel, before, after in zip(channels, share_ref, share_new, strict=True):
            rows.append(
                {
                    "channel": channel,
                    "metric": "spend_share_change",
                    "value": after - before,
                    "reference_value": before,
                    "recent_value": after,
                }
            )
    target_ref, target_new = reference[target].dropna(), recent[target].dropna()
    if len(target_ref) > 1 and len(target_new) and target_ref.std() > 0:
        rows.append(
            {
                "channel": ALL_CHANNELS,
                "metric": "target_shift_sd",
                "value": (target_new.mean() - target_ref.mean()) / target_ref.std(),
                "reference_value": target_ref.mean(),
                "recent_value": target_new.mean(),
            }
        )
    return pd.DataFrame(rows, columns=["channel", "metric", "value", "reference_value", "recent_value"])
