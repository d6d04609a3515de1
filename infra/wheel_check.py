"""The wheel as a new user gets it (issue 17, acceptance 1 and 3), outside the checkout: ``make wheel-check``.

1. Build the wheel from a copy of the checkout's files (tracked and untracked, not ignored) and list it.
2. A fresh virtual environment with the base install only: ``mmm_models`` and its analysis import, and
   none of Spark, MLflow or Prefect is installed.
3. A fresh virtual environment with ``[spark,orchestration,tracking]``; ``mmm init`` a project in a
   temporary folder; ``mmm run --demo`` there (one brand, ``--markets`` markets, two weeks) passes, and
   nothing was written inside the environment's site-packages.
4. From another temporary folder, a champion loads with ``mlflow.pyfunc.load_model`` and predicts; then
   ``mlflow models serve -m models:/<name>@champion --env-manager local`` answers ``/invocations`` on
   127.0.0.1 with the same numbers.

Every folder is under the system's temporary folder (never inside the checkout), removed at the end
unless ``--keep``. Prints the wheel's files and each step's time; exits 1 at the first failed check.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
EXTRAS = "spark,orchestration,tracking"
BASE_FORBIDDEN = ("pyspark", "delta", "mlflow", "prefect", "great_expectations", "fastapi")
SERVE_TIMEOUT_S = 180
# Run in the fresh environment, from a folder outside the checkout: load the champion, predict a plan.
PREDICT = """
import json, sys
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
columns = [c.name for c in model.metadata.get_input_schema().inputs]
date, values = columns[0], columns[1:]
plan = pd.DataFrame({date: pd.date_range("2026-01-05", periods=13, freq="W-MON").strftime("%Y-%m-%d")})
for i, column in enumerate(values):
    plan[column] = 1.0 if column == "price_index" else 2000.0 + 500.0 * i
forecast = model.predict(plan)
forecast[date] = forecast[date].astype(str)
json.dump({"plan": json.loads(plan.to_json(orient="split", index=False)),
           "predictions": forecast.to_dict(orient="records"), "module": mlflow.pyfunc.__file__}, sys.stdout)
"""


class CheckFailedError(RuntimeError):
    """A check of the wheel failed; the message says which and why."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markets", type=int, default=2, help="demo markets of the starter brand (1-4)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mmm-wheel-check-"))
    if root.is_relative_to(CHECKOUT):
        raise SystemExit(f"the temporary folder {root} is inside the checkout; set TMPDIR elsewhere")
    print(f"wheel check in {root}", flush=True)
    timings: dict[str, float] = {}
    try:
        wheel = timed(timings, "build the wheel", lambda: build_wheel(root))
        timed(timings, "base install: mmm_models only", lambda: check_base_install(root, wheel))
        python = timed(timings, f"install [{EXTRAS}]", lambda: install(root / "venv", wheel, EXTRAS))
        project = root / "project"
        timed(timings, "mmm init", lambda: run([python.parent / "mmm", "init", str(project)], cwd=root))
        demo = [python.parent / "mmm", "run", "--demo", "--markets", str(args.markets)]
        timed(timings, "mmm run --demo", lambda: run(demo, cwd=project, env={"PYTHONUNBUFFERED": "1"}))
        check_nothing_in_site_packages(root / "venv")
        uri = champion_uri(python, project)
        store = {"MLFLOW_TRACKING_URI": f"sqlite:///{project / 'outputs' / 'mlflow.db'}"}
        elsewhere = root / "elsewhere"
        elsewhere.mkdir()
        local = timed(timings, "load the champion and predict", lambda: predict(python, uri, elsewhere, store))
        served = timed(timings, "mlflow models serve", lambda: serve(python, uri, local["plan"], elsewhere, store))
        compare(local["predictions"], served)
        print(f"served /invocations = in-process prediction for {uri} ({len(served)} weeks)")
    except (CheckFailedError, subprocess.CalledProcessError) as exc:
        print(f"\nWHEEL CHECK FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        print("\ntimings:")
        for step, seconds in timings.items():
            print(f"  {step:<40} {seconds:7.1f} s")
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print("wheel check passed")
    return 0


def timed(timings: dict[str, float], step: str, action):  # -> whatever action returns
    print(f"\n== {step}", flush=True)
    start = time.perf_counter()
    try:
        return action()
    finally:
        timings[step] = time.perf_counter() - start


def run(command: list, cwd: Path, env: dict[str, str] | None = None, capture: bool = False) -> str:
    """Run a command (its output shown, or returned with ``capture``); a failure raises."""
    environment = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "MMM_PROJECT")}
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env={**environment, **(env or {})}, text=True, capture_output=capture
    )
    if result.returncode != 0:
        detail = f"\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}" if capture else ""
        raise CheckFailedError(f"{' '.join(map(str, command))} exited {result.returncode}{detail}")
    return result.stdout if capture else ""


