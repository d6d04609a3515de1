"""Predictive groups of a fitted model's InferenceData, and PSIS-LOO on them.

The model's likelihood is a masked ``pm.Potential`` (padding, gaps and held-out weeks carry zero
weight), so PyMC records no ``observed_data`` or ``log_likelihood`` by itself. ``add_predictive_groups``
computes them with the model's NumPy equations, over the training weeks with an observed target, in
the data's original units (so two models with different scaling factors are comparable), and adds:

- ``observed_data``: the target, one value per such week (coordinate ``week``: its date);
- ``log_likelihood``: each posterior draw's log density of each week (every draw: PSIS-LOO needs them);
- ``posterior_predictive``: replicated targets, thinned to at most ``max_predictive_draws`` draws;
- ``prior`` and ``prior_predictive``: parameters drawn from the priors (PyMC's prior sampling of the
  single-market model, lift tests left out), and the targets they imply.

Then ``az.loo(model.idata)``, ``az.compare`` and ``az.plot_ppc`` work, on a loaded model too.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from mmm_models import constants as C
from mmm_models.analysis import PosteriorEvaluator
from mmm_models.fitted import FittedModel, drop_padding_vars

if TYPE_CHECKING:
    from pytensor.compile.mode import Mode

MAX_PREDICTIVE_DRAWS = 1000  # replicated targets kept: enough for plot_ppc and predictive intervals
PRIOR_DRAWS = 500  # prior draws: enough for a prior sd and a 90% interval within a few percent
WEEK = "week"
PREDICTIVE_GROUPS = ("observed_data", "log_likelihood", "posterior_predictive", "prior", "prior_predictive")
CHAIN, DRAW = "chain", "draw"


def observed_weeks(model: FittedModel) -> np.ndarray:
    """Indices (into ``model.data``) of the training weeks with an observed target."""
    target = model.data[model.spec.target.column].to_numpy(float)
    return np.flatnonzero(~np.isnan(target) & (np.arange(len(target)) < model.train_weeks))


def pointwise(model: FittedModel, params: dict[str, np.ndarray], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per draw of ``params`` and observed training week: log density of the target (original units)
    and one replicated target. Shapes (draws, weeks)."""
    weeks = observed_weeks(model)
    evaluator = PosteriorEvaluator(model, max_draws=None)
    # in chunks of draws: one pass over 4000 draws builds (draws, weeks, lags, channels) temporaries of ~200 MB
    mu = np.concatenate([evaluator.mu_and_terms(chunk)[0][:, weeks] for chunk in evaluator.chunks(params)])
    sigma = params[C.NOISE_SIGMA].reshape(-1, 1)
    y = model.data[model.spec.target.column].to_numpy(float)[weeks]
    scale, log_link = model.scaling.target, model.spec.target.link == "log"
    z = np.log(y / scale) if log_link else y / scale
    rng = np.random.default_rng(seed)
    if model.spec.target.likelihood == "student_t":
        nu = params[C.NOISE_NU].reshape(-1, 1)
        density = stats.t.logpdf(z, df=nu, loc=mu, scale=sigma)
        noise = rng.standard_t(np.broadcast_to(nu, mu.shape)) * sigma
    else:
        density = stats.norm.logpdf(z, loc=mu, scale=sigma)
        noise = rng.standard_normal(mu.shape) * sigma
    # the density of y itself: the Jacobian of y -> y / scale (and of the log under a log link)
    density = density - (np.log(y) if log_link else np.log(scale))
    replicated = scale * (np.exp(mu + noise) if log_link else mu + noise)
    return density, replicated


def prior_draws(model: FittedModel, draws: int = PRIOR_DRAWS, seed: int = 0) -> xr.Dataset:
    """Parameters drawn from the model's priors (chain 0 x ``draws``), named as in the posterior.

    PyMC's prior sampling, run by NumPy without graph rewrites (``_prior_mode``): the draws are PyMC's own
    for the seed, without compiling C for a graph that runs a few hundred times.
    """
    import pymc as pm

    from mmm_models.model import build_model

    pymc_model = build_model(model.spec, model.design())
    names = [v.name for v in (*pymc_model.free_RVs, *pymc_model.deterministics)]
    with warnings.catch_warnings():  # the likelihood Potentials are meant to be left out of a prior
        warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
        prior = pm.sample_prior_predictive(
            draws=draws, model=pymc_model, var_names=names, random_seed=seed, compile_kwargs={"mode": _prior_mode()}
        ).prior
    return drop_padding_vars(az.InferenceData(posterior=prior)).posterior


