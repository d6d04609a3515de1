"""Meridian's side of ``benchmarks/meridian_peer.py``: run by Meridian's own interpreter, never by this project's.

Reads a CSV shaped like Meridian's ``geo_all_channels.csv`` (``geo``, ``time``, ``<channel>_impression``
and ``<channel>_spend`` per paid channel, controls, optional organic media and non-media treatments,
``conversions``, ``revenue_per_conversion``, ``population``) with Meridian's ``CsvDataLoader``, fits
it with the getting-started settings (default ``ModelSpec`` and priors, whose ROI prior is the
guide's LogNormal(0.2, 0.9); the JAX backend, Meridian 2.1's default) and the last
``--holdout-weeks`` of every geo as ``holdout_id``, and writes one JSON file: wall seconds (model
build, compilation and sampling), convergence over every posterior variable, min bulk ESS of the
national ROI, national ROI per channel (mean, 5th and 95th percentile), the same per geo, and the
posterior-mean expected revenue per geo and week (for the holdout scores, which the caller computes
the same way for both sides).

Imports only Meridian's stack and the standard library, so it runs in a virtual environment that
has google-meridian 2.1 and nothing of this project.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import arviz as az
import numpy as np

QUANTILES = (0.05, 0.95)


def load(csv: str, roles: dict):
    """Meridian's ``InputData`` from the CSV, through its coordinate mapping."""
    from meridian.data import load as meridian_load

    channels = roles["channels"]
    columns = meridian_load.CoordToColumns(
        time="time",
        geo="geo",
        controls=roles["controls"],
        population="population",
        kpi="conversions",
        revenue_per_kpi="revenue_per_conversion",
        media=[f"{c}_impression" for c in channels],
        media_spend=[f"{c}_spend" for c in channels],
        organic_media=roles["organic"] or None,
        non_media_treatments=roles["non_media"] or None,
    )
    loader = meridian_load.CsvDataLoader(
        csv_path=csv,
        kpi_type="non_revenue",
        coord_to_columns=columns,
        media_to_channel={f"{c}_impression": c for c in channels},
        media_spend_to_channel={f"{c}_spend": c for c in channels},
    )
    return loader.load()


def summarise(draws: np.ndarray) -> list:
    """Mean, 5th and 95th percentile over the (chain, draw) axes of ``chain x draw x ...``."""
    flat = draws.reshape(-1, *draws.shape[2:])
    return np.stack([flat.mean(axis=0), *np.quantile(flat, QUANTILES, axis=0)]).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--roles", required=True, help="JSON: channels, controls, organic, non_media")
    parser.add_argument("--holdout-weeks", type=int, default=13)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--adapt", type=int, default=500)
    parser.add_argument("--burnin", type=int, default=500)
    parser.add_argument("--keep", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # ArviZ on constant draws: R-hat is then inf/NaN

    os.environ.setdefault("MERIDIAN_BACKEND", "jax")  # read when meridian is first imported
    from meridian.analysis import analyzer
    from meridian.model import model, prior_distribution, spec

    data = load(args.csv, json.loads(args.roles))
    geos, times = len(data.geo), len(data.time)
    holdout = None
    if args.holdout_weeks:
        holdout = np.zeros((geos, times), dtype=bool)
        holdout[:, -args.holdout_weeks :] = True
    start = time.perf_counter()
    mmm = model.Meridian(
        input_data=data, model_spec=spec.ModelSpec(prior=prior_distribution.PriorDistribution(), holdout_id=holdout)
    )
    mmm.sample_posterior(
        n_chains=args.chains, n_adapt=args.adapt, n_burnin=args.burnin, n_keep=args.keep, seed=args.seed
    )
    wall = time.perf_counter() - start

    idata = mmm.inference_data
    summary = az.summary(idata, group="posterior", kind="diagnostics")
    mmm_analyzer = analyzer.Analyzer(model_context=mmm.model_context, inference_data=idata)
    trained = [str(t) for t in data.time.values[: times - args.holdout_weeks]]  # ROI over the fitted weeks, as ours
    roi_national = np.asarray(mmm_analyzer.roi(selected_times=trained))
    roi_geo = np.asarray(mmm_analyzer.roi(selected_times=trained, aggregate_geos=False))
    expected = np.asarray(mmm_analyzer.expected_outcome(aggregate_geos=False, aggregate_times=False, use_kpi=False))
    roi_ess = float(az.ess(az.convert_to_dataset({"roi": roi_national}))["roi"].min())
    channels = [str(c) for c in data.media_channel.values]
    national, by_geo = summarise(roi_national), summarise(roi_geo)
    result = {
        "wall_s": round(wall, 1),
        "divergences": int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else None,
        "max_rhat": float(summary["r_hat"].max()),
        "min_ess_bulk": float(summary["ess_bulk"].min()),
        "worst_ess_parameter": str(summary["ess_bulk"].idxmin()),
        "min_ess_bulk_roas": roi_ess,
        "roas_ess_per_s": roi_ess / wall,
        "roas": {c: [round(v[i], 4) for v in national] for i, c in enumerate(channels)},
        "geo_roas": {str(g): [stat[j] for stat in by_geo] for j, g in enumerate(data.geo.values)},
        "expected": {str(g): expected.mean(axis=(0, 1))[j].tolist() for j, g in enumerate(data.geo.values)},
    }
    with open(args.out, "w") as out:
        json.dump(result, out)
    print(f"meridian: {args.chains} chains x ({args.adapt} + {args.burnin} + {args.keep}) in {wall:.1f} s", flush=True)


if __name__ == "__main__":
    main()
