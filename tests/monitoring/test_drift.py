"""The drift measures on synthetic draws with known answers.

With 20,000 draws the Monte Carlo error of a mean is 0.007 sd and of W1 about 0.01 sd: a tolerance of
0.05 is several errors wide. HDI edges scatter more (the shortest interval slides along the flat
density near its edges: about 0.05 sd per edge), so the overlap of two intervals 3.29 sd long moves
by about 0.1 / 3.29 = 0.03, and its tolerance is 0.06; still far tighter than the effects tested.
"""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.drift import compare_draws, hdi_overlap

N = 20_000


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_same_distribution_shows_no_drift(rng) -> None:
    measures = compare_draws(rng.normal(2.0, 0.5, N), rng.normal(2.0, 0.5, N))
    assert abs(measures.mean_shift_sd) < 0.05
    assert measures.hdi_overlap > 0.95
    assert measures.wasserstein_sd < 0.05


def test_location_shift_is_measured_in_champion_sds(rng) -> None:
    # N(0, 1) -> N(3, 1): shift 3 sd; W1 of a pure shift is the shift; HDIs [-1.645, 1.645] and
    # [1.355, 4.645] share 0.29 of their 3.29 length: overlap 0.088
    champion, challenger = rng.normal(0.0, 1.0, N), rng.normal(3.0, 1.0, N)
    measures = compare_draws(champion, challenger)
    assert measures.mean_shift_sd == pytest.approx(3.0, abs=0.05)
    assert measures.wasserstein == pytest.approx(3.0, abs=0.05)
    assert measures.hdi_overlap == pytest.approx(0.29 / 3.29, abs=0.06)
    assert compare_draws(challenger, champion).mean_shift_sd == pytest.approx(-3.0, abs=0.05)  # signed


def test_units_scale_out_of_the_sd_measures(rng) -> None:
    base, moved = rng.normal(0.0, 1.0, N), rng.normal(3.0, 1.0, N)
    plain, scaled = compare_draws(base, moved), compare_draws(1000 * base, 1000 * moved)
    assert scaled.mean_shift_sd == pytest.approx(plain.mean_shift_sd, rel=1e-9)
    assert scaled.wasserstein_sd == pytest.approx(plain.wasserstein_sd, rel=1e-9)
    assert scaled.wasserstein == pytest.approx(1000 * plain.wasserstein, rel=1e-9)


def test_narrower_posterior_inside_the_old_one_is_not_drift(rng) -> None:
    # more data: same centre, half the sd. The new HDI lies inside the old (overlap 1), the mean does
    # not move, and W1 = |sd1 - sd2| E|Z| = 0.5 * sqrt(2 / pi) = 0.399
    measures = compare_draws(rng.normal(0.0, 1.0, N), rng.normal(0.0, 0.5, N))
    assert measures.hdi_overlap == pytest.approx(1.0, abs=1e-9)
    assert abs(measures.mean_shift_sd) < 0.05
    assert measures.wasserstein == pytest.approx(0.5 * np.sqrt(2 / np.pi), abs=0.05)


def test_hdi_overlap_of_intervals() -> None:
    assert hdi_overlap((0.0, 2.0), (1.0, 3.0)) == pytest.approx(0.5)
    assert hdi_overlap((0.0, 1.0), (2.0, 3.0)) == 0.0
    assert hdi_overlap((0.0, 10.0), (4.0, 5.0)) == 1.0


def test_bad_draws_are_refused_with_the_side_named(rng) -> None:
    with pytest.raises(ValueError, match="challenger draws contain NaN"):
        compare_draws(rng.normal(size=10), np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="champion draws must be a 1-D"):
        compare_draws(np.ones((3, 2)), rng.normal(size=10))
