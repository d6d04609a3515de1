"""Predictive groups in the InferenceData: what they hold, that ArviZ's LOO and PPC work on them, and
that they survive save and load (a loaded champion is reviewed and compared on them)."""

from __future__ import annotations

import copy

import arviz as az
import numpy as np
import pytest
from scipy import stats

from mmm_models import persistence, predictive
from mmm_models.analysis import PosteriorEvaluator


@pytest.fixture(scope="module")
def with_groups(quick_example_fit):
    """A copy of the shared example fit (13 held-out weeks) with its predictive groups."""
    return predictive.add_predictive_groups(copy.deepcopy(quick_example_fit))


def test_groups_cover_the_observed_training_weeks(with_groups) -> None:
    idata, model = with_groups.idata, with_groups
    for group in predictive.PREDICTIVE_GROUPS:
        assert group in idata.groups()
    weeks = model.train_weeks  # the example has no gaps: every training week, none held out
    assert idata.observed_data["y"].shape == (weeks,)
    np.testing.assert_array_equal(idata.observed_data["y"].values, model.data["y"].to_numpy()[:weeks])
    posterior = idata.posterior
    assert idata.log_likelihood["y"].shape == (posterior.sizes["chain"], posterior.sizes["draw"], weeks)
    draws = idata.posterior_predictive.sizes["chain"] * idata.posterior_predictive.sizes["draw"]
    assert draws <= predictive.MAX_PREDICTIVE_DRAWS
    assert idata.prior.sizes["draw"] == predictive.PRIOR_DRAWS


def test_log_likelihood_is_the_density_of_the_target_in_its_own_units(with_groups) -> None:
    """Normal noise on the max-scaled target: y ~ N(scale x mu, scale x sigma), checked for one draw."""
    model = with_groups
    params = {k: v[:1] for k, v in model.draws().items()}
    mu = PosteriorEvaluator(model).mu_and_terms(params)[0][0, : model.train_weeks]
    scale = model.scaling.target
    sigma = float(params["noise_sigma"][0]) * scale
    expected = stats.norm.logpdf(model.data["y"].to_numpy()[: model.train_weeks], scale * mu, sigma)
    first = model.idata.log_likelihood["y"].isel(chain=0, draw=0).values
    np.testing.assert_allclose(first, expected, rtol=1e-9)


def test_loo_and_ppc_work_on_a_loaded_model(with_groups, tmp_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    before = predictive.loo(with_groups)
    loaded = persistence.load(persistence.save(with_groups, tmp_path / "model"))
    for group in predictive.PREDICTIVE_GROUPS:
        assert group in loaded.idata.groups()
    after = az.loo(loaded.idata)  # plain ArviZ, as a user would call it on a champion
    assert after.elpd_loo == pytest.approx(before.elpd_loo, rel=1e-9)
    assert np.isfinite(after.p_loo) and after.pareto_k.size == with_groups.train_weeks
    az.plot_ppc(loaded.idata, num_pp_samples=20)
    compared = az.compare({"a": loaded.idata, "b": with_groups.idata})
    assert compared["elpd_diff"].abs().max() == pytest.approx(0.0, abs=1e-6)


def test_elpd_difference_uses_only_the_shared_weeks(with_groups) -> None:
    elpd = predictive.loo(with_groups)
    same = predictive.elpd_difference(elpd, elpd)
    assert same["elpd_diff"] == 0.0 and same["weeks"] == with_groups.train_weeks
    shifted = copy.copy(elpd)
    shifted.loo_i = elpd.loo_i.isel(week=slice(10, None)) - 1.0  # a window 10 weeks later, 1 nat worse a week
    found = predictive.elpd_difference(elpd, shifted)
    assert found["weeks"] == with_groups.train_weeks - 10
    assert found["elpd_diff"] == pytest.approx(found["weeks"])  # +1 per shared week
    assert found["se"] == pytest.approx(0.0, abs=1e-9)  # a constant difference: no spread


def test_prior_draws_are_pymcs_own(quick_example_fit) -> None:
    """The prior is drawn without compiling (NumPy, no rewrites): the same draws as PyMC's default,
    compiled prior sampling gives for the seed."""
    import pymc as pm

    from mmm_models.model import build_model

    ours = predictive.prior_draws(quick_example_fit, draws=100, seed=3)
    pymc_model = build_model(quick_example_fit.spec, quick_example_fit.design())
    names = [v.name for v in (*pymc_model.free_RVs, *pymc_model.deterministics)]
    with pytest.warns(UserWarning, match="Potentials"):
        theirs = pm.sample_prior_predictive(draws=100, model=pymc_model, var_names=names, random_seed=3).prior
    assert set(ours.data_vars) <= set(theirs.data_vars) and ours.sizes["draw"] == 100
    for name in ours.data_vars:
        np.testing.assert_allclose(ours[name].values, theirs[name].values, rtol=1e-9, atol=1e-12, err_msg=name)
