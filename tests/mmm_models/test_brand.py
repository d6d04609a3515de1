"""Brand models (partial pooling over markets) and HSGP time-varying effects."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest

from mmm_models import analysis, fitting, persistence
from mmm_models.brand import fit_brand
from mmm_models.data import DataError, ScalingFactors, build_design, per_capita_scalings, population_from_column
from mmm_models.equations import ChannelLayout, media_multiplier
from mmm_models.hierarchy import BrandDesign, link_of, shift_on_link_scale
from mmm_models.model import build_model
from mmm_models.optimizer import BudgetProblem, ResponseModel, optimize_budget
from mmm_models.prediction import predict
from mmm_models.priors import Prior
from mmm_models.simulator import SimulationConfig, simulate_brand, simulate_market, simulation_spec
from mmm_models.spec import ModelSpec, SpecError
from mmm_models.time_varying import TimeVaryingSpec, basis
from tests.conftest import QUICK

CHANNELS = ("tv", "search")


def brand_spec(**extra) -> ModelSpec:
    raw = simulation_spec(SimulationConfig(channels=CHANNELS, l_max=4), name="brand").model_dump(mode="json")
    for channel in raw["channels"]:
        channel["effect"] = {"kind": "roas"}
    return ModelSpec.from_dict({**raw, **extra})


def test_basis_is_centred_over_the_window_and_clamped_outside() -> None:
    spec = TimeVaryingSpec(basis_functions=10)
    dates = pd.date_range("2023-01-02", periods=60, freq="7D").to_numpy("datetime64[D]")
    arrays = basis(dates, "2023-01-02", 51.0, spec)
    window = arrays["gp_basis"][:52]
    np.testing.assert_allclose(window.mean(axis=0), 0.0, atol=1e-12)  # each f averages 0 over the window
    np.testing.assert_allclose(arrays["gp_basis"][52:], np.tile(arrays["gp_basis_last"], (8, 1)))  # held at the end
    np.testing.assert_allclose(arrays["gp_basis"][51], arrays["gp_basis_last"])


def test_a_refit_keeps_the_value_scales_but_takes_the_new_windows_time_axis() -> None:
    spec = brand_spec(time_varying={"media": [{"channels": ["tv"]}]})
    frame = simulate_market(SimulationConfig(weeks=80, channels=CHANNELS, l_max=4), seed=2).data
    earlier = ScalingFactors.compute(spec, frame.iloc[:40])
    refit = earlier.for_window(spec, frame)
    assert (refit.target, refit.spend) == (earlier.target, earlier.spend)
    assert (refit.time_origin, refit.time_span_weeks) == (str(frame["date"].iloc[0].date()), 79.0)
    assert refit.time_span_weeks != earlier.time_span_weeks


def test_multiplier_is_one_without_time_variation_and_follows_the_basis_with_it() -> None:
    spec = brand_spec(time_varying={"media": [{"channels": ["tv"]}]})
    layout = ChannelLayout.from_spec(spec)
    weeks, m = 20, spec.time_varying.basis_functions
    rng = np.random.default_rng(0)
    data = {"gp_basis": rng.normal(size=(weeks, m))}
    coef = rng.normal(size=(3, m, 1))  # 3 draws, one multiplier
    out = media_multiplier(np, layout, data, {"media_gp_coef": coef})
    assert out.shape == (3, weeks, 2)
    np.testing.assert_allclose(out[..., 1], 1.0)  # search does not vary
    np.testing.assert_allclose(np.log(out[..., 0]), np.einsum("wm,dm->dw", data["gp_basis"], coef[..., 0]))
    assert media_multiplier(np, ChannelLayout.from_spec(brand_spec()), data, {}) == 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"time_varying": {"media": [{"channels": ["radio"]}]}}, "not in the spec"),
        ({"time_varying": {"media": [{"channels": ["tv"]}, {"channels": ["tv", "search"]}]}}, "one time-varying"),
        ({"pooling": {"channel_groups": {"video": ["tv"], "other": ["tv"]}}}, "one channel group"),
        ({"pooling": {"channel_groups": {"video": []}}}, "lists no channels"),
    ],
)
def test_spec_rejects_inconsistent_time_varying_and_pooling(extra: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        brand_spec(**extra)


def test_a_channel_group_needs_one_effect_prior() -> None:
    raw = brand_spec().model_dump(mode="json")
    raw["channels"][1]["effect"] = {"kind": "contribution_share"}
    raw["pooling"]["channel_groups"] = {"all": list(CHANNELS)}
    with pytest.raises(SpecError, match="share one effect kind and prior"):
        ModelSpec.from_dict(raw)


@pytest.mark.parametrize(
    ("prior", "inside", "low", "high"),
    [
        ({"dist": "Beta", "alpha": 2, "beta": 2}, 0.3, 0.0, 1.0),
        ({"dist": "Uniform", "lower": 0.1, "upper": 0.9}, 0.5, 0.1, 0.9),
        ({"dist": "TruncatedNormal", "mu": 1, "sigma": 1, "lower": 0.5}, 1.0, 0.5, np.inf),
        ({"dist": "TruncatedNormal", "mu": -1, "sigma": 1, "upper": 2}, 1.0, -np.inf, 2.0),
        ({"dist": "Gamma", "alpha": 2, "beta": 1}, 2.0, 0.0, np.inf),
        ({"dist": "Normal", "mu": 0, "sigma": 1}, 0.3, -np.inf, np.inf),
    ],
)
def test_pooled_market_values_stay_inside_their_priors_support(
    prior: dict, inside: float, low: float, high: float
) -> None:
    """A market far from its brand (5 sd either way on the link scale) is still a valid value."""
    link = link_of(Prior.model_validate(prior))
    location = pt.as_tensor(np.array([inside, 0.4]))
    shifts = pt.as_tensor(np.array([[-5.0, 1.0], [0.0, 0.0], [5.0, -1.0]]))
    beta_link = link_of(Prior.model_validate({"dist": "Beta", "alpha": 1, "beta": 1}))
    values = shift_on_link_scale(location, shifts, [link, beta_link]).eval()
    assert (low < values[:, 0]).all() and (values[:, 0] < high).all()
    assert ((values[:, 1] > 0) & (values[:, 1] < 1)).all()
    np.testing.assert_allclose(values[1], [inside, 0.4])  # no shift: the brand value itself
    assert values[0, 0] < inside < values[2, 0]  # the shift moves the value the same way


def test_brand_design_pads_short_markets_at_the_front_and_masks_them() -> None:
    spec = brand_spec(time_varying={"intercept": {}})
    markets = simulate_brand({"short": 30, "long": 50}, channels=CHANNELS).markets
    designs = []
    for market in markets.values():
        scaling = ScalingFactors.compute(spec, market.data)
        designs.append(build_design(spec, market.data, scaling, bucket=None))
    stacked = BrandDesign(list(markets), designs, 52).model_data()
    assert stacked["spend_lags"].shape == (2, 52, 4, 2)
    assert stacked["mask"][0].sum() == 30 and stacked["mask"][0][:22].sum() == 0  # front padding is masked
    assert stacked["mask"][1].sum() == 50
    np.testing.assert_array_equal(stacked["target"][0][22:], designs[0].target)
    assert stacked["gp_basis"].shape == (2, 52, spec.time_varying.basis_functions)
    model = build_model(spec, BrandDesign(list(markets), designs, 52))
    assert model.named_vars_to_dims["channel_coef"] == ("market", "channel")
    assert model.named_vars_to_dims["intercept_gp_coef"] == ("market", "gp_basis")
    assert np.isfinite(model.compile_logp()(model.initial_point()))


@pytest.mark.parametrize(
    ("transforms", "dims"),
    [
        ("pooled", ("market", "adstock_geometric_channel")),
        ("shared", ("adstock_geometric_channel",)),
        ("independent", ("market", "adstock_geometric_channel")),
    ],
)
def test_transforms_are_pooled_shared_or_per_market(transforms: str, dims: tuple[str, ...]) -> None:
    spec = brand_spec(pooling={"transforms": transforms})
    markets = simulate_brand({"a": 30, "b": 30}, channels=CHANNELS).markets
    designs = [build_design(spec, m.data, ScalingFactors.compute(spec, m.data), bucket=None) for m in markets.values()]
    model = build_model(spec, BrandDesign(list(markets), designs, 30))
    assert model.named_vars_to_dims["adstock_geometric_alpha"] == dims
    assert ("adstock_geometric_alpha_market_sd" in model.named_vars) == (transforms == "pooled")
    assert np.isfinite(model.compile_logp()(model.initial_point()))


def test_channel_groups_add_a_group_level() -> None:
    spec = brand_spec(pooling={"channel_groups": {"video": list(CHANNELS)}})
    markets = simulate_brand({"a": 40, "b": 40}, channels=CHANNELS).markets
    designs = [build_design(spec, m.data, ScalingFactors.compute(spec, m.data), bucket=None) for m in markets.values()]
    model = build_model(spec, BrandDesign(list(markets), designs, 40))
    names = set(model.named_vars)
    assert {"channel_effect_group", "channel_effect_group_sd", "channel_effect_channel_z"} <= names
    assert model.named_vars_to_dims["channel_effect_brand"] == ("channel",)
    point = model.initial_point()
    assert np.isfinite(model.compile_logp()(point))
    # with no channel offset, both channels of the group sit at the group effect; an offset moves one
    effects = model.replace_rvs_by_values([model["channel_effect_brand"], model["channel_effect_group"]])
    evaluate = model.compile_fn(effects, inputs=model.value_vars, on_unused_input="ignore")
    point["channel_effect_channel_z"] = np.array([0.0, 0.0])
    brand_effect, group_effect = evaluate(point)
    np.testing.assert_allclose(brand_effect, [group_effect[0]] * 2)
    point["channel_effect_channel_z"] = np.array([1.0, 0.0])
    moved, _ = evaluate(point)
    assert moved[0] > group_effect[0] and moved[1] == pytest.approx(group_effect[0])


@pytest.fixture(scope="module")
def brand_fit():
    """Three markets (40, 80, 80 weeks) and a broken one, time-varying TV: one short nutpie fit."""
    spec = brand_spec(time_varying={"media": [{"channels": ["tv"]}]})
    brand = simulate_brand({"a": 40, "b": 80, "c": 80}, channels=CHANNELS, seed=3)
    frames = {m: s.data for m, s in brand.markets.items()}
    frames["broken"] = frames["a"].assign(y=1.0)  # a constant target: left out, not fatal
    settings = QUICK.model_copy(update={"sampler": "nutpie", "draws": 200, "tune": 200})
    return fit_brand(spec, frames, settings, brand="quick")


@pytest.mark.slow
def test_brand_fit_gives_one_model_per_market_and_leaves_bad_markets_out(brand_fit, tmp_path) -> None:
    fitted = brand_fit
    assert set(fitted.markets) == {"a", "b", "c"}
    assert "constant" in fitted.failed["broken"]
    short = fitted.markets["a"]
    assert len(short.data) == 40 and "market" not in short.idata.posterior.dims
    assert short.idata.posterior["channel_coef"].shape[-1] == 2
    # every market has its own effects, drawn around the brand's
    for market, view in fitted.markets.items():
        joint = fitted.idata.posterior["channel_coef"].sel(market=market)
        np.testing.assert_array_equal(view.idata.posterior["channel_coef"].to_numpy(), joint.to_numpy())
    assert not np.allclose(
        fitted.markets["a"].idata.posterior["channel_coef"], fitted.markets["b"].idata.posterior["channel_coef"]
    )
    assert {"channel_effect_brand", "channel_effect_market_sd", "media_gp0_length_scale"} <= set(
        fitted.brand_summary().index.str.split("[").str[0]
    )
    # the market view works with the single-market tools: ROAS, multipliers, save/load, prediction
    summary = analysis.channel_summary(short)
    assert summary["roas_mean"].gt(0).all()
    paths = analysis.channel_multipliers(short)
    assert set(paths.channel) == {"tv"} and len(paths) == 40
    assert (paths.hdi_low <= paths["mean"]).all() and (paths["mean"] <= paths.hdi_high).all()
    quarters = analysis.roas_by_period(short, "QS")
    assert quarters.period_start.nunique() >= 3 and set(quarters.channel) == set(CHANNELS)
    loaded = persistence.load(persistence.save(short, tmp_path / "a"))
    plan = short.data.tail(3).drop(columns=["y"]).assign(date=lambda f: f["date"] + pd.Timedelta(weeks=3))
    expected = predict(short, plan).weekly["expected_mean"]
    np.testing.assert_allclose(expected, predict(loaded, plan).weekly["expected_mean"])
    # the optimiser plans a time-varying channel at its effectiveness of the last training week
    response = ResponseModel.from_fitted(short)
    weekly = np.full((13, len(CHANNELS)), float(short.data[list(CHANNELS)].mean().mean()))
    constant = replace(response, layout=replace(response.layout, multiplier_map=None))
    ratio = response.channel_response(np, weekly) / constant.channel_response(np, weekly)
    latest = short.draws(1000)["media_log_multiplier_latest"][:, 0]
    np.testing.assert_allclose(ratio[:, 0], np.exp(latest), rtol=1e-9)
    np.testing.assert_allclose(ratio[:, 1], 1.0)
    recommendation = optimize_budget(short, BudgetProblem(total_budget=float(weekly.sum())))
    assert recommendation.table["recommended_spend"].sum() == pytest.approx(weekly.sum())


def test_brand_model_needs_two_valid_markets() -> None:
    spec = brand_spec()
    one = simulate_market(SimulationConfig(weeks=40, channels=CHANNELS, l_max=4)).data
    with pytest.raises(DataError, match="at least two valid markets"):
        fit_brand(spec, {"only": one, "broken": one.assign(y=1.0)}, QUICK)


@pytest.mark.slow
def test_a_brand_compiles_once_for_its_data(brand_fit) -> None:
    """A compiled brand model holds its brand's data (frozen into the XLA program, see
    ``fitting._compile_brand``): the same brand again (another chain block on the same worker) only
    samples; another brand of the same structure compiles for its own data, never samples on the
    previous brand's."""
    spec = brand_spec(time_varying={"media": [{"channels": ["tv"]}]})
    settings = brand_fit.markets["a"].settings
    other = simulate_brand({"x": 60, "y": 80, "z": 30}, channels=CHANNELS, seed=7)
    frames = {m: s.data for m, s in other.markets.items()}
    compilations = fitting.COMPILE_COUNT["count"]
    first = fit_brand(spec, frames, settings)  # three markets, as brand_fit's: the same structure
    assert fitting.COMPILE_COUNT["count"] == compilations + 1 and first.timings["compiled"] > 0.0
    again = fit_brand(spec, frames, settings.model_copy(update={"seed": settings.seed + 1}))
    assert fitting.COMPILE_COUNT["count"] == compilations + 1 and again.timings["compiled"] == 0.0
    assert list(again.idata.posterior["market"].values) == ["x", "y", "z"]
    assert len(again.markets["z"].data) == 30