def build_wheel(root: Path) -> Path:
    """The wheel of the checkout's files (a copy: a stale build/ in the checkout cannot leak into it)."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=CHECKOUT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    source = root / "source"
    for name in filter(None, files.split("\0")):
        if (CHECKOUT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(CHECKOUT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", root / "dist", source], cwd=root)
    (wheel,) = (root / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    print(f"{wheel.name}: {len(names)} files, {wheel.stat().st_size / 1024:.0f} KiB")
    for name in names:
        print(f"  {name}")
    if not any(n.startswith("mmm_conf/brands/") for n in names) or "mmm_conf/platform.yaml" not in names:
        raise CheckFailedError("the wheel lacks the default configuration (mmm_conf/)")
    return wheel


def install(venv: Path, wheel: Path, extras: str | None) -> Path:
    """A fresh virtual environment holding the wheel (with ``extras``) and its requirements; its python."""
    run([sys.executable, "-m", "venv", venv], cwd=venv.parent)
    python = venv / "bin" / "python"
    requirement = f"{wheel}[{extras}]" if extras else str(wheel)
    run([python, "-m", "pip", "install", "--quiet", requirement], cwd=venv.parent)
    return python


def check_base_install(root: Path, wheel: Path) -> None:
    """The base install: the model library and its analysis import; the platform's heavy packages are absent."""
    python = install(root / "venv-base", wheel, None)
    code = (
        "import importlib.util, sys\n"
        "import mmm_models\n"
        "from mmm_models import analysis, fitted, optimizer, prediction, spec\n"
        f"present = [m for m in {BASE_FORBIDDEN!r} if importlib.util.find_spec(m)]\n"
        "assert not present, f'installed without an extra: {present}'\n"
        "assert 'jax' not in sys.modules or not __import__('jax').config.read('jax_enable_x64'), 'float64 at import'\n"
        "print('mmm_models and its analysis import with the base install; no Spark, MLflow or Prefect')\n"
    )
    run([python, "-c", code], cwd=root)
    run([python.parent / "mmm", "--help"], cwd=root, capture=True)


def check_nothing_in_site_packages(venv: Path) -> None:
    """No project file (lake, landing, MLflow store, artifacts) landed inside the installed packages."""
    (site,) = venv.glob("lib/python*/site-packages")
    strays = [p for p in site.glob("outputs*")] + [p for p in site.rglob("mlflow.db")]
    if strays:
        raise CheckFailedError(f"written inside site-packages: {strays}")


def champion_uri(python: Path, project: Path) -> str:
    """``models:/<name>@champion`` of the first market the demo promoted."""
    code = (
        "import mlflow, sys\n"
        "client = mlflow.MlflowClient(sys.argv[1])\n"
        "for m in sorted(client.search_registered_models(), key=lambda m: m.name):\n"
        "    if 'champion' in m.aliases:\n"
        "        print(m.name)\n"
        "        break\n"
    )
    name = run([python, "-c", code, f"sqlite:///{project / 'outputs' / 'mlflow.db'}"], cwd=project, capture=True)
    if not name.strip():
        raise CheckFailedError("the demo promoted no champion")
    return f"models:/{name.strip()}@champion"


def predict(python: Path, uri: str, cwd: Path, store: dict[str, str]) -> dict:
    """The champion's prediction of a 13-week plan, in the fresh environment, from ``cwd``."""
    result = json.loads(run([python, "-c", PREDICT, uri], cwd=cwd, env=store, capture=True))
    if not result["module"].startswith(str(python.parent.parent)):
        raise CheckFailedError(f"mlflow came from {result['module']}, not the fresh environment")
    print(f"in-process prediction: {len(result['predictions'])} weeks, first {result['predictions'][0]}")
    return result


def serve(python: Path, uri: str, plan: dict, cwd: Path, store: dict[str, str]) -> list[dict]:
    """Start ``mlflow models serve`` on a free port of 127.0.0.1, post the plan to /invocations, stop it."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    command = [python.parent / "mlflow", "models", "serve", "-m", uri, "--env-manager", "local"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    # As in an activated environment: the server runs `uvicorn` from the PATH.
    env = {**os.environ, **store, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = (cwd / "serve.log").open("w")
    server = subprocess.Popen([str(c) for c in command], cwd=cwd, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5):
                    break
            except OSError as exc:
                if server.poll() is not None or time.monotonic() > deadline:
                    output = (cwd / "serve.log").read_text()[-3000:]
                    raise CheckFailedError(f"mlflow models serve did not start: {output}") from exc
                time.sleep(1)
        body = json.dumps({"dataframe_split": {"columns": plan["columns"], "data": plan["data"]}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["predictions"]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def compare(local: list[dict], served: list[dict]) -> None:
    """Every number the server answered equals the in-process prediction (to float rounding of JSON)."""
    if len(local) != len(served):
        raise CheckFailedError(f"served {len(served)} rows, predicted {len(local)}")
    for week, (a, b) in enumerate(zip(local, served, strict=True)):
        for column, value in a.items():
            other = b.get(column)
            if isinstance(value, float) and not (
                isinstance(other, float) and abs(value - other) <= 1e-9 * max(1.0, abs(value))
            ):
                raise CheckFailedError(f"week {week} {column}: served {other!r}, predicted {value!r}")


if __name__ == "__main__":
    sys.exit(main())
