"""PSI and the standardised target shift, against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.data_drift import data_drift, population_stability_index


def test_psi_of_a_known_mix_change() -> None:
    # one of four channels goes from a quarter to half the spend:
    # 0.25 ln 2 + 3 (1/6 - 1/4) ln((1/6) / (1/4)) = 0.1733 + 0.1014
    expected = 0.25 * np.log(2) + 3 * (1 / 6 - 1 / 4) * np.log((1 / 6) / (1 / 4))
    assert population_stability_index([1, 1, 1, 1], [3, 1, 1, 1]) == pytest.approx(expected, rel=1e-9)
    assert population_stability_index([5, 2, 3], [10, 4, 6]) == pytest.approx(0.0, abs=1e-12)  # same mix


def test_psi_refuses_bad_weights() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        population_stability_index([1, -1], [1, 1])
    with pytest.raises(ValueError, match="positive total"):
        population_stability_index([0, 0], [1, 1])


def test_data_drift_rows() -> None:
    reference = pd.DataFrame({"tv": [1.0] * 10, "search": [1.0] * 10, "y": np.r_[[9.0, 11.0] * 5]})
    recent = pd.DataFrame({"tv": [3.0] * 4, "search": [1.0] * 4, "y": [10.0 + 2 * reference["y"].std()] * 4})
    rows = data_drift(reference, recent, ["tv", "search"], "y").set_index(["channel", "metric"])["value"]
    assert rows[("(all)", "target_shift_sd")] == pytest.approx(2.0)
    assert rows[("tv", "spend_share_change")] == pytest.approx(0.25)
    assert rows[("(all)", "spend_mix_psi")] == pytest.approx(population_stability_index([1, 1], [3, 1]))
    with pytest.raises(ValueError, match="lack columns"):
        data_drift(reference, recent.drop(columns="tv"), ["tv", "search"], "y")
