"""Jobs: ``mmm monitor`` (drift, lift calibration, data drift and alerts for the latest training run) and
``mmm dashboard`` (the monitoring dashboard as one HTML file, optionally served on localhost)."""

from __future__ import annotations

import argparse
import datetime as dt

from jobs.options import load_settings
from pipelines.config import CONF_DIR, PlatformConfig


def add_arguments(commands: argparse._SubParsersAction) -> None:
    monitor = commands.add_parser("monitor", help="posterior drift, lift calibration, data drift and alerts")
    monitor.add_argument("--platform", default=str(CONF_DIR / "platform.yaml"), help="platform config YAML")
    monitor.add_argument("--lake", default=None, help="Delta tables root (default: the platform config's)")
    monitor.add_argument("--brands", default=None, help="folder of brand YAML files (default: the platform config's)")
    monitor.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="run date (default: today)")
    monitor.add_argument("--master", default=None, help="Spark master (default: an active session, else local[*])")

    dashboard = commands.add_parser("dashboard", help="write the monitoring dashboard (one HTML file)")
    dashboard.add_argument("--platform", default=str(CONF_DIR / "platform.yaml"))
    dashboard.add_argument("--lake", default=None)
    dashboard.add_argument("--output", default="outputs/dashboard/index.html", help="the HTML file to write")
    dashboard.add_argument("--serve", action="store_true", help="then serve it on http://127.0.0.1:PORT")
    dashboard.add_argument("--port", type=int, default=8050)


def monitor(args: argparse.Namespace) -> int:
    """Exit 0 when every market was monitored (alerts are results, not errors), 1 on a config or market error."""
    from monitoring.job import run_monitoring
    from pipelines.spark import get_spark

    settings = load_settings(args)
    if settings is None:
        return 1
    platform, brands = settings
    spark = get_spark("mmm-monitor", args.master)
    report = run_monitoring(
        spark, args.lake or platform.lake, brands, platform, args.as_of or dt.date.today(), progress=_say
    )
    print()
    print(report.summary())
    return 1 if report.errors else 0


def dashboard(args: argparse.Namespace) -> int:
    from monitoring.dashboard import serve, write_dashboard
    from pipelines.spark import get_spark

    platform = PlatformConfig.from_yaml(args.platform)
    path = write_dashboard(get_spark("mmm-dashboard"), args.lake or platform.lake, platform, args.output)
    print(f"dashboard written to {path}")
    if args.serve:
        serve(path, args.port)
    return 0


def _say(line: str) -> None:
    print(line, flush=True)
