"""Transforms against hand-computed values, and their NumPy twins against PyTensor."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest

from mmm_models.data import lag_tensor
from mmm_models.transforms import (
    ADSTOCKS,
    SATURATIONS,
    DelayedAdstock,
    GeometricAdstock,
    HillSaturation,
    LogisticSaturation,
    MichaelisMentenSaturation,
    WeibullAdstock,
    half_life,
)

# One valid parameter point per transform (within each default prior's support).
POINTS = {
    "geometric": {"alpha": np.array([0.5, 0.2])},
    "delayed": {"alpha": np.array([0.6, 0.3]), "theta": np.array([2.0, 0.5])},
    "weibull": {"shape": np.array([1.5, 0.7]), "scale": np.array([2.0, 3.0])},
    "logistic": {"lam": np.array([2.0, 5.0])},
    "hill": {"half": np.array([0.5, 0.2]), "slope": np.array([2.0, 1.2])},
    "michaelis_menten": {"half": np.array([0.3, 1.0])},
}


def test_geometric_weights_by_hand() -> None:
    weights = GeometricAdstock(l_max=3).weights(np, alpha=np.array([0.5]))
    # 1, 0.5, 0.25 normalised by 1.75
    np.testing.assert_allclose(weights[:, 0], [1 / 1.75, 0.5 / 1.75, 0.25 / 1.75])


def test_geometric_adstock_by_hand() -> None:
    spend = np.array([[1.0], [0.0], [0.0], [2.0]])
    out = GeometricAdstock(l_max=3).apply(np, lag_tensor(spend, 3), alpha=np.array([0.5]))
    w = np.array([1, 0.5, 0.25]) / 1.75
    np.testing.assert_allclose(out[:, 0], [w[0], w[1], w[2], 2 * w[0]])


def test_delayed_weights_peak_at_theta() -> None:
    weights = DelayedAdstock(l_max=5).weights(np, alpha=np.array([0.5]), theta=np.array([2.0]))[:, 0]
    raw = 0.5 ** ((np.arange(5) - 2.0) ** 2)  # 1/16, 1/2, 1, 1/2, 1/16
    np.testing.assert_allclose(weights, raw / raw.sum())
    assert weights.argmax() == 2


def test_weibull_weights_by_hand() -> None:
    weights = WeibullAdstock(l_max=3).weights(np, shape=np.array([1.0]), scale=np.array([1.0]))[:, 0]
    raw = np.exp(-np.array([1.0, 2.0, 3.0]))  # shape 1: exponential density at lags 1..3
    np.testing.assert_allclose(weights, raw / raw.sum())


def test_logistic_by_hand() -> None:
    value = LogisticSaturation().function(np, np.array([[0.5]]), lam=np.array([[2.0]]))
    np.testing.assert_allclose(value, (1 - np.exp(-1.0)) / (1 + np.exp(-1.0)))


def test_hill_by_hand() -> None:
    value = HillSaturation().function(np, np.array([[0.0, 0.5, 1.0]]), half=np.array([[0.5]]), slope=np.array([[2.0]]))
    np.testing.assert_allclose(value[0], [0.0, 0.5, 0.8])  # 1 / (1 + 0.25) = 0.8


def test_michaelis_menten_by_hand() -> None:
    value = MichaelisMentenSaturation().function(np, np.array([[1.0, 3.0]]), half=np.array([[1.0]]))
    np.testing.assert_allclose(value[0], [0.5, 0.75])


@pytest.mark.parametrize("name", sorted(ADSTOCKS), ids=str)
def test_adstock_twins_agree(name: str) -> None:
    transform = ADSTOCKS[name](l_max=6)
    spend = lag_tensor(np.random.default_rng(0).uniform(0, 1, (20, 2)), 6)
    symbolic = {k: pt.vector(k) for k in POINTS[name]}
    graph = transform.apply(pt, pt.as_tensor(spend), **symbolic)
    from_pytensor = graph.eval({symbolic[k]: v for k, v in POINTS[name].items()})
    np.testing.assert_allclose(transform.apply(np, spend, **POINTS[name]), from_pytensor, rtol=1e-12)
    np.testing.assert_allclose(transform.weights(np, **POINTS[name]).sum(axis=0), 1.0)


@pytest.mark.parametrize("name", sorted(SATURATIONS), ids=str)
def test_saturation_twins_agree(name: str) -> None:
    transform = SATURATIONS[name]()
    x = np.random.default_rng(1).uniform(0, 2, (20, 2))
    x[0] = 0.0
    symbolic = {k: pt.vector(k) for k in POINTS[name]}
    graph = transform.apply(pt, pt.as_tensor(x), **symbolic)
    from_pytensor = graph.eval({symbolic[k]: v for k, v in POINTS[name].items()})
    from_numpy = transform.apply(np, x, **POINTS[name])
    np.testing.assert_allclose(from_numpy, from_pytensor, rtol=1e-12)
    assert np.all(from_numpy[0] == 0.0) and np.all((from_numpy >= 0) & (from_numpy < 1))


@pytest.mark.parametrize("name", sorted(SATURATIONS), ids=str)
def test_half_saturation_is_half(name: str) -> None:
    transform = SATURATIONS[name]()
    half = transform.half_saturation(**POINTS[name])
    np.testing.assert_allclose(transform.apply(np, half[None, :], **POINTS[name])[0], 0.5)


def test_hill_gradient_finite_at_zero_spend() -> None:
    x = pt.as_tensor(np.array([[0.0, 0.4]]))
    half, slope = pt.vector("half"), pt.vector("slope")
    value = HillSaturation().apply(pt, x, half=half, slope=slope).sum()
    gradient = pt.grad(value, [half, slope])
    result = [g.eval({half: np.array([0.5, 0.5]), slope: np.array([1.5, 1.5])}) for g in gradient]
    assert all(np.all(np.isfinite(r)) for r in result)


def test_half_life() -> None:
    # all weight at lag 0: half delivered half-way through week 0
    assert half_life(np.array([[1.0], [0.0]]))[0] == pytest.approx(0.5)
    # 0.25 per lag over 4 lags: half delivered at the end of lag 1
    assert half_life(np.full((4, 1), 0.25))[0] == pytest.approx(2.0)
