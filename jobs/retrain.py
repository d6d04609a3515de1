"""Jobs: ``mmm run`` (the weekly flow once, optionally on fresh synthetic data) and ``mmm serve`` (its schedule).

``mmm run --demo`` is the README's one command: it writes synthetic raw files for every configured brand
(the packaged 3 brands, or a project's own) x 4 markets (``--markets``), with lift tests, into the landing
folder, runs every step on the local embedded defaults, and prints what happened and where to look.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from jobs.options import EXIT_HELD_BACK, add_platform

if TYPE_CHECKING:
    from pipelines.config import BrandConfig

DEMO_MARKETS = ("DE", "FR", "IT", "ES")
DEMO_WEEKS = 157  # landed; the default as_of uses 156 of them, a run a week later the 157th
SUSPECT_LIFT_TEST = ("acme", "DE", "tv")
DEMO_START = dt.date(2023, 1, 2)  # a Monday; week 156 starts 2025-12-22, week 157 on 2025-12-29


def add_arguments(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run the weekly flow once: pipeline, train, promote, recommend, monitor")
    run.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="run date (default: today)")
    run.add_argument("--brands", nargs="*", default=None, help="only these brands (default: all configured)")
    run.add_argument("--environment", default="local", help="local, or a target of conf/databricks.yaml")
    add_platform(run)  # --project, and --platform (which overrides --environment)
    run.add_argument(
        "--demo",
        action="store_true",
        help="first write synthetic raw files (every configured brand x 4 markets, lift tests), then run last week "
        "and this week",
    )
    run.add_argument("--weeks", type=int, default=DEMO_WEEKS, help="with --demo: weeks of synthetic data to land")
    run.add_argument(
        "--markets",
        type=int,
        choices=range(1, len(DEMO_MARKETS) + 1),
        default=len(DEMO_MARKETS),
        help=f"with --demo: markets per brand, of {', '.join(DEMO_MARKETS)}",
    )

    serve = commands.add_parser("serve", help="serve the weekly deployment locally (its cron from conf/prefect.yaml)")
    serve.add_argument("--environment", default="local")
    serve.add_argument(
        "--project", default=None, help="project folder with conf/ and outputs/ (default: $MMM_PROJECT, else here)"
    )


def run(args: argparse.Namespace) -> int:
    """The flow once (with ``--demo``: last week, then this week); exit 0, 3 when markets failed, 1 on a failed step."""
    from jobs.context import StepContext
    from jobs.flow import StepFailedError, weekly_retrain
    from pipelines.config import ConfigError

    start = time.perf_counter()
    dates = [args.as_of]
    try:
        if args.demo:
            this_week = args.as_of or demo_as_of(args.weeks - 1)
            # Last week first, so that this week's refit has champions to be compared with (drift, alerts).
            dates = [this_week - dt.timedelta(weeks=1), this_week]
            context = StepContext.for_run(None, args.brands, args.environment, args.platform, args.project)
            write_demo_landing(context.landing, context.brands, args.weeks, DEMO_MARKETS[: args.markets])
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        for as_of in dates:
            summary = weekly_retrain(
                as_of=as_of.isoformat() if as_of else None,
                brands=args.brands,
                environment=args.environment,
                platform_file=args.platform,
                project=args.project,
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

    deployment = local_deployment(args.environment, args.project)
    when = ", ".join(f"{s.schedule.cron} ({s.schedule.timezone})" for s in deployment.schedules)
    print(f"serving deployment {deployment.name} on {when}; Ctrl-C stops it")
    serve_deployments(deployment)
    return 0


def local_deployment(environment: str = "local", project: str | None = None):  # -> prefect RunnerDeployment
    """The deployment of ``conf/prefect.yaml`` (the project's, else the packaged one: name, cron, timezone,
    parameters), to serve here; its runs use the project folder as it is now (absolute)."""
    from prefect.schedules import Cron

    from jobs.flow import weekly_retrain
    from pipelines.config import conf_file, project_dir

    spec = yaml.safe_load(conf_file("prefect.yaml", project).read_text())["deployments"][0]
    parameters = {**spec.get("parameters", {}), "environment": environment, "project": str(project_dir(project))}
    return weekly_retrain.to_deployment(
        name=spec["name"],
        schedules=[Cron(s["cron"], timezone=s.get("timezone", "UTC")) for s in spec["schedules"]],
        parameters=parameters,
        tags=spec.get("tags"),
        description=spec.get("description"),
    )


def demo_as_of(weeks: int) -> dt.date:
    """The Monday after ``weeks`` synthetic weeks: those are complete; later days are held back until a later run."""
    return DEMO_START + dt.timedelta(weeks=weeks)


def write_demo_landing(landing: Path, brands: dict[str, BrandConfig], weeks: int, markets: tuple[str, ...]) -> None:
    """Synthetic raw files for ``brands`` x ``markets``, drawn over the brands' one taxonomy (the demo's
    simulator knows one set of channels and the control ``price_index``)."""
    from pipelines.config import ConfigError
    from pipelines.data.synthetic_raw import RawDataConfig, generate_raw_landing
    from pipelines.names import safe_path

    taxonomies = {tuple((c, tuple(raws)) for c, raws in b.taxonomy.items()) for b in brands.values()}
    if len(taxonomies) != 1 or any(set(b.controls) - {"price_index"} for b in brands.values()):
        raise ConfigError("the demo's synthetic data needs brands with one taxonomy and no control but price_index")
    config = RawDataConfig(
        markets={brand: list(markets) for brand in brands},
        taxonomy=next(iter(brands.values())).taxonomy,
        weeks=weeks,
        start=DEMO_START.isoformat(),
        lift_tests=True,
    )
    generate_raw_landing(landing, config)
    print(f"wrote synthetic raw files for {len(brands)} brands x {len(markets)} markets to {landing}")
    # One badly run experiment, so that the demo shows monitoring at work: it reports 3x the true lift.
    brand, market, channel = SUSPECT_LIFT_TEST
    if brand not in brands or market not in markets or channel not in config.taxonomy:
        return
    path = safe_path(Path(landing) / "lift_tests", f"{brand}_lift_tests.csv")
    import pandas as pd

    tests = pd.read_csv(path)
    suspect = (tests["market"] == market) & (tests["channel"] == channel)
    tests.loc[suspect, "lift"] *= 3
    tests.to_csv(path, index=False)
    print(f"the {channel} lift test of {brand}/{market} overstates the true lift 3x on purpose")


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
        f"  market reports {summary.reports}",
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
