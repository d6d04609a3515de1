"""Job: fit one market (or one brand's markets) from files and report. A thin entry point over ``mmm_models``.

With ``--market-column`` the CSV holds several markets of one brand: they are fitted as one
hierarchical brand model (``mmm_models.brand``), and each market gets its own report and outputs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from mmm_models import analysis
from mmm_models.brand import BrandFit, fit_brand
from mmm_models.data import DataError
from mmm_models.diagnostics import diagnose
from mmm_models.fitted import FittedModel, fit
from mmm_models.fitting import FitSettings
from mmm_models.outputs import write_outputs
from mmm_models.report import format_report
from mmm_models.spec import ModelSpec, SpecError
from pipelines.names import InvalidNameError, safe_path

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    """Fit, print the report, write outputs; exit status 1 with a clear message on bad input."""
    try:
        spec = ModelSpec.from_yaml(args.spec)
        frame = pd.read_csv(args.data)
        settings = FitSettings(
            sampler=args.sampler,
            chains=args.chains,
            draws=args.draws,
            tune=args.tune,
            seed=args.seed,
            target_accept=args.target_accept,
            holdout_weeks=args.holdout_weeks,
        )
        name = args.market or Path(args.data).stem
        lift_tests = pd.read_csv(args.lift_tests) if args.lift_tests else None
        if args.market_column and args.output and args.market_column in frame:
            for market in frame[args.market_column].astype(str).unique():  # a market is a folder: check first
                safe_path(args.output, market)
        if args.market_column:
            fitted = _fit_brand(spec, frame, settings, args.market_column, name, lift_tests)
            models = fitted.markets
        else:
            models = {name: fit(spec, frame, settings, market=name, lift_tests=lift_tests)}
    except (SpecError, DataError, FileNotFoundError, InvalidNameError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.market_column:
        _report_brand(fitted, args.output)
    for market, model in models.items():
        output = safe_path(args.output, str(market)) if args.output and len(models) > 1 else args.output
        _report_market(model, output)
    return 0


def _fit_brand(
    spec: ModelSpec,
    frame: pd.DataFrame,
    settings: FitSettings,
    market_column: str,
    brand: str,
    lift_tests: pd.DataFrame | None,
) -> BrandFit:
    """One brand model over the markets in ``frame[market_column]`` (lift tests split the same way)."""
    if market_column not in frame.columns:
        raise DataError(f"--market-column {market_column!r} is not in the data; its columns: {list(frame.columns)}")
    frames = {str(m): part.drop(columns=market_column) for m, part in frame.groupby(market_column)}
    tests = None
    if lift_tests is not None:
        if market_column not in lift_tests.columns:
            raise DataError(f"the lift tests need a {market_column!r} column to say which market each test ran in")
        tests = {str(m): part.drop(columns=market_column) for m, part in lift_tests.groupby(market_column)}
    return fit_brand(spec, frames, settings, brand=brand, lift_tests=tests)


def _report_brand(fitted: BrandFit, output: Path | None) -> None:
    """What only the brand model has: markets left out, and the brand-level (pooled) parameters
    (also written to ``brand_summary.csv`` in the output folder)."""
    print(f"Brand model {fitted.brand!r}: one hierarchical model over {len(fitted.markets)} markets")
    for market, reason in fitted.failed.items():
        print(f"  left out {market}: {reason}")
    shared = fitted.brand_diagnostics()
    print(f"  brand-level parameters: max R-hat {shared['max_rhat']:.3f}, min bulk ESS {shared['min_ess_bulk']:.0f}")
    summary = fitted.brand_summary()
    print(summary[["mean", "sd", "hdi_5%", "hdi_95%", "r_hat"]].to_string())
    if output:
        output.mkdir(parents=True, exist_ok=True)
        summary.to_csv(output / "brand_summary.csv")
    print()


def _report_market(model: FittedModel, output: Path | None) -> None:
    log.info("%s: summarising the posterior", model.market)
    diagnostics = diagnose(model)
    summary = analysis.channel_summary(model)
    print(format_report(model, diagnostics, summary))
    if model.lift_tests is not None:
        check = analysis.lift_test_check(model, model.lift_tests)
        columns = ["channel", "start", "end", "lift", "model_lift_mean", "z_score", "inside_predictive_interval"]
        print("\nLift tests (observed against the calibrated model)")
        print(check[columns].to_string(index=False))
    multipliers = analysis.channel_multipliers(model)
    if len(multipliers):
        quarters = analysis.roas_by_period(model, "QS")
        varying = quarters[quarters["channel"].isin(multipliers["channel"])]
        print("\nTime-varying channels: ROAS by quarter (posterior mean [90% HDI])")
        print(
            varying.assign(
                ROAS=[f"{r.roas_mean:.3g} [{r.roas_hdi_low:.3g}, {r.roas_hdi_high:.3g}]" for r in varying.itertuples()]
            )[["period_start", "channel", "ROAS"]].to_string(index=False)
        )
    if output:
        write_outputs(model, summary, output, roas_by_quarter=quarters if len(multipliers) else None)
        print(f"\nSaved model, tables and plots to {output}/")
    print()