def per_capita_brand(populations: dict[str, float], seed: int = 0) -> tuple[dict[str, pd.DataFrame], dict]:
    """Markets that behave alike per head (one ROAS, adstock and saturation truth per channel) but
    differ in size: each is a per-capita simulated market with target and spend times its population.
    ROAS is a ratio of contribution to spend, so the per-capita truth is the business-unit truth."""
    truth = {"roas": {"tv": 2.0, "search": 1.2}, "alpha": {"tv": 0.5, "search": 0.2}, "lam": {"tv": 2.0, "search": 3.0}}
    config = SimulationConfig(weeks=104, channels=CHANNELS, l_max=4, baseline_level=100.0, spend_level_range=(3, 7))
    frames = {}
    for index, (market, population) in enumerate(populations.items()):
        frame = simulate_market(config, seed=seed * 100 + index, truth=truth).data
        sized = frame.assign(**{c: frame[c] * population / 100 for c in ("y", *CHANNELS)})
        frames[market] = sized.assign(population=population)
    return frames, truth


def test_per_capita_scalings_put_markets_of_different_sizes_on_one_scale() -> None:
    spec = brand_spec(pooling={"population_column": "population"})
    small = simulate_market(SimulationConfig(weeks=60, channels=CHANNELS, l_max=4), seed=4).data
    large = small.assign(**{c: small[c] * 10 for c in ("y", *CHANNELS)})  # the same market per head, 10x the people
    other = simulate_market(SimulationConfig(weeks=60, channels=CHANNELS, l_max=4), seed=5).data
    scalings = per_capita_scalings(
        spec, {"small": small, "large": large, "other": other}, {"small": 1e5, "large": 1e6, "other": 3e5}
    )
    assert scalings["large"].target == pytest.approx(10 * scalings["small"].target)
    assert scalings["other"].spend["tv"] == pytest.approx(3 * scalings["small"].spend["tv"])
    assert scalings["large"].population == 1e6
    designs = {m: build_design(spec, frame, scalings[m]) for m, frame in (("small", small), ("large", large))}
    np.testing.assert_allclose(designs["small"].target, designs["large"].target)  # same per head, same arrays
    np.testing.assert_allclose(designs["small"].spend_lags, designs["large"].spend_lags)
    assert max(d.target.max() for d in designs.values()) <= 1.0  # the brand's largest target per head is 1


