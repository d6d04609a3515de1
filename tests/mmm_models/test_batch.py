"""Batched fitting: markets sampled together in one compiled call get the posterior each gets alone."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from mmm_models import fitting
from mmm_models.data import DataError
from mmm_models.fitted import fit, fit_batch
from mmm_models.simulator import SimulationConfig, simulate_market
from mmm_models.spec import ModelSpec
from tests.conftest import QUICK

# The suite's short chains (and so its compiled sampler): the comparison below scales with their MCSE.
SETTINGS = QUICK.model_copy(update={"holdout_weeks": 13})


def simulated_like_example(example_frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A simulated market with the example's columns and weeks (so the example's spec fits it), known truth inside."""
    config = SimulationConfig(weeks=len(example_frame), channels=("x1", "x2"), start="2018-04-02")
    data = simulate_market(config, seed=seed).data
    return pd.DataFrame(
        {
            "date_week": data["date"].dt.strftime("%Y-%m-%d"),
            "y": data["y"],
            "x1": data["x1"],
            "x2": data["x2"],
            "event_1": 0.0,
            "event_2": 0.0,
            "t": np.arange(len(data)),
        }
    )


@pytest.fixture(scope="module")
def frames(example_frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        "example": example_frame,
        "sim1": simulated_like_example(example_frame, 1),
        "sim2": simulated_like_example(example_frame, 2),
    }


@pytest.fixture(scope="module")
def alone(example_spec: ModelSpec, frames: dict[str, pd.DataFrame]):
    return {market: fit(example_spec, frame, SETTINGS, market=market) for market, frame in frames.items()}


# sequential: how a CPU core runs a batch's lanes; vectorised: how a GPU does (the same code, vmapped).
@pytest.fixture(scope="module", params=["sequential", "vectorised"])
def batched(request, example_spec: ModelSpec, frames: dict[str, pd.DataFrame]):
    return fit_batch(example_spec, frames, SETTINGS.model_copy(update={"lanes": request.param}))


def test_a_batch_is_one_compiled_call_per_shape(batched) -> None:
    compiled = [model.timings["compiled"] for model in batched.values()]
    assert len(set(compiled)) == 1  # the three markets share one call (one shape)


@pytest.mark.parametrize("market", ["example", "sim1", "sim2"])
def test_batched_posterior_matches_the_market_fitted_alone(market: str, alone, batched) -> None:
    single, together = alone[market], batched[market]
    posterior = single.idata.posterior
    names = [n for n, v in posterior.data_vars.items() if v.size // (v.sizes["chain"] * v.sizes["draw"]) <= 8]
    a = az.summary(single.idata, var_names=names, kind="all", round_to="none")
    b = az.summary(together.idata, var_names=names, kind="all", round_to="none")
    # The two means differ by Monte Carlo error only: |a - b| / sqrt(mcse_a^2 + mcse_b^2) is about N(0, 1).
    # 4.5 keeps the chance that any of the ~30 parameter values trips at random below 1e-4; a market given
    # another market's data (a lane mix-up) moves its coefficients by many posterior sds, far past it.
    z = (a["mean"] - b["mean"]).abs() / np.hypot(a["mcse_mean"], b["mcse_mean"])
    assert z.max() < 4.5, z.sort_values().tail(3)
    assert together.idata.posterior.sizes["chain"] == SETTINGS.chains


def test_markets_keep_their_own_data(batched) -> None:
    coefs = {m: model.idata.posterior["channel_coef"].mean(("chain", "draw")).values for m, model in batched.items()}
    assert not np.allclose(coefs["sim1"], coefs["sim2"], rtol=0.05)


def test_an_invalid_market_is_reported_and_the_others_fit(example_spec: ModelSpec, frames) -> None:
    broken = frames["sim1"].drop(columns=["x2"])
    result = fit_batch(example_spec, {"broken": broken, "sim2": frames["sim2"]}, SETTINGS)
    assert isinstance(result["broken"], DataError) and "x2" in str(result["broken"])
    assert result["sim2"].idata.posterior.sizes["draw"] == SETTINGS.draws


def test_batching_needs_numpyro(example_spec: ModelSpec, frames) -> None:
    with pytest.raises(ValueError, match="numpyro"):
        fitting.sample_batch(example_spec, [], SETTINGS.model_copy(update={"sampler": "nutpie"}))
