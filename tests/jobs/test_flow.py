"""The weekly flow's orchestration on a real (temporary) Prefect server: deployment, retries, failures.

The step bodies here are stand-ins that fail on purpose, built with the flow's own step decorator, so
what is tested is Prefect's retry and failure handling around them, not the steps' work (the steps
themselves are tested in tests/pipelines and tests/monitoring, and end to end by ``mmm run --demo``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import Counter

import pytest
from prefect.blocks.abstract import NotificationBlock
from prefect.client.orchestration import get_client
from prefect.testing.utilities import prefect_test_harness

from jobs import flow
from jobs.context import StepContext
from jobs.retrain import local_deployment


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=120):
        yield


REAL_RETRIES = {task.step_name: task.retries for task in flow.STEP_TASKS}


def stand_in_steps(monkeypatch: pytest.MonkeyPatch, failures: dict[str, int]) -> Counter:
    """Replace the flow's steps by ones that fail ``failures[name]`` times before succeeding (same retries)."""
    monkeypatch.setattr(flow, "RETRY_DELAYS", [0, 0])
    calls: Counter = Counter()
    steps = []
    for name, retries in REAL_RETRIES.items():

        def body(context, summary, name=name):
            calls[name] += 1
            if calls[name] <= failures.get(name, 0):
                raise ConnectionError(f"{name}: store unavailable (attempt {calls[name]})")
            summary.seconds[name] = 0.0

        steps.append(flow._step(name, retries)(body))
    monkeypatch.setattr(flow, "STEP_TASKS", tuple(steps))
    return calls


def test_the_deployment_is_registered_with_its_weekly_cron_and_timezone() -> None:
    deployment_id = local_deployment().apply()

    async def read():
        async with get_client() as client:
            return await client.read_deployment(deployment_id)

    stored = asyncio.run(read())
    assert stored.name == "weekly-retrain"
    assert stored.entrypoint.endswith("flow.py:weekly_retrain")
    [schedule] = stored.schedules
    assert schedule.schedule.cron == "0 6 * * 1" and schedule.schedule.timezone == "Europe/London"
    assert stored.parameters["environment"] == "local"


def test_the_real_steps_retry_where_failures_can_be_transient() -> None:
    assert list(REAL_RETRIES) == list(flow.STEPS)
    assert all(REAL_RETRIES[step] >= 1 for step in flow.STEPS)


def test_a_step_that_fails_twice_then_succeeds_is_retried_and_the_flow_completes(monkeypatch) -> None:
    calls = stand_in_steps(monkeypatch, {"recommend": 2})
    summary = flow.weekly_retrain(as_of="2026-01-05")
    assert calls["recommend"] == 3  # two failures, then the retry that succeeds
    assert set(summary.seconds) == set(flow.STEPS)  # every step ran to the end


def test_a_step_that_keeps_failing_fails_the_flow_and_names_the_step(monkeypatch) -> None:
    calls = stand_in_steps(monkeypatch, {"promote": 99})
    with pytest.raises(flow.StepFailedError, match="step 'promote' failed") as failure:
        flow.weekly_retrain(as_of="2026-01-05")
    assert failure.value.step == "promote"
    assert calls["promote"] == 1 + REAL_RETRIES["promote"]
    assert calls["recommend"] == 0  # nothing after the failed step ran


def test_unknown_brands_are_an_error_not_an_empty_run() -> None:
    with pytest.raises(ValueError, match="unknown brands"):
        StepContext.for_run("2026-01-05", ["no_such_brand"], "local", None)


def latest_artifact(key: str):  # -> prefect Artifact
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))

    return max(asyncio.run(read()), key=lambda artifact: artifact.created)


def test_the_flow_publishes_its_summary_and_recommendations_as_artifacts(monkeypatch) -> None:
    import pandas as pd

    stand_in_steps(monkeypatch, {})
    rows = pd.DataFrame(
        {"brand": ["acme"], "market": ["DE"], "channel": ["tv"], "status": ["success"], "current_spend": [10.0]}
        | {"recommended_spend": [12.0], "change_pct": [20.0], "expected_uplift": [float("nan")], "run_date": ["x"]}
    )
    monkeypatch.setattr(flow, "summary_markdown", lambda summary: "# stand-in summary")
    original = flow.publish_artifacts

    def with_rows(summary):
        summary.recommendations, summary.trained = rows, ["acme/DE"]
        original(summary)

    monkeypatch.setattr(flow, "publish_artifacts", with_rows)
    flow.weekly_retrain(as_of="2026-01-05")
    summary = latest_artifact("weekly-retrain-summary")
    assert summary.type == "markdown" and summary.data == "# stand-in summary"
    table = latest_artifact("budget-recommendations")
    assert table.type == "table"
    [row] = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert row["channel"] == "tv" and row["recommended_spend"] == 12.0 and row["expected_uplift"] is None
    assert "run_date" not in row  # only the columns chosen for reading


def test_the_summary_markdown_names_what_happened() -> None:
    summary = flow.RetrainSummary(as_of=dt.date(2026, 1, 5), training_run_id="abc", trained=["acme/DE"])
    summary.failed = {"acme/FR": "gate: rhat"}
    text = flow.summary_markdown(summary)
    assert "# Weekly run for 2026-01-05" in text and "`abc`" in text and "**acme/FR**: gate: rhat" in text


class RecordingNotification(NotificationBlock):
    """A notification block that keeps its messages (a stand-in for Slack, e-mail...)."""

    _block_type_name = "MMM Test Recording Notification"

    def notify(self, body: str, subject: str | None = None) -> None:
        SENT.append((subject, body))


SENT: list[tuple[str | None, str]] = []


def test_a_failed_step_notifies_the_configured_block(monkeypatch, tmp_path) -> None:
    RecordingNotification().save("weekly-failures", overwrite=True)
    platform = tmp_path / "platform.yaml"
    block = "mmm-test-recording-notification/weekly-failures"
    platform.write_text(f"landing: landing\nlake: lake\nprefect: {{failure_notification: {block}}}\n")
    stand_in_steps(monkeypatch, {"train": 99})
    SENT.clear()
    with pytest.raises(flow.StepFailedError):
        flow.weekly_retrain(as_of="2026-01-05", platform_file=str(platform))
    [(subject, body)] = SENT
    assert "2026-01-05 failed" in subject and "step 'train' failed" in body
    # Unset: no message. A block that cannot be loaded: logged, and the step's failure still raised.
    for settings in ("", "prefect: {failure_notification: no-such-type/none}\n"):
        platform.write_text("landing: landing\nlake: lake\n" + settings)
        with pytest.raises(flow.StepFailedError):
            flow.weekly_retrain(as_of="2026-01-05", platform_file=str(platform))
    assert len(SENT) == 1
