"""The one step context: what every ``mmm`` subcommand and every step of the weekly flow runs with.

A subcommand builds it from its options (``StepContext.from_args``), the flow from its parameters
(``StepContext.for_run``); both load the same platform and brand files the same way, so a step behaves
the same from the CLI, Prefect and Databricks.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pipelines.config import BrandConfig, ConfigError, PlatformConfig, conf_file, load_brands
from pipelines.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


T = TypeVar("T")


def say(line: str) -> None:
    """Progress lines go to stdout at once (a long step must not look stuck behind a buffer)."""
    print(line, flush=True)


@dataclass
class StepContext:
    """Config, paths and run date of one step (or one flow run); ``markets`` fills in as the flow goes."""

    as_of: dt.date
    platform: PlatformConfig
    brands: dict[str, BrandConfig]
    lake: Lake  # where the tables are (``lake.root``: the lake folder, for its lock and the dashboard)
    landing: Path
    master: str | None = None  # Spark master; None: the active session, else local[*]
    progress: Callable[[str], None] = say
    markets: list[str] = field(default_factory=list)  # brand/market names modelled this run

    def spark(self, app_name: str = "mmm") -> SparkSession:
        from pipelines.spark import get_spark

        return get_spark(app_name, self.master)

    def lock(self, what: str) -> AbstractContextManager[None]:
        """This run's hold on the lake (``pipelines.lock``): one writing run per lake at a time."""
        from pipelines.lock import lake_lock

        return lake_lock(self.lake.root, what, self.platform.lock_wait_s)

    def run_job(self, job: Callable[..., T], app_name: str = "mmm", **options: Any) -> T:
        """Call a platform job with this context, holding the lake's lock: every job takes
        (spark, lake, brands, platform, as_of, progress)."""
        with self.lock(app_name):
            return job(
                self.spark(app_name),
                self.lake,
                self.brands,
                self.platform,
                self.as_of,
                progress=self.progress,
                **options,
            )

    @property
    def dashboard(self) -> Path:
        """Where the flow writes the monitoring dashboard: beside the lake."""
        return self.lake.root.parent / "dashboard.html"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> StepContext:
        """From the shared options of ``jobs.options`` (those a subcommand lacks take their defaults)."""
        platform = PlatformConfig.from_yaml(getattr(args, "platform", None), project=getattr(args, "project", None))
        brands = select_brands(
            load_brands(getattr(args, "brand_dir", None) or platform.brands), getattr(args, "brands", None)
        )
        return cls(
            as_of=getattr(args, "as_of", None) or dt.date.today(),
            platform=platform,
            brands=brands,
            lake=platform.tables_lake(getattr(args, "lake", None)),
            landing=Path(getattr(args, "landing", None) or platform.landing),
            master=getattr(args, "master", None),
        )

    @classmethod
    def for_run(
        cls,
        as_of: str | None,
        brands: list[str] | None,
        environment: str,
        platform_file: str | None,
        project: str | None = None,
    ) -> StepContext:
        """The flow's context for ``environment``: ``local`` (``conf/platform.yaml``) or a databricks.yaml target,
        each the project's own file or else the packaged one."""
        target = None if environment == "local" else environment
        default_file = conf_file("platform.yaml" if target is None else "databricks.yaml", project)
        platform = PlatformConfig.from_yaml(platform_file or default_file, environment=target, project=project)
        return cls(
            as_of=dt.date.fromisoformat(as_of) if as_of else dt.date.today(),
            platform=platform,
            brands=select_brands(load_brands(platform.brands), brands),
            lake=platform.tables_lake(),
            landing=Path(platform.landing),
        )


def select_brands(configured: dict[str, BrandConfig], names: list[str] | None) -> dict[str, BrandConfig]:
    """The named brands (all when ``names`` is empty); an unknown name is an error, not an empty run."""
    if not names:
        return configured
    unknown = sorted(set(names) - set(configured))
    if unknown:
        raise ConfigError(f"unknown brands {unknown}; configured: {sorted(configured)}")
    return {name: configured[name] for name in names}
