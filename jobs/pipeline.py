"""Jobs: ``mmm generate-raw`` (synthetic landing files with known truth) and ``mmm pipeline`` (raw -> gold)."""

from __future__ import annotations

import argparse
import sys
import time

from jobs.options import EXIT_HELD_BACK, add_step_options, step_context
from pipelines.data.synthetic_raw import BAD_INPUTS, RawDataConfig, generate_raw_landing


def add_arguments(commands: argparse._SubParsersAction) -> None:
    generate = commands.add_parser("generate-raw", help="write synthetic raw landing files with known truth")
    generate.add_argument("--out", required=True, help="landing folder (spend/, sales/, controls/ are created)")
    generate.add_argument("--brands", nargs="+", default=["acme", "bolt", "cobalt"])
    generate.add_argument("--markets", type=int, default=4, help="markets per brand")
    generate.add_argument("--weeks", type=int, default=156)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--lift-tests", action="store_true", help="also write one go-dark lift test per channel")
    generate.add_argument(
        "--inject", nargs="*", default=[], choices=[*BAD_INPUTS, "all"], help="bad inputs to add on purpose"
    )

    pipeline = commands.add_parser("pipeline", help="ingest raw files and build the weekly model-input table")
    add_step_options(pipeline)
    pipeline.add_argument(
        "--landing", default=None, help="landing folder with spend/, sales/, controls/ (default: the platform config's)"
    )


MARKET_NAMES = ("DE", "FR", "IT", "ES", "UK", "US", "NL", "PL", "SE", "JP")


def generate(args: argparse.Namespace) -> int:
    if args.markets > len(MARKET_NAMES):
        print(f"error: at most {len(MARKET_NAMES)} markets per brand", file=sys.stderr)
        return 2
    config = RawDataConfig(
        markets={brand: list(MARKET_NAMES[: args.markets]) for brand in args.brands},
        weeks=args.weeks,
        seed=args.seed,
        lift_tests=args.lift_tests,
    )
    inject = BAD_INPUTS if "all" in args.inject else tuple(args.inject)
    landing = generate_raw_landing(args.out, config, inject=inject)
    print(f"wrote raw files for {len(landing.weekly)} markets to {landing.folder} (truth in truth_roas.json)")
    return 0


def pipeline(args: argparse.Namespace) -> int:
    """Run raw -> gold; exit 0 when every market is modelled, 3 when some are excluded, 1 on bad config."""
    from pipelines.data.run import run_pipeline

    context = step_context(args)
    if context is None:
        return 1
    start = time.perf_counter()
    with context.lock("mmm-pipeline"):
        report = run_pipeline(
            context.spark("mmm-pipeline"),
            context.landing,
            context.lake,
            context.brands,
            context.as_of,
            context.progress,
        )
    print()
    print(report.summary())
    print(f"\nrun {report.run_key} finished in {time.perf_counter() - start:.0f} s; tables under {context.lake}")
    return EXIT_HELD_BACK if report.excluded else 0
