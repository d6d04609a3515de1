"""The options the ``mmm`` subcommands share, declared once, and the one way a subcommand turns them into
its ``StepContext``.

``--project`` is the project folder (default: ``$MMM_PROJECT``, else the working folder), whose
``conf/platform.yaml`` is the default ``--platform`` (else the packaged one). ``--brands`` always names
brands (a subset of the configured ones); ``--brand-dir`` is the folder of brand files (default: the
platform file's ``brands``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from jobs.context import StepContext
from pipelines.config import ConfigError

EXIT_HELD_BACK = 3  # a step finished, but held some markets back (excluded, failed, rejected, no champion)
HELD_BACK_ENV = "MMM_HELD_BACK_EXIT"  # "0": exit 0 instead; the Databricks job sets it (see the bundle)


def add_platform(parser: argparse.ArgumentParser) -> None:
    """``--project`` and ``--platform``: where the configuration and the outputs are."""
    parser.add_argument(
        "--project", default=None, help="project folder with conf/ and outputs/ (default: $MMM_PROJECT, else here)"
    )
    parser.add_argument(
        "--platform", default=None, help="platform config YAML (default: <project>/conf/platform.yaml, else packaged)"
    )


def add_step_options(
    parser: argparse.ArgumentParser, *, lake: bool = True, brands: bool = True, as_of: bool = True, master: bool = True
) -> None:
    """``--project --platform``, and as the subcommand needs: ``--lake --brand-dir --brands --as-of --master``."""
    add_platform(parser)
    if lake:
        parser.add_argument("--lake", default=None, help="Delta tables root (default: the platform config's)")
    if brands:
        parser.add_argument(
            "--brand-dir", default=None, help="folder of brand YAML files (default: the platform config's)"
        )
        parser.add_argument("--brands", nargs="*", default=None, help="only these brands (default: all configured)")
    if as_of:
        parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="run date (default: today)")
    if master:
        parser.add_argument(
            "--master",
            default=None,
            help="Spark master: local[N], spark://host:port, or sc://host:port for Spark Connect "
            "(default: an active session, else $MMM_SPARK_MASTER, $SPARK_REMOTE, local[*])",
        )


def step_context(args: argparse.Namespace) -> StepContext | None:
    """The subcommand's context; None, after saying why on stderr, when a config file is missing or invalid."""
    try:
        return StepContext.from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
