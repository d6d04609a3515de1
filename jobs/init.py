"""``mmm init [FOLDER]``: a starter project, a folder that holds a user's ``conf/`` and ``outputs/``.

It writes ``conf/platform.yaml`` and one brand file, ``conf/brands/acme.yaml`` (copies of the packaged
defaults, comments included, to edit), and the empty landing folders the raw files go to. It refuses
to overwrite a file that exists, and then writes nothing. ``mmm run --demo`` runs in it as it is.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

STARTER_FILES = ("platform.yaml", "brands/acme.yaml")  # under conf/, copied from the packaged defaults
LANDING_SOURCES = ("spend", "sales", "controls", "lift_tests")  # pipelines.data.ingest's sources


def add_arguments(commands: argparse._SubParsersAction) -> None:
    init = commands.add_parser("init", help="write a starter project: a platform file, a brand file, landing folders")
    init.add_argument("folder", nargs="?", default=".", type=Path, help="the project folder (default: here)")


def init(args: argparse.Namespace) -> int:
    """Write the starter project into ``args.folder``; exit 1, writing nothing, when a starter file exists."""
    from pipelines.config import PlatformConfig, default_conf

    project = args.folder.expanduser().resolve()
    targets = {project / "conf" / name: default_conf() / name for name in STARTER_FILES}
    existing = sorted(str(path) for path in targets if path.exists())
    if existing:
        print(f"error: {', '.join(existing)} exist(s); mmm init overwrites nothing", file=sys.stderr)
        return 1
    for target, source in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        print(f"wrote {target}")
    landing = Path(PlatformConfig.from_yaml(project / "conf" / "platform.yaml", project=project).landing)
    for source in LANDING_SOURCES:
        (landing / source).mkdir(parents=True, exist_ok=True)
    print(f"landing folders {landing}/{{{','.join(LANDING_SOURCES)}}}")
    print(f"next: cd {project} && mmm run --demo   (synthetic data for the brand above; outputs/ holds the results)")
    return 0
