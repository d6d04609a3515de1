"""The deployment files, checked against the code they point at (no workspace, no server: seconds).

Databricks bundle: its tasks are the weekly flow's steps in order, each a subcommand of the project's
own ``mmm`` console script with options that the CLI's parser accepts; the job runs weekly, and the dev
and prod targets use the Unity Catalog names of ``conf/databricks.yaml``. Prefect: the ``weekly-retrain``
deployment has its cron schedule and an entry point in the repository.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from jobs.cli import build_parser
from jobs.flow import STEPS
from pipelines.config import ConfigError, PlatformConfig
from pipelines.names import model_name
from pipelines.tables import MODEL_INPUT

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "infra" / "databricks"
PREFECT_FILE = ROOT / "conf" / "prefect.yaml"
DATABRICKS_CONF = ROOT / "conf" / "databricks.yaml"
CHAIN = list(STEPS)  # the Databricks job runs the Prefect flow's steps, in the same order
AS_OF = "2026-01-05"


@pytest.fixture(scope="module")
def bundle() -> dict:
    """databricks.yml with the resources of its ``include`` files merged in, as the Databricks CLI reads it."""
    config = yaml.safe_load((BUNDLE / "databricks.yml").read_text())
    config.setdefault("resources", {})
    for pattern in config["include"]:
        files = sorted(BUNDLE.glob(pattern))
        assert files, f"include {pattern!r} matches no file"
        for path in files:
            for kind, items in yaml.safe_load(path.read_text())["resources"].items():
                config["resources"].setdefault(kind, {}).update(items)
    return config


@pytest.fixture(scope="module")
def job(bundle: dict) -> dict:
    (only,) = bundle["resources"]["jobs"].values()
    return only


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def render(value: str, bundle: dict, job: dict, target: str) -> str:
    """A value as the job would see it in ``target``: bundle variables, paths and job parameters filled in."""
    variables = {name: spec.get("default") for name, spec in bundle["variables"].items()}
    variables.update(bundle["targets"][target].get("variables", {}))
    root = bundle["targets"][target]["workspace"]["root_path"]
    root = root.replace("${workspace.current_user.userName}", "someone@example.com")
    files = f"{root.replace('${bundle.name}', bundle['bundle']['name'])}/files"
    value = re.sub(r"\$\{var\.(\w+)\}", lambda m: str(variables[m.group(1)]), value)
    value = value.replace("${workspace.file_path}", files).replace("${bundle.target}", target)
    value = value.replace("{{job.start_time.iso_date}}", AS_OF)
    defaults = {p["name"]: p["default"] for p in job["parameters"]}
    value = re.sub(
        r"\{\{job\.parameters\.(\w+)\}\}", lambda m: render(defaults[m.group(1)], bundle, job, target), value
    )
    assert "${" not in value and "{{" not in value, f"unresolved reference in {value!r}"
    return value


def extra_requirements(pyproject: dict, extra: str) -> list[str]:
    """The requirements an extra adds, the extras it names (``mmm-platform[tracking]``) expanded in place."""
    found = []
    for requirement in pyproject["project"]["optional-dependencies"][extra]:
        named = re.fullmatch(r"mmm-platform\[(.+)\]", requirement)
        if named is None:
            found.append(requirement)
        else:
            found += [r for e in named.group(1).split(",") for r in extra_requirements(pyproject, e)]
    return found


def dispatched_subcommands() -> set[str]:
    """The keys of the ``handlers`` dispatch table in ``jobs.cli.main``."""
    tree = ast.parse((ROOT / "jobs" / "cli.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "handlers" for t in node.targets):
            return {key.value for key in node.value.keys}
    raise AssertionError("jobs/cli.py has no handlers table")


def test_every_task_runs_a_subcommand_of_the_projects_console_script(job: dict, pyproject: dict) -> None:
    scripts = pyproject["project"]["scripts"]
    distribution = re.sub(r"[-.]+", "_", pyproject["project"]["name"])
    handled = dispatched_subcommands()
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert [t["task_key"] for t in job["tasks"]] == CHAIN
    for task in job["tasks"]:
        wheel = task["python_wheel_task"]
        assert wheel["package_name"] == distribution
        assert scripts[wheel["entry_point"]] == "jobs.cli:run"  # exits with the code; main() only returns it
        subcommand = wheel["parameters"][0]
        assert subcommand == task["task_key"]
        assert subcommand in subparsers.choices, f"`mmm {subcommand}` has no parser"
        assert subcommand in handled, f"`mmm {subcommand}` is not in jobs/cli.py's handlers"


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_task_parameters_are_options_the_cli_accepts(bundle: dict, job: dict, target: str) -> None:
    parser = build_parser()
    for task in job["tasks"]:
        argv = [render(str(v), bundle, job, target) for v in task["python_wheel_task"]["parameters"]]
        try:
            args = parser.parse_args(argv)  # unknown options, missing required ones and bad values exit
        except SystemExit as exc:
            raise AssertionError(f"task {task['task_key']}: `mmm {' '.join(argv)}` is rejected by the CLI") from exc
        if "--as-of" in argv:
            assert args.as_of == dt.date.fromisoformat(AS_OF)


def test_job_parameters_are_declared_and_used(job: dict) -> None:
    declared = {p["name"] for p in job["parameters"]}
    used = {
        name
        for task in job["tasks"]
        for value in task["python_wheel_task"]["parameters"]
        for name in re.findall(r"\{\{job\.parameters\.(\w+)\}\}", str(value))
    }
    assert used == declared == {"as_of", "brand_dir"}


def test_tasks_run_in_order_on_the_job_cluster_with_the_built_wheel(bundle: dict, job: dict, pyproject: dict) -> None:
    clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
    artifact = (BUNDLE / bundle["artifacts"]["mmm_platform"]["path"]).resolve()
    assert (artifact / "pyproject.toml").exists()
    for previous, task in zip([None, *CHAIN], job["tasks"], strict=False):
        assert [d["task_key"] for d in task.get("depends_on", [])] == ([previous] if previous else [])
        assert task["job_cluster_key"] in clusters
        wheel, *requirements = task["libraries"]
        assert (BUNDLE / "resources" / wheel["whl"]).parent.resolve() == artifact / "dist"
        # a wheel library installs the base requirements only: the [databricks] extra is listed beside it
        assert [r["pypi"]["package"] for r in requirements] == extra_requirements(pyproject, "databricks")
    for cluster in clusters.values():
        assert cluster["spark_conf"]["spark.python.worker.reuse"] == "true"
        assert cluster["spark_env_vars"]["MMM_ENVIRONMENT"] == "${bundle.target}"


def test_schedule_is_weekly_and_matches_the_prefect_deployment(job: dict) -> None:
    schedule = job["schedule"]
    seconds, minute, hour, day_of_month, month, day_of_week = schedule["quartz_cron_expression"].split()
    (prefect_schedule,) = prefect_deployment()["schedules"]
    assert prefect_schedule["cron"].split() == [minute, hour, "*", "*", "1"]
    assert (seconds, day_of_month, month, day_of_week) == ("0", "?", "*", "MON")
    assert schedule["timezone_id"] == prefect_schedule["timezone"]
    ZoneInfo(schedule["timezone_id"])  # a real IANA zone
    assert schedule["pause_status"] == "UNPAUSED"


def test_targets_use_the_unity_catalog_names_of_conf_databricks(bundle: dict, job: dict) -> None:
    environments = yaml.safe_load(DATABRICKS_CONF.read_text())["environments"]
    assert set(bundle["targets"]) == set(environments) == {"dev", "prod"}
    assert bundle["targets"]["dev"]["mode"] == "development" and bundle["targets"]["dev"]["default"] is True
    assert bundle["targets"]["prod"]["mode"] == "production"
    pipeline = {t["task_key"]: t for t in job["tasks"]}["pipeline"]["python_wheel_task"]["parameters"]
    brands = {p["name"]: p["default"] for p in job["parameters"]}["brand_dir"]
    for target, names in environments.items():
        variables = bundle["targets"][target]["variables"]
        assert (variables["catalog"], variables["schema"]) == (names["catalog"], names["schema"])
        platform = PlatformConfig.from_yaml(DATABRICKS_CONF, environment=target)
        assert platform.mlflow.registry_uri == "databricks-uc"
        assert (
            model_name(platform.mlflow.model_prefix, "acme", "DE")
            == f"{names['catalog']}.{names['schema']}.mmm_acme_de"
        )
        # the tables are Unity Catalog tables of the bundle's schema, by name
        assert platform.tables == f"{names['catalog']}.{names['schema']}"
        assert (
            platform.tables_lake().identifier(MODEL_INPUT) == f"{names['catalog']}.{names['schema']}.gold_model_input"
        )
        # every task reads the same platform file: the pipeline writes where the others read
        argv = [render(str(v), bundle, job, target) for v in pipeline]
        assert argv[argv.index("--platform") + 1].endswith("/files/conf/databricks.yaml")
        assert "--lake" not in argv and "--landing" not in argv
        assert render(brands, bundle, job, target).endswith("/files/conf/brands")  # the synced conf/brands
        assert platform.brands == str((DATABRICKS_CONF.parent / "brands").resolve())  # beside the platform file


def test_the_databricks_platform_needs_a_known_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MMM_ENVIRONMENT", raising=False)
    with pytest.raises(ConfigError, match=r"environment None is not one of \['dev', 'prod'\]"):
        PlatformConfig.from_yaml(DATABRICKS_CONF)
    monkeypatch.setenv("MMM_ENVIRONMENT", "prod")
    assert PlatformConfig.from_yaml(DATABRICKS_CONF).lake == "/Volumes/mmm_prod/weekly/lake"
    bad = tmp_path / "bad.yaml"
    bad.write_text("environments: {dev: {catalog: c}}\nplatform: {lake: '/Volumes/{catalog}/{schema}'}\n")
    with pytest.raises(ConfigError, match="placeholder 'schema'"):
        PlatformConfig.from_yaml(bad, environment="dev")


def prefect_deployment() -> dict:
    config = yaml.safe_load(PREFECT_FILE.read_text())
    return {d["name"]: d for d in config["deployments"]}["weekly-retrain"]


def test_prefect_deployment_runs_weekly_in_a_named_timezone() -> None:
    from prefect.client.schemas.schedules import CronSchedule

    config = yaml.safe_load(PREFECT_FILE.read_text())
    assert {"name", "prefect-version", "pull", "deployments"} <= set(config)
    (schedule,) = prefect_deployment()["schedules"]
    parsed = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # Prefect's own validation
    assert parsed.cron == "0 6 * * 1" and parsed.timezone == "Europe/London" and schedule["active"] is True
    assert set(prefect_deployment()["parameters"]) == {"as_of", "brands", "environment"}


def test_prefect_entrypoint_is_a_flow_file_in_the_repository() -> None:
    """``path.py:function``; once ``jobs/flow.py`` exists, the function and its parameters are checked too."""
    deployment = prefect_deployment()
    match = re.fullmatch(r"((?:\w+/)*\w+\.py):(\w+)", deployment["entrypoint"])
    assert match, f"entrypoint {deployment['entrypoint']!r} is not path/to/file.py:function"
    path, function = ROOT / match.group(1), match.group(2)
    assert path.parent.is_dir()
    if not path.exists():
        return  # the flow is written in a later step of issue 8; the path format is all there is to check
    flows = {n.name: n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}
    assert function in flows, f"{path} defines no {function}()"
    arguments = {a.arg for a in (*flows[function].args.args, *flows[function].args.kwonlyargs)}
    assert set(deployment["parameters"]) <= arguments


def test_tasks_run_only_after_their_predecessor_succeeded(job: dict) -> None:
    """A held-back market is a success with a status table; a failed monitor step stops promotion."""
    for task in job["tasks"]:
        assert task.get("run_if", "ALL_SUCCESS") == "ALL_SUCCESS", task["task_key"]
    (cluster,) = job["job_clusters"]
    assert cluster["new_cluster"]["spark_env_vars"]["MMM_HELD_BACK_EXIT"] == "0"
    assert job["email_notifications"]["on_failure"] == "${var.failure_emails}"


def test_executor_credentials_come_from_a_secret_scope_never_from_config(bundle: dict, job: dict) -> None:
    """The fit processes on the executors write to MLflow: their token is a secret reference, resolved by
    Databricks when the cluster starts; no config file, parameter or variable holds a token."""
    (cluster,) = job["job_clusters"]
    variables = cluster["new_cluster"]["spark_env_vars"]
    assert variables["DATABRICKS_TOKEN"] == "{{secrets/${var.secret_scope}/${var.mlflow_token_key}}}"
    assert variables["DATABRICKS_HOST"] == "${workspace.host}"
    assert {"secret_scope", "mlflow_token_key"} <= set(bundle["variables"])
    for text in (DATABRICKS_CONF.read_text(), yaml.safe_dump(bundle), yaml.safe_dump(job)):
        assert not re.search(r"dapi[0-9a-f]{16,}", text)  # no literal Databricks token anywhere


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_every_volume_the_job_uses_is_declared_in_the_bundle(bundle: dict, job: dict, target: str) -> None:
    resources = bundle["resources"]
    (schema,) = resources["schemas"].values()
    declared = {
        f"/Volumes/{render(v['catalog_name'], bundle, job, target)}/"
        f"{render(schema['name'], bundle, job, target)}/{v['name']}"
        for v in resources["volumes"].values()
    }
    assert all(v["schema_name"] == "${resources.schemas.mmm.name}" for v in resources["volumes"].values())
    used = {
        "/".join(render(str(value), bundle, job, target).split("/")[:5])
        for task in job["tasks"]
        for value in task["python_wheel_task"]["parameters"]
        if str(value).startswith("/Volumes/")
    }
    platform = PlatformConfig.from_yaml(DATABRICKS_CONF, environment=target)
    artifacts = platform.mlflow.artifact_location.removeprefix("dbfs://")
    used |= {"/".join(path.split("/")[:5]) for path in (platform.lake, platform.landing, artifacts)}
    assert used and used <= declared


def test_prod_runs_as_a_service_principal_and_dev_under_each_user(bundle: dict) -> None:
    assert "service_principal_name" in bundle["targets"]["prod"]["run_as"]
    assert "${workspace.current_user.userName}" in bundle["targets"]["dev"]["workspace"]["root_path"]


def test_the_console_script_exits_with_its_code_and_held_back_can_be_a_success(monkeypatch) -> None:
    from jobs import cli

    monkeypatch.setattr(cli, "main", lambda argv=None: 3)
    with pytest.raises(SystemExit) as exited:
        cli.run()
    assert exited.value.code == 3
