"""This platform and Google Meridian 2.1 side by side, on Meridian's 40 geos and on a simulated 40-geo brand.

Meridian runs in its own virtual environment (``<workdir>/venv``, created with ``python -m venv`` and
``pip install google-meridian==2.1.*`` on first use, reused while it holds a 2.1 release), through
``benchmarks/meridian_side.py`` as a subprocess that writes its figures as JSON. This platform runs
in this process. Both fit the same weeks, one after another (Meridian first), so their wall times
share one machine and one load.

Real data (``../shared/data/meridian/geo_all_channels.csv``, see its README), the last 13 weeks of
every geo held out on both sides:

- Meridian: its getting-started inputs (KPI ``conversions`` with ``revenue_per_conversion``, the five
  impression channels with their spends, the two controls, the organic channel, ``Promo`` as a
  non-media treatment, ``population``), its default ``ModelSpec`` with ``holdout_id`` on the last 13
  weeks, the JAX backend, 4 chains x (500 adapt + 500 burn-in + 500 kept).
- This platform: ``fit_brand`` with the training job's sampler settings (``TrainingSettings``: nutpie,
  4 chains x 500 tune + 1000 draws, target_accept 0.95). The target is revenue (conversions x
  revenue_per_conversion); the five spends are the channels (geometric adstock l_max 8 as Meridian's
  ``max_lag``, logistic saturation, ROAS effects, adstock and saturation pooled over geos: the platform's
  default ``pooling.transforms: pooled``, where Meridian shares one adstock and saturation by the brand);
  target and spend per capita (``pooling.population_column``, as Meridian scales them); the two controls,
  the organic impressions and ``Promo`` are controls (brand models take no treatment input yet);
  2 yearly harmonics and a linear trend.

Figures per side: wall seconds (model build, compilation and sampling), max R-hat and min bulk ESS
over every posterior variable, min bulk ESS over the channels' national ROAS (ROI), holdout R^2 and
MAPE of the posterior-mean revenue per geo (median over geos) and national (the geos' sum per week),
national ROAS per channel (posterior mean, equal-tailed 90% interval).

Simulated truth: ``mmm_models.simulator.simulate_brand`` draws 40 geos x 156 weeks of five channels
whose ROAS are drawn around brand-level values; it is written as a CSV shaped like Meridian's
(impressions = spend, ``revenue_per_conversion`` 1, ``price_index`` the control, each geo's
baseline level as its population) and fitted by both sides with the same settings, on every week (the
true ROAS is over every week). Both sides are scored the same way over the 200 channel x geo cells:
the true ROAS of a cell is the simulator's (its contribution over its spend); ``median_abs_error`` is
the median over cells of |posterior mean ROAS - true ROAS|; ``coverage_90`` is the share of cells
whose true ROAS lies inside the equal-tailed 90% posterior interval (5th to 95th percentile).

The last line is one JSON object: ``ours`` and ``meridian`` (``wall_s``, ``max_rhat``, ``min_ess_bulk``,
``roas_ess_per_s``: min bulk ESS over the ROAS per wall second, ``holdout_r2_geo_median``,
``holdout_r2_national``, ``sim_roas_median_abs_error``, ``sim_roas_coverage_90``; ``ours`` also
``brand_sample_s``, the brand model's sampling seconds on the real data) and ``speedup`` (our
``roas_ess_per_s`` over Meridian's).

    python benchmarks/meridian_peer.py [--workdir /tmp/meridian_peer] [--quick] [--part all|real|simulation]

``--quick`` (4 geos, 2 short chains per side) checks the plumbing; its figures say nothing about
either model. Each half (``real``, ``simulation``) saves its figures in the workdir
(``full_real.json``...); ``--part`` runs one half, and the JSON line is printed from the latest saved
figures of both halves of the same mode.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

from mmm_models import analysis
from mmm_models.brand import BrandFit, fit_brand
from mmm_models.diagnostics import mape, r_squared
from mmm_models.fitted import FittedModel
from mmm_models.fitting import FitSettings
from mmm_models.simulator import SimulatedBrand, simulate_brand
from mmm_models.spec import ModelSpec
from pipelines.config import TrainingSettings

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "meridian" / "geo_all_channels.csv"
SIDE = ROOT / "benchmarks" / "meridian_side.py"
MERIDIAN = "google-meridian==2.1.*"
CHANNELS = [f"Channel{i}" for i in range(5)]
CONTROLS = ["competitor_sales_control", "sentiment_score_control", "Organic_channel0_impression", "Promo"]
HOLDOUT_WEEKS = 13
ROAS_QUANTILES = (0.05, 0.95)


@dataclass(frozen=True)
class Run:
    """How long each side samples: the full run, or ``--quick``'s plumbing check."""

    name: str
    geos: int
    chains: int
    meridian_adapt: int
    meridian_burnin: int
    meridian_keep: int
    ours: FitSettings


