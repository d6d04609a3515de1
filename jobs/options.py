"""What several ``mmm`` subcommands share: loading the platform and brand configs named by their options."""

from __future__ import annotations

import argparse
import sys

from pipelines.config import BrandConfig, ConfigError, PlatformConfig, load_brands


def load_settings(args: argparse.Namespace) -> tuple[PlatformConfig, dict[str, BrandConfig]] | None:
    """``--platform`` and ``--brands`` (default: the platform's brand folder); None, after saying why, if invalid."""
    try:
        platform = PlatformConfig.from_yaml(args.platform)
        return platform, load_brands(args.brands or platform.brands)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
