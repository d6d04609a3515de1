"""Fixtures of the service tests: a small lake written with ``deltalake`` (no Spark) and an empty MLflow store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from deltalake import write_deltalake

from pipelines.registry.store import RegistryStore
from pipelines.tables import MARKET_STATUS, MODEL_RUNS
from serving.champions import ChampionCache
from serving.lake import LakeReader
from serving.service import RecommendationService

TOKEN = "test-token-0123456789abcdef"


def write_table(root: Path, table, rows: pd.DataFrame, mode: str = "append") -> None:
    """Rows into a lake table at its catalogue path, as ``deltalake`` writes them."""
    write_deltalake(table.path(root), rows, mode=mode)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """acme/DE (included, never trained) and acme/FR (whose training failed), and no champions at all."""
    root = tmp_path / "lake"
    status = pd.DataFrame(
        {
            "brand": ["acme", "acme"],
            "market": ["DE", "FR"],
            "status": "included",
            "reason": "",
            "data_review": ["", "zero_weeks: tv has no spend in 70% of weeks"],
            "data_warnings": [0, 1],
        }
    )
    write_table(root, MARKET_STATUS, status)
    runs = pd.DataFrame(
        {
            "training_run_id": ["r1"],
            "run_date": [dt.date(2024, 6, 3)],
            "brand": ["acme"],
            "market": ["FR"],
            "status": ["failed"],
            "error": ["DataError: acme/FR: the target is constant"],
            "model_version": [None],
            "recorded_at": [pd.Timestamp("2024-06-03 10:00")],
        }
    )
    write_table(root, MODEL_RUNS, runs.astype({"model_version": "string"}))
    return root


@pytest.fixture(scope="session")
def empty_registry(tmp_path_factory: pytest.TempPathFactory) -> RegistryStore:
    """An MLflow store with no models, created once (its schema migrations take seconds)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('registry')}/mlflow.db"
    return RegistryStore(uri, uri)


@pytest.fixture
def service(lake: Path, empty_registry: RegistryStore) -> RecommendationService:
    champions = ChampionCache(empty_registry, alias="champion", prefix="mmm", max_draws=200, alias_ttl_s=0)
    return RecommendationService(LakeReader(lake, refresh_s=0), champions)
