"""One writing run per lake: a second run waits, then exits naming the holder; a crash releases the lock."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipelines.lock import LakeBusyError, is_lockable, lake_lock

HOLD = """
import sys, time
from pipelines.lock import lake_lock
with lake_lock(sys.argv[1], "mmm run (test holder)"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(lake: Path, seconds: float) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(lake), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_run_waits_then_names_the_holder(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    holder = _holder(lake, 30)
    try:
        start = time.perf_counter()
        busy = pytest.raises(LakeBusyError, match=r"in use by `mmm run \(test holder\)` \(pid \d+")
        with busy, lake_lock(lake, "second", wait_s=0.5):
            pass
        assert 0.5 <= time.perf_counter() - start < 5
    finally:
        holder.kill()  # a crash: the OS releases the lock, nothing to clear by hand
        holder.wait()
    with lake_lock(lake, "after the crash", wait_s=5):
        assert "after the crash" in (lake / ".mmm.lock.holder").read_text()


def test_the_lock_is_reentrant_across_a_flow_and_its_task_threads(tmp_path: Path) -> None:
    lake, inner = tmp_path / "lake", []
    with lake_lock(lake, "flow", wait_s=0):

        def task() -> None:
            with lake_lock(lake, "step", wait_s=0):
                inner.append(True)

        thread = threading.Thread(target=task)
        thread.start()
        thread.join(timeout=10)
    assert inner == [True]


def test_volumes_and_object_stores_are_left_to_the_scheduler() -> None:
    assert is_lockable("outputs/lake") and is_lockable("/mnt/shared/lake")
    assert not any(is_lockable(p) for p in ("/Volumes/c/s/lake", "dbfs:/lake", "s3://bucket/lake", "/dbfs/lake"))
