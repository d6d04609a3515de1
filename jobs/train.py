"""Jobs: ``mmm train`` (fit every modelled market on Spark, then promote), ``mmm promote`` and ``mmm ui``."""

from __future__ import annotations

import argparse
import subprocess
import sys

from jobs.options import EXIT_HELD_BACK, add_platform, add_step_options, step_context
from pipelines.config import PlatformConfig


def add_arguments(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="fit one model per modelled brand x market on Spark, then promote")
    add_step_options(train)
    train.add_argument("--markets", nargs="*", default=None, help="only these brand/market names")
    train.add_argument("--no-promote", action="store_true", help="fit and register, but set no aliases")

    promote = commands.add_parser("promote", help="apply the promotion gate's verdicts as registry aliases")
    add_step_options(promote, brands=False, as_of=False)
    promote.add_argument("--training-run", default=None, help="MLflow parent run id (default: the latest)")
    promote.add_argument("--approve", nargs="*", default=None, help="registered models whose challenger to promote")

    ui = commands.add_parser("ui", help="start the MLflow UI on the local tracking store")
    add_platform(ui)
    ui.add_argument("--port", type=int, default=5000)


def train(args: argparse.Namespace) -> int:
    from pipelines.registry.promotion import promote
    from pipelines.training.driver import train

    context = step_context(args)
    if context is None:
        return 1
    report = context.run_job(train, "mmm-train", markets=args.markets)
    print()
    print(report.table())
    print(
        f"\n{report.count('success')} succeeded, {report.count('rejected')} rejected by the gate, "
        f"{report.count('failed')} failed, in {report.wall_s:.0f} s (MLflow run {report.training_run_id})"
    )
    if not args.no_promote:
        with context.lock("mmm-promote"):
            promotions = promote(context.spark("mmm-train"), context.lake, context.platform, report.training_run_id)
        for p in promotions:
            print(f"  {p.brand}/{p.market}: {p.model_name} v{p.version or '-'} -> {p.action}")
    return 0 if report.all_succeeded else EXIT_HELD_BACK


def promote_command(args: argparse.Namespace) -> int:
    from pipelines.registry.promotion import approve, promote

    context = step_context(args)
    if context is None:
        return 1
    if args.approve:
        for name in args.approve:
            print(f"{name}: challenger v{approve(context.platform, name)} is now champion")
        return 0
    with context.lock("mmm-promote"):
        promotions = promote(context.spark("mmm-promote"), context.lake, context.platform, args.training_run)
    for p in promotions:
        print(f"{p.brand}/{p.market}: {p.model_name} v{p.version or '-'} -> {p.action}")
    return 0


def ui(args: argparse.Namespace) -> int:
    from pipelines.registry.store import RegistryStore, redact

    store = RegistryStore.from_settings(PlatformConfig.from_yaml(args.platform, project=args.project).mlflow)
    tracking, artifacts = store.tracking_uri, str(store.artifact_location)
    print(f"MLflow UI on http://127.0.0.1:{args.port} (store {redact(tracking)}); Ctrl-C stops it")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking]
    command += ["--host", "127.0.0.1", "--port", str(args.port)]
    return subprocess.call([*command, "--default-artifact-root", artifacts])
