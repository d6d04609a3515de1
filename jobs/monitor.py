"""Jobs: ``mmm monitor`` (drift, lift calibration, data drift and alerts for the latest training run) and
``mmm dashboard`` (the monitoring dashboard as one HTML file and a report per market, optionally served on
localhost)."""

from __future__ import annotations

import argparse

from jobs.options import add_step_options, step_context


def add_arguments(commands: argparse._SubParsersAction) -> None:
    monitor = commands.add_parser("monitor", help="posterior drift, lift calibration, data drift and alerts")
    add_step_options(monitor)

    dashboard = commands.add_parser("dashboard", help="write the market reports and the monitoring dashboard")
    add_step_options(dashboard, brands=False, as_of=False)
    dashboard.add_argument("--output", default="outputs/dashboard/index.html", help="the HTML file to write")
    dashboard.add_argument("--serve", action="store_true", help="then serve it on http://127.0.0.1:PORT")
    dashboard.add_argument("--port", type=int, default=8050)


def monitor(args: argparse.Namespace) -> int:
    """Exit 0 when every market was monitored (alerts are results, not errors), 1 on a config or market error."""
    from monitoring.job import run_monitoring

    context = step_context(args)
    if context is None:
        return 1
    report = context.run_job(run_monitoring, "mmm-monitor")
    print()
    print(report.summary())
    return 1 if report.errors else 0


def dashboard(args: argparse.Namespace) -> int:
    """The market reports (``reports/`` beside the output) and the dashboard linking them; then serve both."""
    from monitoring.dashboard import serve
    from monitoring.report import write_dashboard_and_reports

    context = step_context(args)
    if context is None:
        return 1
    path, written = write_dashboard_and_reports(
        context.spark("mmm-dashboard"), context.lake, context.platform, args.output, context.progress
    )
    print(f"dashboard written to {path}; market reports in {written.index.parent} ({len(written.reports)} markets)")
    if args.serve:
        serve(path, args.port)
    return 0
