"""Job: ``mmm recommend`` (budget recommendations for the next period from every market's champion)."""

from __future__ import annotations

import argparse
import datetime as dt

from jobs.options import load_settings
from pipelines.config import CONF_DIR

EXIT_PARTIAL = 3  # some markets have no recommendation (no champion, or it failed); their rows say why


def add_arguments(commands: argparse._SubParsersAction) -> None:
    recommend = commands.add_parser("recommend", help="split each market's next-period budget from its champion model")
    recommend.add_argument("--platform", default=str(CONF_DIR / "platform.yaml"), help="platform config YAML")
    recommend.add_argument("--lake", default=None, help="Delta tables root (default: the platform config's)")
    recommend.add_argument("--brands", default=None, help="folder of brand YAML files (default: the platform config's)")
    recommend.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="run date (default: today)")
    recommend.add_argument("--markets", nargs="*", default=None, help="only these brand/market names")
    recommend.add_argument("--master", default=None, help="Spark master (default: an active session, else local[*])")


def recommend(args: argparse.Namespace) -> int:
    """Write ``outputs/budget_recommendations`` for the run date; exit 0, 3 when a market has none, 1 on bad config."""
    from pipelines.recommend.job import recommend
    from pipelines.spark import get_spark

    settings = load_settings(args)
    if settings is None:
        return 1
    platform, brands = settings
    spark = get_spark("mmm-recommend", args.master)
    report = recommend(
        spark,
        args.lake or platform.lake,
        brands,
        platform,
        args.as_of or dt.date.today(),
        progress=lambda line: print(line, flush=True),
        markets=args.markets,
    )
    print()
    print(report.table())
    print()
    print(report.summary())
    return 0 if report.all_succeeded else EXIT_PARTIAL
