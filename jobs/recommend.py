"""Job: ``mmm recommend`` (budget recommendations for the next period from every market's champion)."""

from __future__ import annotations

import argparse

from jobs.options import EXIT_HELD_BACK, add_step_options, step_context


def add_arguments(commands: argparse._SubParsersAction) -> None:
    recommend = commands.add_parser("recommend", help="split each market's next-period budget from its champion model")
    add_step_options(recommend)
    recommend.add_argument("--markets", nargs="*", default=None, help="only these brand/market names")


def recommend(args: argparse.Namespace) -> int:
    """Write ``outputs/budget_recommendations`` for the run date; exit 0, 3 when a market has none, 1 on bad config."""
    from pipelines.recommend.job import recommend

    context = step_context(args)
    if context is None:
        return 1
    report = context.run_job(recommend, "mmm-recommend", markets=args.markets)
    print()
    print(report.table())
    print()
    print(report.summary())
    return 0 if report.all_succeeded else EXIT_HELD_BACK
