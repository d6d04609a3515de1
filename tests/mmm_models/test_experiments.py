"""Value of information and predicted narrowing, on draws whose answers are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from mmm_models.experiments import decision_value, predicted_narrowing, weighted_hdi_width


def test_hdi_width_of_a_normal_and_of_weighted_draws() -> None:
    draws = np.random.default_rng(0).standard_normal(200_000)
    assert weighted_hdi_width(draws) == pytest.approx(2 * 1.6449, rel=0.01)  # 90% of N(0, 1)
    halves = np.where(draws > 0, 1.0, 0.0)  # only the positive half: a half-normal's 90% HDI is [0, 1.645]
    assert weighted_hdi_width(draws, halves) == pytest.approx(1.6449, rel=0.01)


def test_value_of_information_goes_to_the_channel_the_decision_hinges_on() -> None:
    rng = np.random.default_rng(1)
    roas = rng.standard_normal((4000, 2))
    uplift = roas[:, 0] + 0.2  # the move pays when channel 0's ROAS is above -0.2; channel 1 is irrelevant
    values = decision_value(roas, uplift)
    # EVPPI of channel 0 = E[max(X + 0.2, 0)] - 0.2 for X ~ N(0, 1): phi(0.2) + 0.2 Phi(0.2) - 0.2
    from scipy import stats

    exact = stats.norm.pdf(0.2) + 0.2 * stats.norm.cdf(0.2) - 0.2
    assert values[0] == pytest.approx(exact, rel=0.1)  # 10 bins lose a little of the information
    assert values[1] < 0.1 * exact
    assert decision_value(roas, np.abs(uplift) + 1).max() == 0  # a move that always pays: nothing to learn


def test_predicted_narrowing_matches_the_conjugate_normal_update() -> None:
    """ROAS ~ N(0, 1), the test measures lift = 2 x ROAS with se 1: the posterior sd is 1/sqrt(1 + 4),
    so the interval narrows by 1 - 1/sqrt(5) = 0.553, whatever the outcome."""
    roas = np.random.default_rng(2).standard_normal(20_000)
    found = predicted_narrowing(roas, 2 * roas, se=1.0, outcomes=100)
    assert found == pytest.approx(1 - 1 / np.sqrt(5), abs=0.03)  # Monte Carlo error of 20k reweighted draws
    assert predicted_narrowing(roas, 0 * roas, se=1.0, outcomes=20) == pytest.approx(0.0, abs=1e-9)
