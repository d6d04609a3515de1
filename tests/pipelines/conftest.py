"""One local Spark session with Delta for all pipeline tests (starting a JVM costs seconds)."""

from __future__ import annotations

import pytest

from pipelines.spark import get_spark


@pytest.fixture(scope="session")
def spark():
    session = get_spark("tests", master="local[2]")
    yield session
    session.stop()