def _prior_mode() -> Mode:
    """PyTensor's Python thunks with no graph rewrites, for the prior's forward graph (about 60 nodes).

    PyTensor's default mode compiles C thunks: on a 5-channel market that is 19 C modules, 11-20 s once per
    process (the first market of every Spark worker) and 0.3 s on each later market. NumPy thunks on the
    graph as built take about 0.3 s a market with nothing compiled. Without rewrites, every elementwise op
    keeps the two inputs NumPy's ufuncs take: the rewrites merge them into n-ary ops that PyTensor's
    Python path evaluates one element at a time (1.7 s a market).
    """
    from pytensor.compile.mode import Mode
    from pytensor.link.vm import VMLinker

    return Mode(VMLinker(use_cloop=False, c_thunks=False), optimizer=None)


def _as_dataset(values: np.ndarray, chains: int, name: str, dates: np.ndarray) -> xr.Dataset:
    draws = values.reshape(chains, -1, values.shape[-1])
    return xr.Dataset(
        {name: ((CHAIN, DRAW, WEEK), draws)},
        coords={CHAIN: np.arange(chains), DRAW: np.arange(draws.shape[1]), WEEK: dates},
    )


def add_predictive_groups(
    model: FittedModel,
    max_predictive_draws: int = MAX_PREDICTIVE_DRAWS,
    prior_draws_n: int = PRIOR_DRAWS,
    seed: int = 0,
) -> FittedModel:
    """Add ``observed_data``, ``log_likelihood``, ``posterior_predictive``, ``prior`` and ``prior_predictive``
    to ``model.idata`` (in place; returns the model). See the module's docstring."""
    name = model.spec.target.column
    weeks = observed_weeks(model)
    dates = model.data[model.spec.date_column].to_numpy("datetime64[ns]")[weeks]
    posterior = model.idata.posterior
    chains, draws = posterior.sizes[CHAIN], posterior.sizes[DRAW]
    density, replicated = pointwise(model, model.draws(), seed)
    stride = max(1, int(np.ceil(chains * draws / max_predictive_draws)))
    kept = replicated.reshape(chains, draws, -1)[:, ::stride].reshape(-1, len(weeks))
    observed = model.data[name].to_numpy(float)[weeks]
    prior = prior_draws(model, prior_draws_n, seed)
    prior_model = FittedModel(model.spec, model.scaling, az.InferenceData(posterior=prior), model.data, model.settings)
    _, prior_replicated = pointwise(prior_model, prior_model.draws(), seed + 1)
    for group in PREDICTIVE_GROUPS:
        if group in model.idata.groups():
            delattr(model.idata, group)  # a second call replaces, never duplicates
    model.idata.add_groups(
        observed_data=xr.Dataset({name: ((WEEK,), observed)}, coords={WEEK: dates}),
        log_likelihood=_as_dataset(density, chains, name, dates),
        posterior_predictive=_as_dataset(kept.astype(np.float32), chains, name, dates),
        prior=prior,
        prior_predictive=_as_dataset(prior_replicated.astype(np.float32), 1, name, dates),
    )
    return model


def loo(model: FittedModel) -> az.ELPDData:
    """PSIS-LOO of the model's training weeks, pointwise values included (``add_predictive_groups`` first)."""
    if "log_likelihood" not in model.idata.groups():
        raise ValueError(f"{model.market}: no log_likelihood group; call add_predictive_groups(model) first")
    return az.loo(model.idata, pointwise=True, var_name=model.spec.target.column)


def elpd_difference(challenger: az.ELPDData, champion: az.ELPDData) -> dict[str, float]:
    """ELPD of the challenger minus the champion's, over the weeks both were fitted on (matched by date).

    Two weekly refits share most of their weeks but not all (the window moves), so ``az.compare``'s
    total over each model's own weeks would compare different data. Summing the pointwise difference
    over the shared weeks compares like with like; its standard error is that of a sum of n paired
    differences, as in ``az.compare``.
    """
    new, old = (_pointwise_series(e) for e in (challenger, champion))
    shared = new.index.intersection(old.index)
    diff = (new[shared] - old[shared]).to_numpy()
    se = float(np.sqrt(len(diff) * diff.var(ddof=1))) if len(diff) > 1 else float("nan")
    return {"elpd_diff": float(diff.sum()), "se": se, "weeks": float(len(diff))}


def _pointwise_series(elpd: az.ELPDData) -> pd.Series:
    values = elpd.loo_i
    return pd.Series(values.values, index=pd.DatetimeIndex(values[WEEK].values))


def idata_nbytes(model: FittedModel) -> dict[str, int]:
    """Bytes held by each group of the model's InferenceData (what the saved NetCDF roughly weighs)."""
    return {group: int(model.idata[group].nbytes) for group in model.idata.groups()}
