"""The ``mmm`` command line.

``mmm fit`` fits one market from a spec and a weekly CSV (or, with ``--market-column``, one brand model
over the CSV's markets), prints the report, and writes the saved model, tables and plots to an output
folder. ``mmm generate-raw`` writes synthetic landing files and
``mmm pipeline`` turns landing files into the weekly model-input Delta table. ``mmm train`` fits every
modelled market on Spark, tracks and registers it in MLflow and promotes it through the gate;
``mmm promote`` and ``mmm ui`` work on the registry; ``mmm recommend`` splits each market's next budget
from its champion. ``mmm monitor`` checks the latest versions for drift, lift-test calibration and data
drift and raises alerts; ``mmm dashboard`` writes (and can serve) the monitoring dashboard. ``mmm init``
writes a starter project folder (``conf/`` and the landing folders); ``mmm export`` writes a run date's
recommendations and channel summaries to CSV and Excel; ``mmm api`` serves them over HTTP.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from jobs import api, export, init, monitor, pipeline, recommend, retrain, train
from jobs.options import EXIT_HELD_BACK, HELD_BACK_ENV


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmm", description="Bayesian media mix modelling platform")
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser("fit", help="fit one market (or one brand's markets) and print the report")
    fit.add_argument("--spec", required=True, type=Path, help="model spec YAML (see conf/models/)")
    fit.add_argument("--data", required=True, type=Path, help="weekly CSV: date, target, spend per channel, controls")
    fit.add_argument(
        "--market",
        default=None,
        help="name shown in the report, the brand's with --market-column (default: the data file's stem)",
    )
    fit.add_argument("--output", type=Path, default=None, help="folder for the saved model, tables and plots")
    fit.add_argument("--sampler", choices=["numpyro", "nutpie", "pymc"], default="numpyro")
    fit.add_argument("--chains", type=int, default=4)
    fit.add_argument("--draws", type=int, default=1000)
    fit.add_argument("--tune", type=int, default=1000)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--target-accept", type=float, default=0.9, help="NUTS step-size target; raise on divergences")
    fit.add_argument("--holdout-weeks", type=int, default=0, help="last weeks kept out of the fit, to validate on")
    fit.add_argument(
        "--lift-tests",
        type=Path,
        default=None,
        help="CSV of lift tests: channel, start, end, spend_delta, lift, lift_se (and the market column)",
    )
    fit.add_argument(
        "--market-column",
        default=None,
        help="the data holds several markets of one brand, named in this column: fit one hierarchical brand "
        "model over them (outputs go to one subfolder per market)",
    )
    pipeline.add_arguments(commands)
    train.add_arguments(commands)
    recommend.add_arguments(commands)
    monitor.add_arguments(commands)
    retrain.add_arguments(commands)
    api.add_arguments(commands)
    export.add_arguments(commands)
    init.add_arguments(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # progress lines are ours
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    for noisy in ("jax", "pymc", "pytensor", "arviz", "numba", "great_expectations", "py4j", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    handlers = {  # "module:function", imported only for the subcommand that runs (``mmm --help`` stays fast)
        "fit": "jobs.fit_market:run",
        "generate-raw": "jobs.pipeline:generate",
        "pipeline": "jobs.pipeline:pipeline",
        "train": "jobs.train:train",
        "promote": "jobs.train:promote_command",
        "ui": "jobs.train:ui",
        "recommend": "jobs.recommend:recommend",
        "monitor": "jobs.monitor:monitor",
        "dashboard": "jobs.monitor:dashboard",
        "run": "jobs.retrain:run",
        "serve": "jobs.retrain:serve",
        "api": "jobs.api:serve",
        "export": "jobs.export:export",
        "init": "jobs.init:init",
    }
    module, function = handlers[args.command].split(":")
    code = getattr(importlib.import_module(module), function)(args)
    if code == EXIT_HELD_BACK and os.environ.get(HELD_BACK_ENV) == "0":
        return 0  # a scheduler that cannot read exit codes: the status tables say which markets were held back
    return code


def run() -> None:
    """The console script: exit with ``main``'s code (a Databricks wheel task ignores a returned value)."""
    sys.exit(main())


if __name__ == "__main__":
    run()