# the training job's sampler settings, with every core for the chains
OURS = TrainingSettings().fit_settings().model_copy(update={"holdout_weeks": 0, "cores": None})
FULL = Run(name="full", geos=40, chains=4, meridian_adapt=500, meridian_burnin=500, meridian_keep=500, ours=OURS)
QUICK = Run(
    name="quick",
    geos=4,
    chains=2,
    meridian_adapt=50,
    meridian_burnin=20,
    meridian_keep=50,
    ours=OURS.model_copy(update={"chains": 2, "draws": 100, "tune": 100}),
)


def meridian_python(workdir: Path) -> Path:
    """Meridian's interpreter: ``<workdir>/venv``, created and installed on first use."""
    python = workdir / "venv" / "bin" / "python"
    probe = [str(python), "-c", "import importlib.metadata as m; print(m.version('google-meridian'))"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip().startswith("2.1."):
            return python
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"creating {workdir / 'venv'} with {MERIDIAN} (a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(workdir / "venv")], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", MERIDIAN], check=True)
    return python


def run_meridian(python: Path, csv: Path, roles: dict, run: Run, holdout_weeks: int, out: Path) -> dict:
    """Fit Meridian in its own interpreter on ``csv``; its figures, read back from ``out``."""
    command = [
        str(python), str(SIDE), "--csv", str(csv), "--out", str(out), "--roles", json.dumps(roles),
        "--holdout-weeks", str(holdout_weeks), "--chains", str(run.chains), "--adapt", str(run.meridian_adapt),
        "--burnin", str(run.meridian_burnin), "--keep", str(run.meridian_keep),
    ]  # fmt: skip
    finished = subprocess.run(command)
    if finished.returncode != 0:
        raise SystemExit(f"Meridian's side failed on {csv} (exit {finished.returncode}); its output is above")
    return json.loads(out.read_text())


def our_spec(date_column: str, target: str, controls: list[str], population: str | None = None) -> ModelSpec:
    """The platform's spec for the five channels: Meridian's lag window, ROAS effects and transforms pooled
    over geos (the platform's default), per-capita scaling when the frames have a ``population`` column."""
    channel = {"adstock": {"type": "geometric", "l_max": 8}, "saturation": {"type": "logistic"}}
    return ModelSpec.from_dict(
        {
            "name": "meridian_peer",
            "date_column": date_column,
            "target": {"column": target},
            "channels": [{"name": c, **channel, "effect": {"kind": "roas"}} for c in CHANNELS],
            "controls": [{"name": c} for c in controls],
            "seasonality": {"harmonics": 2},
            "trend": {"type": "linear"},
            "pooling": {"transforms": "pooled", "population_column": population},
        }
    )


