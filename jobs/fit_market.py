"""Job: fit one market from files and report. A thin entry point over ``mmm_models``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from mmm_models import analysis
from mmm_models.data import DataError
from mmm_models.diagnostics import diagnose
from mmm_models.fitted import fit
from mmm_models.fitting import FitSettings
from mmm_models.outputs import write_outputs
from mmm_models.report import format_report
from mmm_models.spec import ModelSpec, SpecError

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
            holdout_weeks=args.holdout_weeks,
        )
        market = args.market or Path(args.data).stem
        lift_tests = pd.read_csv(args.lift_tests) if args.lift_tests else None
        model = fit(spec, frame, settings, market=market, lift_tests=lift_tests)
    except (SpecError, DataError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    log.info("summarising the posterior")
    diagnostics = diagnose(model)
    summary = analysis.channel_summary(model)
    print(format_report(model, diagnostics, summary))
    if model.lift_tests is not None:
        check = analysis.lift_test_check(model, model.lift_tests)
        columns = ["channel", "start", "end", "lift", "model_lift_mean", "z_score", "inside_predictive_interval"]
        print("\nLift tests (observed against the calibrated model)")
        print(check[columns].to_string(index=False))
    if args.output:
        write_outputs(model, summary, args.output)
        print(f"\nSaved model, tables and plots to {args.output}/")
    return 0