@pytest.mark.parametrize(
    ("population", "message"),
    [(None, "missing"), ([1e5] * 59 + [2e5], "one number per market"), (0.0, "positive")],
)
def test_a_bad_population_is_refused_with_the_reason(population, message) -> None:
    frame = simulate_market(SimulationConfig(weeks=60, channels=CHANNELS, l_max=4), seed=4).data
    bad = frame if population is None else frame.assign(population=population)
    with pytest.raises(DataError, match=message):
        population_from_column(bad, "population", "bad")


@pytest.mark.slow
def test_population_scaling_recovers_the_true_roas_in_business_units() -> None:
    """Three markets of 0.2, 1 and 5 million people with one per-capita truth: the population-scaled brand
    model reports ROAS in business units. Each market and channel's posterior mean lies within 3 posterior
    sd of the truth (for 6 independent z-scores, a false alarm about 6 x 0.27% = 1.6% of the time)."""
    populations = {"small": 2e5, "mid": 1e6, "large": 5e6}
    frames, truth = per_capita_brand(populations)
    spec = brand_spec(pooling={"population_column": "population", "transforms": "shared"})
    fitted = fit_brand(spec, frames, QUICK, brand="per_capita")
    assert fitted.markets["large"].scaling.population == 5e6
    assert fitted.markets["large"].scaling.target == pytest.approx(25 * fitted.markets["small"].scaling.target)
    for market, model in fitted.markets.items():
        summary = analysis.channel_summary(model).set_index("channel")
        for channel, true_roas in truth["roas"].items():
            mean, sd = summary.loc[channel, "roas_mean"], summary.loc[channel, "roas_sd"]
            assert abs(mean - true_roas) < 3 * sd, (market, channel, mean, sd, true_roas)


