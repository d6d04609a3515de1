"""The service without Spark or a fitted model: auth, the bind rule, request validation, names, unknown
markets, a market without a champion, readiness and the lake reader, on a lake written with ``deltalake``."""

from __future__ import annotations

import datetime as dt
import logging
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from jobs.cli import main
from pipelines.tables import BUDGET_RECOMMENDATIONS, MARKET_STATUS
from serving.app import create_app
from serving.auth import TOKENS_ENV, UnsafeBindError, check_bind, is_loopback, load_tokens
from serving.lake import STALE, LakeReader
from serving.service import InvalidRequestError, RecommendationService, UnknownMarketError
from serving.timing import server_duration_ms
from tests.serving.conftest import TOKEN, write_table

ROOT = Path(__file__).resolve().parents[2]

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(service) -> TestClient:
    with TestClient(create_app(service, frozenset({TOKEN}), warm=False)) as client:
        yield client


def test_health_is_open_and_every_other_endpoint_needs_a_token(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    for path in ("/ready", "/markets", "/markets/acme/DE/recommendations", "/markets/acme/DE/channels"):
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"] == "Bearer"
    for method, path in (("post", "/markets/acme/DE/optimize"), ("post", "/markets/acme/DE/what-if")):
        assert client.request(method, path, json={}).status_code == 401, path
    assert client.get("/markets", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    assert client.get("/markets", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.get("/markets", headers=AUTH).status_code == 200


def test_no_token_is_ever_logged_or_echoed(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "wrong-token-abcdefghijklmnop"
    with caplog.at_level(logging.DEBUG):
        refused = client.get("/markets", headers={"Authorization": f"Bearer {wrong}"})
        client.get("/markets", headers=AUTH)
        client.post("/markets/acme/FR/optimize", json={}, headers=AUTH)
    assert caplog.records  # something was logged, and none of it holds a token
    assert TOKEN not in caplog.text and wrong not in caplog.text
    assert wrong not in refused.text


def test_tokens_come_from_the_environment_and_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "tokens"
    secret.write_text("# the planning tool\nfile-token-0123456789abc\n\n")
    tokens = load_tokens({TOKENS_ENV: f"env-token-0123456789abc, {TOKEN}"}, secret)
    assert tokens == {"env-token-0123456789abc", TOKEN, "file-token-0123456789abc"}
    assert load_tokens({}) == frozenset()
    with pytest.raises(ValueError, match="1 API token") as refused:
        load_tokens({TOKENS_ENV: "short"})
    assert "short" not in str(refused.value).replace("shorter", "")


def test_only_loopback_without_a_token(tmp_path: Path, monkeypatch, capsys) -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert is_loopback(host)
        check_bind(host, frozenset())
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.com"):
        assert not is_loopback(host)
        with pytest.raises(UnsafeBindError, match="without an API token"):
            check_bind(host, frozenset())
        check_bind(host, frozenset({TOKEN}))
    monkeypatch.delenv(TOKENS_ENV, raising=False)
    monkeypatch.delenv("MMM_API_TOKEN_FILE", raising=False)
    assert main(["api", "--project", str(tmp_path), "--host", "0.0.0.0", "--no-warm"]) == 1  # before listening
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"total_budget": -5}, ["body", "total_budget"], "greater than 0"),
        ({"objective": "max"}, ["body", "objective"], "'mean', 'mean_minus_sd' or 'cvar'"),
        ({"horizon_weeks": 0}, ["body", "horizon_weeks"], "greater than or equal to 1"),
        ({"bounds": {"tv": {"min": -1}}}, ["body", "bounds", "tv", "min"], "greater than or equal to 0"),
        ({"budget": 5}, ["body", "budget"], "Extra inputs are not permitted"),
        ({"total_budget": 5, "target_roas": 2}, ["body"], "either total_budget or target_roas"),
    ],
)
def test_a_bad_budget_question_is_422_naming_the_field(client: TestClient, body, loc, message) -> None:
    answer = client.post("/markets/acme/DE/optimize", json=body, headers=AUTH)
    assert answer.status_code == 422
    (error,) = answer.json()["detail"]
    assert error["loc"] == loc and message in error["msg"]


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"plan": []}, ["body", "plan"], "at least 1 item"),
        ({"plan": [{"week_start": "2024-13-01", "spend": {}}]}, ["body", "plan", 0, "week_start"], "valid date"),
        ({"plan": [{"week_start": "2024-06-03", "spend": {"tv": -1}}]}, ["body", "plan", 0], "non-negative"),
        ({"plan": [{"week_start": "2024-06-03", "spend": {"tv": "a lot"}}]}, ["body", "plan", 0, "spend", "tv"], ""),
        (
            {
                "plan": [{"week_start": "2024-06-03", "spend": {}}],
                "baseline": [{"week_start": "2024-06-10", "spend": {}}],
            },
            ["body"],
            "baseline must cover the same weeks",
        ),
    ],
)
def test_a_bad_plan_is_422_naming_the_field(client: TestClient, body, loc, message) -> None:
    answer = client.post("/markets/acme/DE/what-if", json=body, headers=AUTH)
    assert answer.status_code == 422
    (error,) = answer.json()["detail"]
    assert error["loc"] == loc and message in error["msg"]


