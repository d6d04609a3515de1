"""The Spark session of the pipeline tests, for the monitoring integration test."""

from tests.pipelines.conftest import spark  # noqa: F401  (a pytest fixture, used by name)
