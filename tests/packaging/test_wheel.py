"""The wheel holds the default configuration and every package of the checkout (built in a temporary
folder from a copy of the checkout's files, so a stale build/ cannot hide a missing entry).

The full check, a fresh environment outside the checkout running ``mmm init`` and ``mmm run --demo`` and
serving a champion, is ``make wheel-check`` (infra/wheel_check.py), run by CI after the tests.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_list_holds_every_package_of_the_checkout() -> None:
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set(find_packages(ROOT, include=["mmm_models*", "pipelines*", "jobs*", "monitoring*", "serving*"]))
    assert found <= declared, f"packages missing from pyproject.toml: {sorted(found - declared)}"


def test_the_wheel_ships_the_conf_folder_as_mmm_conf(tmp_path: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    source = tmp_path / "source"
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", tmp_path / "dist", source],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    conf = {f"mmm_conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml")}
    assert conf and conf <= names, f"conf files missing from the wheel: {sorted(conf - names)}"
    assert {"mmm_conf/platform.yaml", "mmm_conf/prefect.yaml", "mmm_conf/brands/acme.yaml"} <= names
    assert not any(n.startswith(("tests/", "benchmarks/", "infra/", "conf/", "outputs/")) for n in names)
    assert "jobs/init.py" in names and "mmm_models/__init__.py" in names