def test_the_brand_model_in_single_precision_has_the_double_precision_log_density() -> None:
    """nutpie samples a brand model in float32 (``fitting._compile_brand``): its log density and
    gradient must match float64's. float32 rounds each term to about 6e-8 relative; the log density
    sums about a thousand terms, so 1e-5 relative allows ten times the expected round-off, and
    no real modelling difference (a wrong dtype path, a term dropped) hides inside it."""
    import pytensor
    from pymc.sampling.jax import get_jaxified_graph

    spec = brand_spec(pooling={"transforms": "pooled"})
    markets = simulate_brand({"a": 60, "b": 80, "c": 80}, channels=CHANNELS, seed=5).markets
    designs = [build_design(spec, m.data, ScalingFactors.compute(spec, m.data), bucket=None) for m in markets.values()]
    design = BrandDesign(list(markets), designs, 80)
    values: dict[str, list] = {}
    for precision in ("float64", "float32"):
        with pytensor.config.change_flags(floatX=precision):
            model = build_model(spec, design)
            logp = model.logp()
            density = get_jaxified_graph(model.value_vars, [logp, *pytensor.grad(logp, model.value_vars)])
            point = model.initial_point()
            rng = np.random.default_rng(0)
            for _ in range(3):
                moved = [point[v.name] + rng.normal(0, 0.3, point[v.name].shape) for v in model.value_vars]
                logp_value, *grads = density(*(m.astype(precision) for m in moved))
                gradient = np.concatenate([np.ravel(g) for g in grads]).astype(float)
                values.setdefault(precision, []).append((float(logp_value), gradient))
            assert model["spend_lags"].dtype == precision
    for (logp64, grad64), (logp32, grad32) in zip(values["float64"], values["float32"], strict=True):
        assert logp32 == pytest.approx(logp64, rel=1e-5)
        assert np.linalg.norm(grad32 - grad64) <= 1e-4 * np.linalg.norm(grad64)
