"""Jobs: ``mmm train`` (fit every modelled market on Spark, then promote), ``mmm promote`` and ``mmm ui``."""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys

from jobs.options import load_settings
from pipelines.config import CONF_DIR, PlatformConfig

EXIT_PARTIAL = 3  # some markets failed or were rejected; the others are trained and the tables complete


def add_arguments(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="fit one model per modelled brand x market on Spark, then promote")
    train.add_argument("--platform", default=str(CONF_DIR / "platform.yaml"), help="platform config YAML")
    train.add_argument("--lake", default=None, help="Delta tables root (default: the platform config's)")
    train.add_argument("--brands", default=None, help="folder of brand YAML files (default: the platform config's)")
    train.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="run date (default: today)")
    train.add_argument("--markets", nargs="*", default=None, help="only these brand/market names")
    train.add_argument("--no-promote", action="store_true", help="fit and register, but set no aliases")
    train.add_argument("--master", default=None, help="Spark master (default: an active session, else local[*])")

    promote = commands.add_parser("promote", help="apply the promotion gate's verdicts as registry aliases")
    promote.add_argument("--platform", default=str(CONF_DIR / "platform.yaml"))
    promote.add_argument("--lake", default=None)
    promote.add_argument("--training-run", default=None, help="MLflow parent run id (default: the latest)")
    promote.add_argument("--approve", nargs="*", default=None, help="registered models whose challenger to promote")

    ui = commands.add_parser("ui", help="start the MLflow UI on the local tracking store")
    ui.add_argument("--platform", default=str(CONF_DIR / "platform.yaml"))
    ui.add_argument("--port", type=int, default=5000)


def train(args: argparse.Namespace) -> int:
    from pipelines.registry.promotion import promote
    from pipelines.spark import get_spark
    from pipelines.training.driver import train

    settings = load_settings(args)
    if settings is None:
        return 1
    platform, brands = settings
    spark = get_spark("mmm-train", args.master)
    lake = args.lake or platform.lake
    report = train(spark, lake, brands, platform, args.as_of or dt.date.today(), args.markets, progress=_say)
    print()
    print(report.table())
    print(
        f"\n{report.count('success')} succeeded, {report.count('rejected')} rejected by the gate, "
        f"{report.count('failed')} failed, in {report.wall_s:.0f} s (MLflow run {report.training_run_id})"
    )
    if not args.no_promote:
        for p in promote(spark, lake, platform, report.training_run_id):
            print(f"  {p.brand}/{p.market}: {p.model_name} v{p.version or '-'} -> {p.action}")
    return 0 if report.all_succeeded else EXIT_PARTIAL


def promote_command(args: argparse.Namespace) -> int:
    from pipelines.registry.promotion import approve, promote
    from pipelines.spark import get_spark

    platform = PlatformConfig.from_yaml(args.platform)
    if args.approve:
        for name in args.approve:
            print(f"{name}: challenger v{approve(platform, name)} is now champion")
        return 0
    for p in promote(get_spark("mmm-promote"), args.lake or platform.lake, platform, args.training_run):
        print(f"{p.brand}/{p.market}: {p.model_name} v{p.version or '-'} -> {p.action}")
    return 0


def ui(args: argparse.Namespace) -> int:
    from pipelines.config import PROJECT_ROOT
    from pipelines.registry.store import resolve_uris

    tracking, _, artifacts = resolve_uris(PlatformConfig.from_yaml(args.platform).mlflow, PROJECT_ROOT)
    print(f"MLflow UI on http://127.0.0.1:{args.port} (store {tracking}); Ctrl-C stops it")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking, "--port", str(args.port)]
    return subprocess.call([*command, "--default-artifact-root", artifacts])


def _say(line: str) -> None:
    print(line, flush=True)
