"""A brand model that scales: the 40 Meridian geos in one model, and market spreads that learn.

1. The 40 geos of ``../shared/data/meridian/geo_all_channels.csv`` as one brand model (target revenue =
   conversions x revenue_per_conversion; the five ``Channel*_spend`` with Meridian's ROI prior
   LogNormal(0.2, 0.9) as ROAS priors; the two controls and ``Promo`` as controls; per-capita scaling by
   ``population``; transforms per ``--transforms``), sampled with the platform's sampler (nutpie). Prints
   the sampler's seconds (``brand_sample_s``; the one-off compilation apart) and the fit's CPU seconds,
   max R-hat, min bulk ESS and divergences over every parameter, and the seconds of each market's
   summaries (ROAS table and diagnostics, as the training job computes them, on 1000 draws).
3. With ``--compare``: the 40 geos sampled as before (pooled transforms, per-market scaling, numba) and
   as now, side by side in one process with the same settings.
2. Market spreads that learn: a simulated brand (``--sim-markets`` markets of 156 weeks, each market's
   ROAS, adstock and saturation drawn around the brand's with sd 0.25 on the link scale), fitted with
   the same settings and pooled transforms: the prior sd of ``channel_effect_market_sd`` against its
   posterior sd per channel.

    python benchmarks/brand_scale.py [--chains 4] [--draws 1000] [--tune 1000] [--transforms shared]
        [--sim-markets 20] [--skip-meridian] [--skip-simulation] [--compare]

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import arviz as az
import pandas as pd
from scipy import stats

from mmm_models import analysis
from mmm_models.brand import BrandFit, fit_brand
from mmm_models.diagnostics import diagnose
from mmm_models.fitting import FitSettings
from mmm_models.simulator import simulate_brand, simulation_spec
from mmm_models.spec import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "meridian" / "geo_all_channels.csv"
CHANNELS = [f"Channel{i}_spend" for i in range(5)]
ROI_PRIOR = {"dist": "LogNormal", "params": {"mu": 0.2, "sigma": 0.9}}  # Meridian's default ROI prior
TRUE_SPREAD = 0.25


def meridian_frames() -> dict[str, pd.DataFrame]:
    """One weekly frame per geo, with revenue as the target."""
    data = pd.read_csv(DATA).drop(columns="Unnamed: 0")
    data = data.assign(revenue=data["conversions"] * data["revenue_per_conversion"], date=data["time"])
    return {str(geo): frame.drop(columns="geo") for geo, frame in data.groupby("geo")}


def meridian_spec(transforms: str) -> ModelSpec:
    return ModelSpec.from_dict(
        {
            "name": "meridian_geo",
            "target": {"column": "revenue"},
            "channels": [
                {
                    "name": c,
                    "adstock": {"type": "geometric", "l_max": 8},
                    "effect": {"kind": "roas", "prior": ROI_PRIOR},
                }
                for c in CHANNELS
            ],
            "controls": [{"name": n} for n in ("competitor_sales_control", "sentiment_score_control", "Promo")],
            "pooling": {"transforms": transforms, "population_column": "population"},
        }
    )


def convergence(fitted: BrandFit) -> dict[str, float | int | str]:
    summary = az.summary(fitted.idata, kind="diagnostics")
    steps = fitted.idata.sample_stats.get("n_steps")
    return {
        "max_rhat": float(summary["r_hat"].max()),
        "worst_rhat": str(summary["r_hat"].idxmax()),
        "min_ess_bulk": float(summary["ess_bulk"].min()),
        "worst_ess": str(summary["ess_bulk"].idxmin()),
        "divergences": int(fitted.idata.sample_stats["diverging"].sum()),
        "mean_leapfrog_steps": float(steps.mean()) if steps is not None else float("nan"),
    }


def summaries_seconds(fitted: BrandFit) -> float:
    """Seconds per market of what the training job computes for each market: diagnostics and the ROAS
    table on 1000 draws."""
    start = time.perf_counter()
    for model in fitted.markets.values():
        diagnose(model)
        analysis.channel_summary(model, max_draws=1000)
    return (time.perf_counter() - start) / len(fitted.markets)


def spread_check(settings: FitSettings, markets: int) -> dict[str, object]:
    """Prior and posterior sd of each channel's market spread on a simulated brand (true spread 0.25)."""
    raw = simulation_spec(name="spread").model_dump(mode="json")
    for channel in raw["channels"]:
        channel["effect"] = {"kind": "roas"}
    spec = ModelSpec.from_dict({**raw, "pooling": {"transforms": "pooled"}})
    brand = simulate_brand({f"m{i}": 156 for i in range(markets)}, market_sd=TRUE_SPREAD, seed=11)
    start = time.perf_counter()
    fitted = fit_brand(spec, {m: s.data for m, s in brand.markets.items()}, settings, brand="spread")
    spread = fitted.idata.posterior["channel_effect_market_sd"]
    prior = spec.pooling.effect_sd
    prior_sd = float(stats.halfnorm(scale=prior.params["sigma"]).std())
    return {
        "markets": markets,
        "true_spread": TRUE_SPREAD,
        "prior_sd": round(prior_sd, 3),
        "posterior_mean": {
            c: round(float(v), 3)
            for c, v in zip(spec.channel_names, spread.mean(("chain", "draw")).values, strict=True)
        },
        "posterior_sd": {
            c: round(float(v), 3) for c, v in zip(spec.channel_names, spread.std(("chain", "draw")).values, strict=True)
        },
        "sample_s": round(fitted.timings["sampler_s"], 1),
        **convergence(fitted),
        "wall_s": round(time.perf_counter() - start, 1),
    }


