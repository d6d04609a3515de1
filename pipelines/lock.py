"""One run at a time per lake: a file lock beside the lake's tables.

Two runs on one lake at once race: one fails with Delta's ``ConcurrentAppendException``, the other
ingests a new file twice. Every step that writes takes ``lake_lock`` for its lake. The lock is a
``filelock`` (an OS lock on ``<lake>/.mmm.lock``, released when the process ends, even by a crash,
so it never needs clearing by hand); ``<lake>/.mmm.lock.holder`` says which process holds it and
since when, for the message the waiting run prints. The lock is re-entrant within a process (the
weekly flow holds it while its steps take it again).

Local and shared-disk lakes only: object stores and Unity Catalog volumes do not honour OS locks.
There the scheduler serialises runs (the Databricks job has ``max_concurrent_runs: 1``), and a lake
path under ``/Volumes/``, ``dbfs:`` or another URL scheme is not locked here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_FILE, HOLDER_FILE = ".mmm.lock", ".mmm.lock.holder"
_LOCKS: dict[str, FileLock] = {}  # one per lake and process: nested takes re-enter it


class LakeBusyError(RuntimeError):
    """Another run holds the lake; the message says which process, since when, and what it runs."""


def is_lockable(lake: str | Path) -> bool:
    """True for a lake on a local or shared POSIX disk (not a volume, DBFS or an object store)."""
    text = str(lake)
    return "://" not in text and not text.startswith(("/Volumes/", "dbfs:", "/dbfs/"))


@contextmanager
def lake_lock(lake: str | Path, what: str, wait_s: float = 600) -> Iterator[None]:
    """Hold the lake's lock for the block; wait up to ``wait_s`` seconds, then raise ``LakeBusyError``."""
    if not is_lockable(lake):
        yield
        return
    folder = Path(lake).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    lock = _LOCKS.setdefault(str(folder), FileLock(folder / LOCK_FILE, thread_local=False))  # flow and tasks share it
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        raise LakeBusyError(
            f"the lake {folder} is in use by {_holder(folder)}; waited {wait_s:.0f} s. "
            "Run again when it has finished (or raise lock_wait_s in the platform file)."
        ) from None
    try:
        if lock.lock_counter == 1:
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "what": what, "since": _now()}
            (folder / HOLDER_FILE).write_text(json.dumps(holder))
        yield
    finally:
        lock.release()


def _holder(folder: Path) -> str:
    try:
        holder = json.loads((folder / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        return "another process"
    return f"`{holder['what']}` (pid {holder['pid']} on {holder['host']}, since {holder['since']})"


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
