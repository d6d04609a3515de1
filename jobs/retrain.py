"""Jobs: ``mmm run`` (the weekly flow once, optionally on fresh synthetic data) and ``mmm serve`` (its schedule).

``mmm run --demo`` is the README's one command: it writes synthetic raw files for 3 brands x 4 markets
(with lift tests) into the landing folder, runs every step on the local embedded defaults, and prints
what happened and where to look.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import yaml

from jobs.options import EXIT_HELD_BACK

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT_FILE = PROJECT_ROOT / "infra" / "prefect" / "prefect.yaml"
DEMO_BRANDS = ("acme", "bolt", "cobalt")
DEMO_MARKETS = ("DE", "FR", "IT", "ES")
DEMO_WEEKS = 157  # landed; the default as_of uses 156 of them, a run a week later the 157th
SUSPECT_LIFT_TEST = ("acme", "DE", "tv")
DEMO_START = dt.date(2023, 1, 2)  # a Monday; week 156 starts 2025-12-22, week 157 on 2025-12-29


def add_arguments(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run the weekly flow once: pipeline, train, promote, recommend, monitor")
    run.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="run date (default: today)")
    run.add_argument("--brands", nargs="*", default=None, help="only these brands (default: all configured)")
    run.add_argument("--environment", default="local", help="local, or a target of conf/databricks.yaml")
    run.add_argument("--platform", default=None, help="platform config YAML (overrides --environment)")
    run.add_argument(
        "--demo",
        action="store_true",
        help="first write synthetic raw files (3 brands x 4 markets, lift tests), then run last week and this week",
    )
    run.add_argument("--weeks", type=int, default=DEMO_WEEKS, help="with --demo: weeks of synthetic data to land")

    serve = commands.add_parser("serve", help="serve the weekly deployment locally (its cron from infra/prefect)")
    serve.add_argument("--environment", default="local")


def run(args: argparse.Namespace) -> int:
    """The flow once (with ``--demo``: last week, then this week); exit 0, 3 when markets failed, 1 on a failed step."""
    from jobs.context import StepContext
    from jobs.flow import StepFailedError, weekly_retrain

    start = time.perf_counter()
    dates = [args.as_of]
    if args.demo:
        this_week = args.as_of or demo_as_of(args.weeks - 1)
        # Last week first, so that this week's refit has champions to be compared with (drift, alerts).
        dates = [this_week - dt.timedelta(weeks=1), this_week]
        write_demo_landing(StepContext.for_run(None, None, args.environment, args.platform).landing, args.weeks)
    try:
        for as_of in dates:
            summary = weekly_retrain(
                as_of=as_of.isoformat() if as_of else None,
                brands=args.brands,
                environment=args.environment,
                platform_file=args.platform,
            )
            if as_of != dates[-1]:
                done = f"{len(summary.trained)} markets trained, {len(summary.promoted)} champions"
                print(f"\nweek {as_of} done: {done}; now the week of {dates[-1]}\n")
    except StepFailedError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    print(render_summary(summary, time.perf_counter() - start))
    return EXIT_HELD_BACK if summary.failed else 0


def serve(args: argparse.Namespace) -> int:
    """Serve the weekly deployment in this process, on its schedule, until interrupted."""
    from prefect import serve as serve_deployments

    deployment = local_deployment(args.environment)
    when = ", ".join(f"{s.schedule.cron} ({s.schedule.timezone})" for s in deployment.schedules)
    print(f"serving deployment {deployment.name} on {when}; Ctrl-C stops it")
    serve_deployments(deployment)
    return 0


def local_deployment(environment: str = "local"):  # -> prefect RunnerDeployment
    """The deployment of ``infra/prefect/prefect.yaml`` (name, cron, timezone, parameters), to serve here."""
    from prefect.schedules import Cron

    from jobs.flow import weekly_retrain

    spec = yaml.safe_load(DEPLOYMENT_FILE.read_text())["deployments"][0]
    return weekly_retrain.to_deployment(
        name=spec["name"],
        schedules=[Cron(s["cron"], timezone=s.get("timezone", "UTC")) for s in spec["schedules"]],
        parameters={**spec.get("parameters", {}), "environment": environment},
        tags=spec.get("tags"),
        description=spec.get("description"),
    )


def demo_as_of(weeks: int) -> dt.date:
    """The Monday after ``weeks`` synthetic weeks: those are complete; later days are held back until a later run."""
    return DEMO_START + dt.timedelta(weeks=weeks)


def write_demo_landing(landing: Path, weeks: int) -> None:
    from pipelines.data.synthetic_raw import RawDataConfig, generate_raw_landing
    from pipelines.names import safe_path

    config = RawDataConfig(
        markets={brand: list(DEMO_MARKETS) for brand in DEMO_BRANDS},
        weeks=weeks,
        start=DEMO_START.isoformat(),
        lift_tests=True,
    )
    generate_raw_landing(landing, config)
    # One badly run experiment, so that the demo shows monitoring at work: it reports 3x the true lift.
    brand, market, channel = SUSPECT_LIFT_TEST
    path = safe_path(Path(landing) / "lift_tests", f"{brand}_lift_tests.csv")
    import pandas as pd

    tests = pd.read_csv(path)
    suspect = (tests["market"] == market) & (tests["channel"] == channel)
    tests.loc[suspect, "lift"] *= 3
    tests.to_csv(path, index=False)
    print(
        f"wrote synthetic raw files for {len(DEMO_BRANDS)} brands x {len(DEMO_MARKETS)} markets to {landing}; "
        f"the {channel} lift test of {brand}/{market} overstates the true lift 3x on purpose"
    )


def render_summary(summary, wall_s: float) -> str:  # summary: jobs.flow.RetrainSummary
    """Markets trained, promoted and failed; the top recommendations; the alerts; where to look."""
    lines = ["", f"weekly run for {summary.as_of} done; wall time {wall_s / 60:.1f} min"]
    reused = " (reused: this date's model input was already fitted)" if summary.reused_training else ""
    lines.append(f"training run {summary.training_run_id}{reused}")
    lines.append(
        f"  trained {len(summary.trained)}, promoted to champion {len(summary.promoted)}, "
        f"failed or rejected {len(summary.failed)}"
    )
    lines += [f"  {market}: {why}" for market, why in sorted(summary.failed.items())]
    lines += [f"  held back by data checks {market}: {why}" for market, why in sorted(summary.excluded.items())]
    rows = summary.recommendations
    if rows is not None and len(rows):
        lines += recommendation_lines(rows)
    alerts = summary.alerts
    if alerts is not None and len(alerts):
        lines.append(f"alerts ({len(alerts)}):")
        for a in alerts.head(10).itertuples():
            where = f"{a.brand}/{a.market} {a.channel or ''}".strip()
            lines.append(f"  [{a.severity}] {where} {a.metric}: {a.value:.3g} (limit {a.threshold:.3g})")
    else:
        lines.append("alerts: none")
    lines += [
        "where to look:",
        f"  dashboard      {summary.dashboard}",
        "  MLflow UI      mmm ui   (then http://127.0.0.1:5000)",
        f"  Delta tables   {summary.lake}/<layer>/<table>  (bronze, silver, gold, quality, models, outputs)",
    ]
    return "\n".join(lines)


def recommendation_lines(rows, shown: int = 8) -> list[str]:  # rows: budget_recommendations of this run
    """Per market, the expected uplift of the recommended split and its largest move; markets without one."""
    ok = rows[rows["status"] == "success"]
    lines = []
    if len(ok):
        largest = ok.loc[ok.groupby(["brand", "market"])["change_pct"].apply(lambda c: c.abs().idxmax())]
        largest = largest.sort_values("expected_uplift", ascending=False)
        weeks = int(ok["period_weeks"].iloc[0])
        lines.append(f"budget recommendations for the next {weeks} weeks (largest uplift first):")
        for r in largest.head(shown).itertuples():
            lines.append(
                f"  {r.brand}/{r.market}: uplift {r.expected_uplift:+,.0f} (90% HDI {r.uplift_hdi_low:,.0f} to "
                f"{r.uplift_hdi_high:,.0f}); largest move {r.channel} {r.current_spend:,.0f} -> "
                f"{r.recommended_spend:,.0f} ({r.change_pct:+.0f}%)"
            )
        if len(largest) > shown:
            lines.append(f"  ... and {len(largest) - shown} more markets in outputs/budget_recommendations")
    for (brand, market), r in rows[rows["status"] != "success"].groupby(["brand", "market"]):
        lines.append(f"  no recommendation for {brand}/{market}: {r['reason'].iloc[0]}")
    return lines