def compare_with_before(chains: int, draws: int, tune: int) -> list[dict[str, object]]:
    """The 40 geos as the brand model was sampled before (pooled transforms, per-market max scaling,
    numba) and as it is now (shared transforms, per-capita scaling, JAX), one after the other in this
    process with the same nutpie settings: compile seconds, sampling seconds and CPU seconds (the
    process's, a figure that depends less on what else runs on the machine), min bulk ESS."""
    import nutpie

    from mmm_models import backend
    from mmm_models.data import padded_length, per_capita_scalings
    from mmm_models.fitted import prepare_market
    from mmm_models.hierarchy import BrandDesign
    from mmm_models.model import build_model

    backend.configure()
    frames, rows = meridian_frames(), []
    for transforms, per_capita, compiler in (("pooled", False, "numba"), ("shared", True, "jax")):
        spec = meridian_spec(transforms)
        settings = FitSettings()
        prepared = {m: prepare_market(spec, f, settings, None, m, bucket=None) for m, f in frames.items()}
        if per_capita:
            populations = {m: float(f["population"].iloc[0]) for m, f in frames.items()}
            scalings = per_capita_scalings(spec, {m: p.data for m, p in prepared.items()}, populations)
            prepared = {m: prepare_market(spec, frames[m], settings, scalings[m], m, bucket=None) for m in frames}
        design = BrandDesign(list(frames), [p.design for p in prepared.values()], padded_length(156))
        start = time.perf_counter()
        model = build_model(spec, design)
        extra = {"backend": "jax", "gradient_backend": "jax"} if compiler == "jax" else {}
        compiled = nutpie.compile_pymc_model(model, **extra)
        compile_s = time.perf_counter() - start
        cpu, start = time.process_time(), time.perf_counter()
        idata = nutpie.sample(
            compiled, chains=chains, draws=draws, tune=tune, cores=2, seed=1, progress_bar=False,
            low_rank_modified_mass_matrix=True,
        )  # fmt: skip
        summary = az.summary(idata, kind="diagnostics")
        rows.append(
            {
                "model": f"{transforms}, {'per-capita' if per_capita else 'max'} scaling, {compiler}",
                "compile_s": round(compile_s, 1),
                "sample_s": round(time.perf_counter() - start, 1),
                "sample_cpu_s": round(time.process_time() - cpu, 1),
                "min_ess_bulk": float(summary["ess_bulk"].min()),
                "max_rhat": float(summary["r_hat"].max()),
                "divergences": int(idata.sample_stats["diverging"].sum()),
                "mean_leapfrog_steps": float(idata.sample_stats["n_steps"].mean()),
                "loadavg": os.getloadavg()[0],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--target-accept", type=float, default=0.9)
    parser.add_argument("--transforms", choices=["pooled", "shared", "independent"], default="shared")
    parser.add_argument("--sim-markets", type=int, default=20)
    parser.add_argument("--skip-meridian", action="store_true")
    parser.add_argument("--skip-simulation", action="store_true")
    parser.add_argument("--compare", action="store_true", help="also sample the 40 geos as before, side by side")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = FitSettings(
        sampler="nutpie",
        chains=args.chains,
        draws=args.draws,
        tune=args.tune,
        cores=2,
        target_accept=args.target_accept,
    )
    result: dict[str, object] = {
        "settings": f"{args.chains}x{args.draws} (+{args.tune} tune)",
        "transforms": args.transforms,
    }
    if not args.skip_meridian:
        spec, frames = meridian_spec(args.transforms), meridian_frames()
        # Compile the structure with a 10-draw fit first, so that brand_sample_s is sampling alone.
        first = fit_brand(spec, frames, settings.model_copy(update={"draws": 10, "tune": 10}), brand="meridian")
        cpu = time.process_time()
        fitted = fit_brand(spec, frames, settings, brand="meridian")
        result.update(
            brand_sample_s=round(fitted.timings["sampler_s"], 1),
            # CPU seconds of the fit (every thread of this process): on a machine shared with other
            # jobs, wall seconds say as much about them; on 2 free cores wall is about half of this.
            brand_fit_cpu_s=round(time.process_time() - cpu, 1),
            compile_and_10_draws_s=round(first.timings["sampler_s"], 1),
            markets=len(fitted.markets),
            **convergence(fitted),
            summary_s_per_market=round(summaries_seconds(fitted), 2),
        )
        print(json.dumps({"meridian": result}), flush=True)
    if not args.skip_simulation:
        result["spread_check"] = spread_check(settings, args.sim_markets)
    if args.compare:
        result["before_and_now"] = compare_with_before(args.chains, args.draws, args.tune)
    result["loadavg"] = os.getloadavg()[0]
    print(json.dumps(result, default=float))


if __name__ == "__main__":
    main()