def test_names_are_checked_before_use_and_unknown_markets_are_404(client: TestClient) -> None:
    for path, field in (("/markets/ac.me/DE/recommendations", "brand"), ("/markets/acme/..DE/channels", "market")):
        answer = client.get(path, headers=AUTH)
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["path", field]
        assert "not a valid name" in answer.json()["detail"][0]["msg"]
    unknown = client.get("/markets/acme/IT/recommendations", headers=AUTH)
    assert unknown.status_code == 404 and "unknown market acme/IT" in unknown.json()["detail"]
    known = client.get("/markets/ACME/de/recommendations", headers=AUTH)  # normalised: acme/DE, known, nothing yet
    assert known.status_code == 404 and "no budget recommendations for acme/DE yet" in known.json()["detail"]
    assert client.post("/markets/acme/IT/optimize", json={}, headers=AUTH).status_code == 404


def test_a_market_without_a_champion_is_409_with_the_reason(client: TestClient) -> None:
    failed = client.post("/markets/acme/FR/optimize", json={"total_budget": 100}, headers=AUTH)
    assert failed.status_code == 409
    assert failed.json()["detail"] == (
        "acme/FR has no champion version of mmm_acme_fr; "
        "latest training: failed (DataError: acme/FR: the target is constant) on 2024-06-03"
    )
    untrained = client.get("/markets/acme/DE/channels", headers=AUTH)
    assert untrained.status_code == 409 and "it has not been trained" in untrained.json()["detail"]
    plan = {"plan": [{"week_start": "2024-06-03", "spend": {"tv": 1.0}}]}
    assert client.post("/markets/acme/DE/what-if", json=plan, headers=AUTH).status_code == 409


def test_markets_list_training_status_without_champions(client: TestClient) -> None:
    markets = {(m["brand"], m["market"]): m for m in client.get("/markets", headers=AUTH).json()}
    assert set(markets) == {("acme", "DE"), ("acme", "FR")}
    fr = markets[("acme", "FR")]
    assert fr["champion_version"] is None and fr["model_name"] == "mmm_acme_fr"
    assert fr["training"]["status"] == "failed" and fr["training"]["run_date"] == "2024-06-03"
    assert markets[("acme", "DE")]["training"] is None and markets[("acme", "DE")]["last_run_date"] is None
    assert (fr["data_review"], fr["data_warnings"]) == ("zero_weeks: tv has no spend in 70% of weeks", 1)
    assert (markets[("acme", "DE")]["data_review"], markets[("acme", "DE")]["data_warnings"]) == (None, 0)


def test_readiness_waits_for_warm_up_and_the_lake(service, tmp_path: Path) -> None:
    app = create_app(service, frozenset(), warm=False)
    with TestClient(app) as client:
        waiting = client.get("/ready")
        assert waiting.status_code == 503 and waiting.json()["ready"] is False
        service.warm()  # no champions: nothing to load, but the lake is there
        assert client.get("/ready").json() == {
            "ready": True,
            "warming": False,
            "champions": [],
            "compilations": client.get("/ready").json()["compilations"],
            "problems": [],
        }
        service.lake = LakeReader(tmp_path / "nowhere")
        empty = client.get("/ready")
        assert empty.status_code == 503 and "no quality.market_status table" in empty.json()["problems"][0]


