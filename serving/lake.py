"""Delta tables read without Spark (the ``deltalake`` package), found through the table catalogue.

A service answers many reads between two weekly writes, so each table is kept in memory as pandas at
the Delta version it was read, and read again only when a newer version has been committed. The log is
looked at most once per ``refresh_s`` per table, which keeps a read in memory; a write is seen within
that time. ``fresh_version`` answers from memory alone (no log, no lock), so that an event loop can serve
a read itself while the table needs no look, and hand it to a thread when it does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pandas as pd
from deltalake import DeltaTable

from pipelines.tables import Table


class Stale(Enum):
    """A table due for a look at its Delta log (``LakeReader.fresh_version``)."""

    STALE = "stale"


STALE = Stale.STALE


@dataclass
class _Snapshot:
    table: DeltaTable | None  # None while the table does not exist yet
    version: int | None
    frame: pd.DataFrame
    checked_at: float


class LakeReader:
    """The lake's tables as pandas, cached per table at its Delta version (thread-safe)."""

    def __init__(self, root: str | Path, refresh_s: float = 1.0) -> None:
        self.root, self.refresh_s = Path(root), refresh_s
        self._snapshots: dict[str, _Snapshot] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def read(self, table: Table) -> pd.DataFrame:
        """The table's rows (shared: do not modify); an empty frame with its columns when it is not there yet."""
        with self._guard:
            lock = self._locks.setdefault(table.qualified_name, threading.Lock())
        with lock:
            snapshot = self._snapshots.get(table.qualified_name)
            now = time.monotonic()
            if snapshot is None or now - snapshot.checked_at >= self.refresh_s:
                snapshot = self._refresh(table, snapshot, now)
                self._snapshots[table.qualified_name] = snapshot
            return snapshot.frame

    def version(self, table: Table) -> int | None:
        """The Delta version the cached rows were read at (None: the table does not exist)."""
        self.read(table)
        return self._snapshots[table.qualified_name].version

    def fresh_version(self, table: Table) -> int | Stale | None:
        """``version``, if the log was looked at within ``refresh_s``; ``STALE`` when it is due for a look (or the
        table was never read). Never touches the log or waits for a lock: an event loop may call it."""
        snapshot = self._snapshots.get(table.qualified_name)
        if snapshot is None or time.monotonic() - snapshot.checked_at >= self.refresh_s:
            return STALE
        return snapshot.version

    def _refresh(self, table: Table, snapshot: _Snapshot | None, now: float) -> _Snapshot:
        path = table.path(self.root)
        if snapshot is None or snapshot.table is None:
            if not DeltaTable.is_deltatable(path):
                columns = table.columns if table.schema is not None else []
                return _Snapshot(None, None, pd.DataFrame(columns=columns), now)
            delta = DeltaTable(path)
        else:
            delta = snapshot.table
            delta.update_incremental()
        version = delta.version()
        if snapshot is not None and snapshot.version == version:
            return _Snapshot(delta, version, snapshot.frame, now)
        return _Snapshot(delta, version, delta.to_pandas(), now)
