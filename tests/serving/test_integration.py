"""The service over a real lake and registry: gold written with Spark, two markets trained, promoted and
recommended by the platform's jobs (acme/DE gets a champion, acme/FR's constant target fails training).
Every endpoint in process (FastAPI's client), the library's answers reproduced exactly, an alias that
moves, and ``mmm api`` as a real uvicorn process on 127.0.0.1 spoken to with httpx."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from mmm_models.analysis import channel_metrics
from mmm_models.optimizer import BudgetProblem, optimize_budget
from mmm_models.prediction import compare_scenarios
from mmm_models.simulator import SimulationConfig, simulate_market
from pipelines.config import BrandConfig, GateSettings, MlflowSettings, PlatformConfig, TrainingSettings
from pipelines.recommend.job import recommend
from pipelines.registry.promotion import promote
from pipelines.registry.store import RegistryStore
from pipelines.tables import BUDGET_RECOMMENDATIONS, MARKET_STATUS, MODEL_INPUT
from pipelines.training.driver import train
from serving import optimizer
from serving.app import create_app
from serving.auth import TOKENS_ENV
from serving.champions import ChampionCache
from serving.lake import LakeReader
from serving.service import RecommendationService
from tests.serving.conftest import TOKEN

pytestmark = pytest.mark.slow

CHANNELS = ("tv", "search", "social")
SIMULATION = SimulationConfig(weeks=78, channels=CHANNELS)
AS_OF = dt.date(2023, 7, 3)  # the Monday after the simulated 78 weeks
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_DRAWS = 1000


def gold_rows(brand: str, market: str, seed: int, constant_target: bool = False) -> pd.DataFrame:
    data = simulate_market(SIMULATION, seed=seed).data
    return pd.DataFrame(
        {
            "brand": brand,
            "market": market,
            "week_start": data["date"].dt.date,
            "target": 100.0 if constant_target else data["y"],
            "target_missing": False,
            "sales_days": 7,
            "partial_week": False,
            **{f"spend_{c}": data[c] for c in CHANNELS},
            "control_price_index": data["price_index"],
            "controls_missing": False,
        }
    )


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    """The lake and registry after train, promote and recommend; the platform also written as a YAML file."""
    folder = tmp_path_factory.mktemp("serving")
    root = folder / "lake"
    gold = pd.concat([gold_rows("acme", "DE", 1), gold_rows("acme", "FR", 2, constant_target=True)])
    spark.createDataFrame(gold).write.format("delta").save(MODEL_INPUT.path(root))
    status = gold[["brand", "market"]].drop_duplicates().assign(status="included", reason="")
    spark.createDataFrame(status).write.format("delta").save(MARKET_STATUS.path(root))
    brands = {"acme": BrandConfig(brand="acme", taxonomy={c: [f"{c}_raw"] for c in CHANNELS}, controls=["price_index"])}
    platform = PlatformConfig(
        mlflow=MlflowSettings(tracking_uri=f"sqlite:///{folder}/mlflow.db", artifact_location=str(folder / "art")),
        training=TrainingSettings(sampler="numpyro", chains=2, draws=300, tune=300, holdout_weeks=8),
        gate=GateSettings(max_rhat=1.2, min_ess_bulk=20, max_divergences=50, max_holdout_wape_ratio=10),
    )
    quiet = lambda _: None  # noqa: E731
    run = train(spark, root, brands, platform, AS_OF, progress=quiet)
    promote(spark, root, platform, run.training_run_id)
    recommend(spark, root, brands, platform, AS_OF, progress=quiet)
    platform_file = folder / "platform.yaml"
    platform_file.write_text(yaml.safe_dump(platform.model_dump(mode="json")))
    store = RegistryStore.from_settings(platform.mlflow)
    model = store.load_run_model(store.market_run_id("mmm_acme_de", "1", "acme", "DE"))  # loaded apart from the service
    return {"root": root, "platform": platform, "platform_file": platform_file, "store": store, "model": model}


@pytest.fixture(scope="module")
def service(trained) -> RecommendationService:
    champions = ChampionCache(trained["store"], "champion", "mmm", max_draws=MAX_DRAWS, alias_ttl_s=0)
    service = RecommendationService(LakeReader(trained["root"], refresh_s=0), champions)
    service.warm()
    return service


@pytest.fixture(scope="module")
def client(service):
    with TestClient(create_app(service, frozenset({TOKEN}), warm=False)) as client:
        yield client


def test_warm_up_loads_and_compiles_the_champions(client: TestClient) -> None:
    ready = client.get("/ready", headers=AUTH).json()
    assert ready["ready"] and ready["champions"] == ["acme/DE@1"] and ready["problems"] == []
    assert ready["compilations"] >= 1


def test_markets_show_champion_training_and_recommendation(client: TestClient) -> None:
    markets = {m["market"]: m for m in client.get("/markets", headers=AUTH).json()}
    de, fr = markets["DE"], markets["FR"]
    assert (de["champion_version"], de["training"]["status"], de["training"]["model_version"]) == ("1", "success", "1")
    assert (de["last_run_date"], de["recommendation_status"]) == (AS_OF.isoformat(), "success")
    assert de["pipeline_status"] == "included" and de["verdict"] in {"act", "hold", "test"}
    assert fr["champion_version"] is None and fr["training"]["status"] == "failed"
    assert fr["recommendation_status"] == "no_champion"


def test_recommendation_rows_are_the_tables(client: TestClient, spark, trained) -> None:
    table = spark.read.format("delta").load(BUDGET_RECOMMENDATIONS.path(trained["root"])).toPandas()
    expected = table[table["market"] == "DE"].sort_values("channel")
    latest = client.get("/markets/acme/DE/recommendations", headers=AUTH).json()
    assert latest["run_date"] == AS_OF.isoformat() and latest["run_dates"] == [AS_OF.isoformat()]
    assert [r["channel"] for r in latest["rows"]] == list(expected["channel"])
    np.testing.assert_allclose([r["recommended_spend"] for r in latest["rows"]], expected["recommended_spend"])
    assert all(r["status"] == "success" and r["model_version"] == "1" for r in latest["rows"])
    given = client.get(f"/markets/acme/DE/recommendations?run_date={AS_OF}", headers=AUTH).json()
    assert given == latest
    other = client.get("/markets/acme/DE/recommendations?run_date=2023-06-26", headers=AUTH)
    assert other.status_code == 404 and f"run dates: ['{AS_OF}']" in other.json()["detail"]
    fr = client.get("/markets/acme/FR/recommendations", headers=AUTH).json()
    assert {r["status"] for r in fr["rows"]} == {"no_champion"} and fr["rows"][0]["recommended_spend"] is None


def test_channel_summary_is_the_librarys(client: TestClient, trained) -> None:
    model = trained["model"]
    answer = client.get("/markets/acme/DE/channels", headers=AUTH).json()
    expected = channel_metrics(model, max_draws=MAX_DRAWS).set_index(["channel", "metric"])
    assert [c["channel"] for c in answer["channels"]] == list(CHANNELS) and answer["hdi_prob"] == 0.9
    for channel in answer["channels"]:
        for metric in ("roas", "contribution_share", "marginal_roas", "adstock_half_life", "half_saturation_spend"):
            row = expected.loc[(channel["channel"], metric)]
            assert channel[metric]["mean"] == pytest.approx(row["mean"], rel=1e-9)
            assert channel[metric]["hdi_low"] <= channel[metric]["mean"] <= channel[metric]["hdi_high"]
    start = model.data[model.spec.date_column].iloc[26].date()
    period = client.get(f"/markets/acme/DE/channels?start={start}&end={start + dt.timedelta(weeks=12)}", headers=AUTH)
    assert period.json()["period_start"] == start.isoformat()
    assert period.json()["channels"][0]["spend"] < answer["channels"][0]["spend"]
    outside = client.get("/markets/acme/DE/channels?start=2030-01-07", headers=AUTH)
    assert outside.status_code == 422 and outside.json()["detail"][0]["loc"] == ["query", "start"]


QUESTIONS = [
    {},  # the current split of the latest weeks' spend, over 13 weeks
    {"horizon_weeks": 26, "total_budget": 400_000, "locked": ["search"]},
    {
        "total_budget": 600_000,
        "bounds": {"tv": {"min": 0.8, "max": 1.2, "relative": True}, "social": {"min": 10_000, "max": 150_000}},
        "objective": "mean_minus_sd",
    },
]


@pytest.mark.parametrize("question", QUESTIONS, ids=["default", "locked-26-weeks", "bounds-risk"])
def test_an_optimize_answer_equals_optimize_budget(client: TestClient, trained, question) -> None:
    answer = client.post("/markets/acme/DE/optimize", json=question, headers=AUTH)
    assert answer.status_code == 200, answer.text
    expected = optimize_budget(trained["model"], BudgetProblem(**question), max_draws=MAX_DRAWS)
    body = answer.json()
    assert [c["channel"] for c in body["channels"]] == list(expected.table["channel"])
    recommended = np.array([c["recommended_spend"] for c in body["channels"]])
    np.testing.assert_allclose(recommended, expected.table["recommended_spend"], rtol=1e-6, atol=1e-9)
    assert body["uplift"]["mean"] == pytest.approx(expected.uplift["mean"], rel=1e-6, abs=1e-6)
    assert body["total_budget"] == pytest.approx(expected.total_budget, rel=1e-9)
    assert body["model_version"] == "1" and body["converged"] == expected.converged


def test_a_new_question_of_a_known_structure_compiles_nothing(client: TestClient) -> None:
    client.post("/markets/acme/DE/optimize", json={"total_budget": 100_000}, headers=AUTH)
    before = optimizer.compilations()
    for total in (150_000, 200_000):
        assert client.post("/markets/acme/DE/optimize", json={"total_budget": total}, headers=AUTH).status_code == 200
    assert optimizer.compilations() == before


def test_an_infeasible_budget_is_422_with_the_optimisers_message(client: TestClient) -> None:
    question = {"total_budget": 1e12, "bounds": {c: {"max": 1.5, "relative": True} for c in CHANNELS}}
    answer = client.post("/markets/acme/DE/optimize", json=question, headers=AUTH)
    assert answer.status_code == 422 and "above the sum of channel maximums" in answer.json()["detail"]
    unknown = client.post("/markets/acme/DE/optimize", json={"locked": ["radio"]}, headers=AUTH)
    assert unknown.status_code == 422 and "locked name unknown channels ['radio']" in unknown.json()["detail"]


def test_a_what_if_is_compare_scenarios_against_the_run_rate(client: TestClient, trained) -> None:
    model = trained["model"]
    recent = model.data[list(CHANNELS)].tail(4).mean()
    start = model.data[model.spec.date_column].iloc[-1] + pd.Timedelta(weeks=1)
    weeks = [start + pd.Timedelta(weeks=i) for i in range(4)]
    plan = [{"week_start": str(w.date()), "spend": {c: 1.5 * float(recent[c]) for c in CHANNELS}} for w in weeks]
    answer = client.post("/markets/acme/DE/what-if", json={"plan": plan}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    last_price = float(model.data["price_index"].iloc[-1])

    def frame(factor: float) -> pd.DataFrame:
        rows = [{model.spec.date_column: w, **(factor * recent).to_dict(), "price_index": last_price} for w in weeks]
        return pd.DataFrame(rows)

    expected = compare_scenarios(model, frame(1.5), frame(1.0), max_draws=MAX_DRAWS)
    assert body["difference"]["mean"] == pytest.approx(expected.difference["mean"], rel=1e-9)
    assert body["difference"]["hdi_low"] == pytest.approx(expected.difference["hdi_low"], rel=1e-9)
    assert body["difference"]["mean"] > 0  # more spend, more outcome
    assert [w["week_start"] for w in body["weekly"]] == [str(w.date()) for w in weeks]
    assert len(body["weekly_difference"]) == len(expected.weekly) > len(weeks)  # carry-over weeks follow
    first = body["weekly"][0]
    assert first["quantiles"]["q0.05"] < first["expected_mean"] < first["quantiles"]["q0.95"]
    assert body["baseline"][0]["spend"]["tv"] == pytest.approx(float(recent["tv"]))

    plan[0]["spend"]["radio"] = 1.0
    unknown = client.post("/markets/acme/DE/what-if", json={"plan": plan}, headers=AUTH)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "plan", 0, "spend"]
    tuesday = [{"week_start": str((start + pd.Timedelta(days=1)).date()), "spend": dict.fromkeys(CHANNELS, 1.0)}]
    refused = client.post("/markets/acme/DE/what-if", json={"plan": tuesday}, headers=AUTH)
    assert refused.status_code == 422 and "Monday" in refused.json()["detail"][0]["msg"]


def test_a_market_whose_training_failed_is_409(client: TestClient) -> None:
    answer = client.post("/markets/acme/FR/optimize", json={}, headers=AUTH)
    assert answer.status_code == 409
    assert "no champion version of mmm_acme_fr; latest training: failed" in answer.json()["detail"]


def test_a_moved_alias_is_served(client: TestClient, trained, monkeypatch) -> None:
    platform = trained["platform"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", platform.mlflow.tracking_uri)  # the registry resolves models:/ by it
    registry = MlflowClient(platform.mlflow.tracking_uri)
    first = registry.get_model_version("mmm_acme_de", "1")
    second = registry.create_model_version("mmm_acme_de", first.source, run_id=first.run_id, tags=first.tags)
    registry.set_registered_model_alias("mmm_acme_de", "champion", second.version)
    try:
        answer = client.post("/markets/acme/DE/optimize", json={"total_budget": 100_000}, headers=AUTH).json()
        assert answer["model_version"] == str(second.version) == "2"
        assert client.get("/ready", headers=AUTH).json()["champions"] == ["acme/DE@2"]  # v1 left the cache
    finally:
        registry.set_registered_model_alias("mmm_acme_de", "champion", "1")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, seconds: float, process: subprocess.Popen, **options) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "mmm api exited early"
        try:
            answer = httpx.get(url, timeout=5, **options)
            if answer.status_code == 200:
                return answer
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready within {seconds} s")


def test_mmm_api_under_uvicorn_on_loopback(trained, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "api.log"
    command = [sys.executable, "-m", "jobs.cli", "api", "--platform", str(trained["platform_file"])]
    command += ["--lake", str(trained["root"]), "--port", str(port)]
    with log.open("w") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, TOKENS_ENV: TOKEN}
        )
    try:
        assert wait_for(f"{base}/health", 120, process).json() == {"status": "ok"}
        ready = wait_for(f"{base}/ready", 300, process, headers=AUTH).json()  # warm-up: load and compile
        assert ready["champions"] == ["acme/DE@1"]
        assert httpx.get(f"{base}/markets").status_code == 401
        markets = httpx.get(f"{base}/markets", headers=AUTH).json()
        assert {m["market"]: m["champion_version"] for m in markets} == {"DE": "1", "FR": None}
        assert httpx.get(f"{base}/openapi.json").status_code == 200  # the docs need no token
        question = {"total_budget": 300_000}
        answer = httpx.post(f"{base}/markets/acme/DE/optimize", json=question, headers=AUTH, timeout=60).json()
        expected = optimize_budget(trained["model"], BudgetProblem(**question), max_draws=MAX_DRAWS)
        np.testing.assert_allclose(
            [c["recommended_spend"] for c in answer["channels"]], expected.table["recommended_spend"], rtol=1e-6
        )
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    text = log.read_text()
    assert "Uvicorn running on http://127.0.0.1:" in text and TOKEN not in text
