"""Job: ``mmm export`` (a run date's recommendations and channel summaries as CSV and Excel, read without Spark)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from jobs.options import add_platform


def add_arguments(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export", help="write a run date's recommendations and channel summaries to CSV and Excel (no Spark)"
    )
    add_platform(export)
    export.add_argument("--lake", default=None, help="Delta tables root (default: the platform config's)")
    export.add_argument("--run-date", default=None, help="yyyy-mm-dd (default: the latest with recommendations)")
    export.add_argument("--out", default=None, help="folder to write to (default: <project>/outputs/export)")


def export(args: argparse.Namespace) -> int:
    """Write the files and print where they are; exit 1 on a bad config or date, or when there is nothing to export."""
    from pipelines.config import ConfigError, PlatformConfig, project_dir
    from serving.export import ExportError, export_run_date
    from serving.lake import LakeReader

    try:
        platform = PlatformConfig.from_yaml(args.platform, project=args.project)
        run_date = dt.date.fromisoformat(args.run_date) if args.run_date else None
        folder = Path(args.out) if args.out else project_dir(args.project) / "outputs" / "export"
        done = export_run_date(LakeReader(args.lake or platform.lake), folder, run_date)
    except (ConfigError, ExportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"exported run date {done.run_date}: " + ", ".join(f"{n} {r} rows" for n, r in done.rows.items()))
    for path in done.files.values():
        print(f"  {path}")
    return 0