def test_the_lake_reader_sees_a_new_version(lake: Path) -> None:
    reader = LakeReader(lake, refresh_s=0)
    first = reader.read(MARKET_STATUS)
    assert len(first) == 2 and reader.version(MARKET_STATUS) == 0
    assert reader.read(MARKET_STATUS) is first  # same version: the cached frame
    extra = pd.DataFrame(
        {
            "brand": ["bolt"],
            "market": ["US"],
            "status": ["excluded"],
            "reason": ["min_history"],
            "data_review": [""],
            "data_warnings": [0],
        }
    )
    write_table(lake, MARKET_STATUS, extra)
    assert len(reader.read(MARKET_STATUS)) == 3 and reader.version(MARKET_STATUS) == 1
    slow = LakeReader(lake, refresh_s=3600)
    assert len(slow.read(MARKET_STATUS)) == 3
    write_table(lake, MARKET_STATUS, extra.assign(market="UK"))
    assert len(slow.read(MARKET_STATUS)) == 3  # within refresh_s: the cached rows
    missing = LakeReader(lake / "none").read(MARKET_STATUS)
    assert missing.empty and list(missing.columns) == MARKET_STATUS.columns


def test_the_service_imports_without_spark() -> None:
    """The ``serving`` extra has no pyspark or delta-spark: nothing on the service's import path may need them."""
    blocked = "import sys; sys.modules['pyspark'] = sys.modules['delta'] = None"
    code = f"{blocked}; import jobs.api, serving.app, serving.service"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_every_answer_says_how_long_the_service_took(client: TestClient) -> None:
    answers = [
        client.get("/health"),
        client.get("/markets", headers=AUTH),
        client.get("/markets"),  # 401
        client.get("/markets/acme/IT/recommendations", headers=AUTH),  # 404
        client.post("/markets/acme/DE/optimize", json={"budget": 5}, headers=AUTH),  # 422
    ]
    assert [a.status_code for a in answers] == [200, 200, 401, 404, 422]
    for answer in answers:
        header = answer.headers["server-timing"]
        assert re.fullmatch(r"app;dur=\d+\.\d{2}", header), header
        assert 0 <= server_duration_ms(header) < 60_000
    assert server_duration_ms("db;dur=1.5, app;dur=3.25") == 3.25 and server_duration_ms(None) is None


def recommendation_rows(brand: str, market: str, run_date: dt.date) -> pd.DataFrame:
    channels = ["search", "tv"]
    return pd.DataFrame(
        {
            "run_date": [run_date] * 2,
            "brand": brand,
            "market": market,
            "channel": channels,
            "status": "success",
            "recommended_spend": [100.0, 200.0],
        }
    )


def test_a_read_is_answered_from_memory_until_the_lake_is_due_for_a_look(lake: Path, service) -> None:
    write_table(lake, BUDGET_RECOMMENDATIONS, recommendation_rows("acme", "DE", dt.date(2024, 6, 3)))
    slow = RecommendationService(LakeReader(lake, refresh_s=3600), service.champions)
    assert slow.lake.fresh_version(BUDGET_RECOMMENDATIONS) is STALE  # never read: due for a look
    assert slow.cached_recommendations_json("acme", "DE") is None
    body = slow.recommendations_json("acme", "DE")
    assert slow.lake.fresh_version(BUDGET_RECOMMENDATIONS) == 0
    assert slow.cached_recommendations_json("ACME", "de") == body  # normalised names, the same bytes
    assert slow.cached_recommendations_json("acme", "DE", dt.date(2024, 6, 3)) is None  # another key: not built
    with pytest.raises(UnknownMarketError, match="acme/IT"):
        slow.cached_recommendations_json("acme", "IT")
    with pytest.raises(InvalidRequestError, match="not a valid name"):
        slow.cached_recommendations_json("ac.me", "DE")
    write_table(lake, BUDGET_RECOMMENDATIONS, recommendation_rows("acme", "DE", dt.date(2024, 6, 10)))
    assert slow.cached_recommendations_json("acme", "DE") == body  # within refresh_s: the version it read
    service.recommendations_json("acme", "DE")  # refresh_s=0: always due for a look, so always the lake's rows
    assert service.lake.fresh_version(BUDGET_RECOMMENDATIONS) is STALE
    assert service.cached_recommendations_json("acme", "DE") is None
    with TestClient(create_app(slow, frozenset({TOKEN}), warm=False)) as client:
        answer = client.get("/markets/acme/DE/recommendations", headers=AUTH)
        assert answer.status_code == 200 and answer.content == body
        assert answer.json()["run_dates"] == ["2024-06-03"]
    with TestClient(create_app(service, frozenset({TOKEN}), warm=False)) as client:
        assert client.get("/markets/acme/DE/recommendations", headers=AUTH).json()["run_dates"] == [
            "2024-06-10",
            "2024-06-03",
        ]
