"""Project folders: ``mmm init``, where config files are read from, and where relative paths resolve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jobs.cli import main
from jobs.init import LANDING_SOURCES
from pipelines.config import PlatformConfig, conf_file, default_conf, load_brands, project_dir

ROOT = Path(__file__).resolve().parents[2]


def test_init_writes_a_starter_project_that_loads(tmp_path: Path, capsys) -> None:
    project = tmp_path / "project"
    assert main(["init", str(project)]) == 0
    assert (project / "conf" / "platform.yaml").read_text() == (default_conf() / "platform.yaml").read_text()
    assert "# " in (project / "conf" / "brands" / "acme.yaml").read_text()  # the commented brand file
    platform = PlatformConfig.from_yaml(project=project)  # the project's own file, found by project
    assert platform.landing == str(project / "outputs" / "landing")
    assert platform.lake == str(project / "outputs" / "lake")
    assert platform.brands == str(project / "conf" / "brands")
    assert platform.mlflow.tracking_uri == f"sqlite:///{project / 'outputs' / 'mlflow.db'}"
    assert platform.mlflow.artifact_location == str(project / "outputs" / "mlartifacts")
    assert sorted(load_brands(platform.brands)) == ["acme"]
    assert all((project / "outputs" / "landing" / source).is_dir() for source in LANDING_SOURCES)
    assert "mmm run --demo" in capsys.readouterr().out


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path, capsys) -> None:
    brand = tmp_path / "conf" / "brands" / "acme.yaml"
    brand.parent.mkdir(parents=True)
    brand.write_text("brand: mine\ntaxonomy: {tv: [tv]}\n")
    assert main(["init", str(tmp_path)]) == 1
    assert "overwrites nothing" in capsys.readouterr().err
    assert brand.read_text() == "brand: mine\ntaxonomy: {tv: [tv]}\n"
    assert not (tmp_path / "conf" / "platform.yaml").exists()


def test_landing_sources_are_the_ingested_ones() -> None:
    from pipelines.data.ingest import REQUIRED_COLUMNS

    assert set(LANDING_SOURCES) == set(REQUIRED_COLUMNS)


def test_a_project_without_conf_reads_the_packaged_defaults_and_writes_in_the_project(tmp_path: Path) -> None:
    assert conf_file("platform.yaml", tmp_path) == default_conf() / "platform.yaml"
    platform = PlatformConfig.from_yaml(project=tmp_path)
    assert platform.lake == str(tmp_path / "outputs" / "lake")  # never beside the packaged file
    assert platform.brands == str(default_conf() / "brands")  # the packaged demo brands
    assert sorted(load_brands(platform.brands)) == ["acme", "bolt", "cobalt"]


def test_relative_paths_a_file_names_resolve_against_that_file(tmp_path: Path) -> None:
    conf = tmp_path / "somewhere" / "conf"
    (conf / "brands").mkdir(parents=True)
    (conf / "platform.yaml").write_text(
        "landing: ../raw\nlake: /data/lake\nbrands: brands\n"
        "mlflow: {tracking_uri: 'sqlite:///../mlflow.db', artifact_location: ../artifacts}\n"
    )
    platform = PlatformConfig.from_yaml(conf / "platform.yaml", project=tmp_path / "elsewhere")
    assert platform.landing == str(tmp_path / "somewhere" / "raw")
    assert platform.lake == "/data/lake"
    assert platform.brands == str(conf / "brands")
    assert platform.mlflow.tracking_uri == f"sqlite:///{tmp_path / 'somewhere' / 'mlflow.db'}"
    assert platform.mlflow.artifact_location == str(tmp_path / "somewhere" / "artifacts")
    # Left out: under the project folder.
    (conf / "platform.yaml").write_text("training: {draws: 200}\n")
    platform = PlatformConfig.from_yaml(conf / "platform.yaml", project=tmp_path / "elsewhere")
    assert platform.lake == str(tmp_path / "elsewhere" / "outputs" / "lake")


def test_the_project_folder_comes_from_the_option_the_environment_or_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MMM_PROJECT", raising=False)
    assert project_dir() == tmp_path.resolve()
    monkeypatch.setenv("MMM_PROJECT", str(tmp_path / "p"))
    assert project_dir() == tmp_path / "p"
    assert project_dir(tmp_path / "q") == tmp_path / "q"


def test_importing_mmm_models_sets_no_jax_option_and_loads_no_platform_package() -> None:
    code = (
        "import sys, mmm_models\n"
        "from mmm_models import analysis, fitted, optimizer, prediction, spec\n"
        "platform = {'pipelines', 'jobs', 'pyspark', 'mlflow', 'prefect', 'great_expectations'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & platform), 'jax' in sys.modules)\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.split() == ["[]", "False"]