def real_frames(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Meridian's CSV as this platform's per-geo frames: revenue as the target, spends as channels."""
    frame = data.assign(revenue=data["conversions"] * data["revenue_per_conversion"])
    frame = frame.rename(columns={f"{c}_spend": c for c in CHANNELS})
    columns = ["time", "revenue", *CHANNELS, *CONTROLS, "population"]
    return {str(geo): part[columns].reset_index(drop=True) for geo, part in frame.groupby("geo", sort=False)}


def simulated(geos: int, seed: int) -> SimulatedBrand:
    """A brand of ``geos`` geos x 156 weeks with known ROAS per channel and geo."""
    return simulate_brand({f"Geo{i}": 156 for i in range(geos)}, channels=tuple(CHANNELS), seed=seed)


def meridian_csv(brand: SimulatedBrand) -> pd.DataFrame:
    """The simulated brand in the shape of Meridian's CSV (impressions = spend, one dollar per conversion)."""
    parts = []
    for geo, market in brand.markets.items():
        data = market.data
        part = pd.DataFrame({"geo": geo, "time": data["date"].dt.strftime("%Y-%m-%d")})
        for c in CHANNELS:
            part[f"{c}_impression"] = data[c]
            part[f"{c}_spend"] = data[c]
        part["price_index"] = data["price_index"]
        part["conversions"] = data["y"]
        part["revenue_per_conversion"] = 1.0
        part["population"] = market.config.baseline_level
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def roas_draws(model: FittedModel) -> tuple[np.ndarray, np.ndarray]:
    """Per draw (chain-major) and channel: the contribution of the training weeks' spend, and that spend."""
    draws = analysis.channel_metric_draws(model, marginal=False)
    contribution = draws.sel(metric="contribution").to_numpy()
    spend = np.nansum(model.data[model.channel_names].to_numpy(float)[: model.train_weeks], axis=0)
    return contribution, spend


def interval(draws: np.ndarray) -> np.ndarray:
    """Posterior mean and equal-tailed 90% interval along axis 0: (3, ...)."""
    return np.stack([draws.mean(axis=0), *np.quantile(draws, ROAS_QUANTILES, axis=0)])


def min_ess(draws: np.ndarray) -> float:
    """Smallest bulk ESS over the last axis of ``chain x draw x k`` draws."""
    return float(az.ess(az.convert_to_dataset({"x": draws}))["x"].min())


def expected_revenue(model: FittedModel) -> np.ndarray:
    """Posterior-mean expected outcome per week (every week, held out included)."""
    evaluator = analysis.PosteriorEvaluator(model, max_draws=1000)
    return np.concatenate([evaluator.outcome(evaluator.mu_and_terms(p)[0]) for p in evaluator.chunks()]).mean(0)


def fit_scores(observed: dict[str, np.ndarray], expected: dict[str, np.ndarray], holdout: int) -> dict:
    """Holdout R^2 and MAPE per geo (median) and of the national sum, on the last ``holdout`` weeks."""
    tail = slice(-holdout, None)
    per_geo = [
        (r_squared(observed[g][tail], expected[g][tail]), mape(observed[g][tail], expected[g][tail])) for g in observed
    ]
    national_obs = np.sum([observed[g][tail] for g in observed], axis=0)
    national_exp = np.sum([expected[g][tail] for g in observed], axis=0)
    return {
        "holdout_r2_geo_median": float(np.median([r for r, _ in per_geo])),
        "holdout_mape_geo_median": float(np.median([m for _, m in per_geo])),
        "holdout_r2_national": r_squared(national_obs, national_exp),
        "holdout_mape_national": mape(national_obs, national_exp),
    }


def convergence(brand: BrandFit) -> dict:
    """Divergences, max R-hat and min bulk ESS over every posterior variable of the joint fit."""
    summary = az.summary(brand.idata, kind="diagnostics")
    return {
        "divergences": int(brand.idata.sample_stats["diverging"].sum()),
        "max_rhat": float(summary["r_hat"].max()),
        "min_ess_bulk": float(summary["ess_bulk"].min()),
        "worst_ess_parameter": str(summary["ess_bulk"].idxmin()),
    }


def fit_ours(frames: dict[str, pd.DataFrame], spec: ModelSpec, settings: FitSettings) -> tuple[BrandFit, dict]:
    """The brand model over ``frames``; its timings, convergence and per-geo ROAS draws."""
    brand = fit_brand(spec, frames, settings, brand="meridian_peer")
    per_geo = {geo: roas_draws(model) for geo, model in brand.markets.items()}
    contribution = sum(c for c, _ in per_geo.values())
    spend = sum(s for _, s in per_geo.values())
    national = contribution / spend
    wall = brand.timings["wall_s"]
    figures = {
        "wall_s": round(wall, 1),
        "brand_sample_s": round(brand.timings["sampler_s"], 1),
        **convergence(brand),
        "min_ess_bulk_roas": min_ess(national.reshape(settings.chains, -1, len(CHANNELS))),
        "roas": {c: [round(float(v), 4) for v in interval(national)[:, i]] for i, c in enumerate(CHANNELS)},
        "geo_roas": {g: interval(c / s).round(5).tolist() for g, (c, s) in per_geo.items()},
    }
    figures["roas_ess_per_s"] = figures["min_ess_bulk_roas"] / wall
    return brand, figures


def score_simulation(brand: SimulatedBrand, geo_roas: dict[str, list]) -> dict:
    """Median |posterior mean - truth| and 90% coverage over channel x geo cells (see the docstring)."""
    errors, inside = [], []
    for geo, market in brand.markets.items():
        mean, low, high = (np.asarray(row) for row in geo_roas[geo])
        truth = np.array([market.truth.roas[c] for c in CHANNELS])
        errors.extend(np.abs(mean - truth))
        inside.extend((low <= truth) & (truth <= high))
    return {"sim_roas_median_abs_error": float(np.median(errors)), "sim_roas_coverage_90": float(np.mean(inside))}


def report(side: str, figures: dict) -> None:
    """The side's figures on the real data, one line each, then its national ROAS per channel."""
    for key, value in figures.items():
        if key not in ("roas", "geo_roas"):
            print(f"{side:>9} {key}: {value}")
    for channel, (mean, low, high) in figures["roas"].items():
        print(f"{side:>9} ROAS {channel}: {mean:.3f} [{low:.3f}, {high:.3f}]", flush=True)


def real_data(run: Run, python: Path, workdir: Path) -> dict[str, dict]:
    """Both sides on Meridian's geos, the last 13 weeks held out: each side's figures."""
    data = pd.read_csv(DATA, index_col=0)
    data = data[data["geo"].isin(list(dict.fromkeys(data["geo"]))[: run.geos])]
    real_csv = workdir / f"{run.name}_real.csv"
    data.to_csv(real_csv, index=False)
    roles = {"channels": CHANNELS, "controls": CONTROLS[:2], "organic": CONTROLS[2:3], "non_media": CONTROLS[3:]}
    meridian = run_meridian(python, real_csv, roles, run, HOLDOUT_WEEKS, workdir / f"{run.name}_meridian_real.json")

    frames = real_frames(data)
    spec = our_spec("time", "revenue", CONTROLS, population="population")
    brand, ours = fit_ours(frames, spec, run.ours.model_copy(update={"holdout_weeks": HOLDOUT_WEEKS}))
    observed = {g: f["revenue"].to_numpy(float) for g, f in frames.items()}
    ours.update(fit_scores(observed, {g: expected_revenue(m) for g, m in brand.markets.items()}, HOLDOUT_WEEKS))
    expected = {g: np.asarray(v) for g, v in meridian.pop("expected").items()}
    meridian.update(fit_scores(observed, expected, HOLDOUT_WEEKS))
    report("ours", ours)
    report("meridian", meridian)
    return {"ours": ours, "meridian": meridian}


def simulation(run: Run, python: Path, workdir: Path, seed: int) -> dict[str, dict]:
    """Both sides on a simulated brand with known ROAS, every week fitted: each side's ROAS scores."""
    brand = simulated(run.geos, seed)
    sim_csv = workdir / f"{run.name}_simulated.csv"
    meridian_csv(brand).to_csv(sim_csv, index=False)
    roles = {"channels": CHANNELS, "controls": ["price_index"], "organic": [], "non_media": []}
    meridian = run_meridian(python, sim_csv, roles, run, 0, workdir / f"{run.name}_meridian_simulation.json")
    frames = {geo: market.data for geo, market in brand.markets.items()}
    _, ours = fit_ours(frames, our_spec("date", "y", ["price_index"]), run.ours)
    scores = {}
    for side, figures in (("ours", ours), ("meridian", meridian)):
        scores[side] = score_simulation(brand, figures["geo_roas"])
        print(f"{side:>9} simulated: wall {figures['wall_s']} s, max R-hat {figures['max_rhat']:.3f}, "
              f"min bulk ESS {figures['min_ess_bulk']:.0f}, ROAS ESS {figures['min_ess_bulk_roas']:.0f}, "
              f"{scores[side]}", flush=True)  # fmt: skip
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/meridian_peer"))
    parser.add_argument("--quick", action="store_true", help="4 geos, short chains: the plumbing only")
    parser.add_argument("--seed", type=int, default=0, help="the simulated brand's seed")
    parser.add_argument(
        "--part", choices=["all", "real", "simulation"], default="all", help="run one half; each is saved in --workdir"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    run = QUICK if args.quick else FULL
    if not DATA.exists():
        raise SystemExit(f"{DATA} is missing: the shared data must sit beside the checkout (../shared/data/meridian/)")
    python = meridian_python(args.workdir)

    parts = {
        "real": lambda: real_data(run, python, args.workdir),
        "simulation": lambda: simulation(run, python, args.workdir, args.seed),
    }
    for part, measure in parts.items():
        if args.part in ("all", part):
            (args.workdir / f"{run.name}_{part}.json").write_text(json.dumps(measure()))
    saved = [args.workdir / f"{run.name}_{part}.json" for part in parts]
    if all(path.exists() for path in saved):
        real, simulated_scores = (json.loads(path.read_text()) for path in saved)
        print(json.dumps(summary_line(real, simulated_scores)))
    else:
        print(f"the JSON line needs both parts; missing: {[p.name for p in saved if not p.exists()]}")


def summary_line(real: dict[str, dict], simulated_scores: dict[str, dict]) -> dict:
    """The benchmark's last line: each side's headline figures and the speedup in ROAS ESS per second."""
    keys = ["wall_s", "max_rhat", "min_ess_bulk", "roas_ess_per_s", "holdout_r2_geo_median", "holdout_r2_national"]
    line = {side: {k: real[side][k] for k in keys} | simulated_scores[side] for side in ("ours", "meridian")}
    line["ours"]["brand_sample_s"] = real["ours"]["brand_sample_s"]
    line["speedup"] = real["ours"]["roas_ess_per_s"] / real["meridian"]["roas_ess_per_s"]
    return line


if __name__ == "__main__":
    main()
