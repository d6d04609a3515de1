"""Ingest: raw landing files -> bronze Delta tables (append-only), with file-level quarantine.

Every row keeps its raw values as strings, plus the source file, the file's content hash, the ingest
time and the batch id. Typing and record-level checks happen in silver.

Accepted: a CSV file (UTF-8, with or without a byte-order mark, a header row); a Parquet file; a
Spark-style Parquet folder (``name.parquet/`` with part files, read as one file and hashed over its
data files). Parquet ``date`` columns, and ``timestamp`` columns at midnight (nanosecond ones too, as
pandas writes them), become ``yyyy-MM-dd`` strings; every other value is cast to a string. Each source
has a declared column set: its required columns, ``impressions`` for spend, the brands' measures for
sales, and the ``extra_columns`` that brands declare (passed in as ``extra_columns``).

Quarantined whole, one ``quality.quarantine`` row (check ``parse``) with the reason: a file that is not
UTF-8 (or ends inside a character), not Parquet, of another type, or a folder that is not a Parquet
folder; an empty file or a header row over 128 KB; a missing required column; a column outside the
declared set; a sales file without any of the brands' measures; a column name that Delta refuses (with a
space, a tab, a newline or one of ``,;{}()=``) or that is empty; a duplicate column (names compared
case-insensitively, as Spark does); a column named like a provenance column; a CSV record with more or
fewer fields than the header (an unquoted comma, a line break inside a field); and a file that fails in
any other way while read or written. The other files flow on.

A file whose content hash is already in bronze is skipped, and so is one whose hash is in quarantine
(the row's ``record`` is ``{"content_hash": ...}``): a rerun neither re-ingests nor re-refuses a file.
To retry a quarantined file, change it (a new hash) or delete its quarantine row.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, StringType, StructField, StructType, TimestampNTZType, TimestampType

from pipelines.spark import sql_conf
from pipelines.tables import BRONZE, QUARANTINE, Lake, Table, write_quarantine

REQUIRED_COLUMNS = {
    "spend": ["date", "brand", "market", "channel", "campaign", "spend"],
    "sales": ["date", "brand", "market"],
    "controls": ["date", "brand", "market", "control", "value"],
    "lift_tests": ["brand", "market", "channel", "start", "end", "spend_delta", "lift", "lift_se"],
}
OPTIONAL_COLUMNS = {"spend": ["impressions"]}  # declared beyond the required; sales measures come from the brands
PROVENANCE_COLUMNS = ("_source_file", "_content_hash", "_ingest_time", "_batch_id")
DELTA_FORBIDDEN = " ,;{}()\n\t="  # characters Delta refuses in a column name (without column mapping)
MAX_HEADER_CHARS = 128 * 1024
NANOS_PER_DAY = 86_400 * 10**9
FILE_CHECK = "parse"  # the quarantine check of a file refused whole
# a record refused by the FAILFAST reader, as the JVM error's cause chain names it: as written, or as parsed
MALFORMED_CSV = (
    re.compile(r"Malformed CSV record: (.*?)(?: SQLSTATE|\n|$)"),
    re.compile(r"detected in record parsing: (\[.*?\])\."),
)
READERS: dict[str, Callable[[SparkSession, str, tuple[str, ...]], DataFrame]] = {
    # A CSV file is read as strings under the names of its checked header row, which Spark skips: no job to
    # read the header again (0.24 s a file). FAILFAST: a record with more or fewer fields than the header (an
    # unquoted comma, a line break inside a field) fails the file; Spark's default drops extra fields
    # silently (``1,000.50`` would be read as 1).
    ".csv": lambda spark, path, header: spark.read.csv(
        path, schema=StructType([StructField(c, StringType()) for c in header]), header=True, mode="FAILFAST"
    ),
    ".parquet": lambda spark, path, header: spark.read.parquet(path),
}


@dataclass
class IngestReport:
    """What one ingest of one source did."""

    source: str
    files_ingested: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)  # already in bronze (same content hash)
    files_quarantined: dict[str, str] = field(default_factory=dict)  # file -> reason
    files_quarantined_before: list[str] = field(default_factory=list)  # same content hash already in quarantine
    rows_in: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0

    def add_ingested(self, files: list[str], rows: int) -> None:
        """Files appended to bronze, with the rows their append wrote."""
        self.files_ingested += files
        self.rows_in += rows
        self.rows_written += rows


class LandingFileError(ValueError):
    """A landing file that cannot be ingested; the message is its quarantine reason."""


def scan_file(path: Path) -> tuple[str, str | None]:
    """The file's content hash, and why it cannot be ingested (None if it is UTF-8 text or Parquet).

    One chunked pass: a large file is never held in memory, and a binary file posing as CSV (or a CSV
    cut inside a character) fails here with the decoder's reason rather than later inside Spark. A
    folder is hashed by ``scan_folder``.
    """
    if path.is_dir():
        return scan_folder(path)
    digest, decoder, problem = hashlib.sha256(), codecs.getincrementaldecoder("utf-8")(), None
    offset, text = 0, path.suffix == ".csv"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            if problem is None and text:
                problem = _undecodable(decoder, chunk, offset)
            offset += len(chunk)
    if problem is None and text:
        problem = _undecodable(decoder, b"", offset, final=True)
    return digest.hexdigest(), problem


def scan_folder(path: Path) -> tuple[str, str | None]:
    """A folder's hash, and why it cannot be ingested (None for a Spark-style Parquet folder).

    A ``<name>.parquet/`` folder is one Parquet file: its hash is over its data files (names starting
    with ``_`` or ``.``, such as ``_SUCCESS`` and ``.crc`` files, are not data, as Spark reads it), so a
    rewrite with new part names but the same content is the same file. Any other folder is refused,
    hashed over its listing (names and sizes).
    """
    files = sorted(p for p in path.rglob("*") if p.is_file())
    if path.suffix != ".parquet":
        listing = "\n".join(f"{p.relative_to(path)}:{p.stat().st_size}" for p in files)
        reason = "a folder, not a file; landing files are .csv or .parquet files, or a Parquet folder <name>.parquet/"
        return hashlib.sha256(listing.encode()).hexdigest(), reason
    parts = [p for p in files if not any(n.startswith(("_", ".")) for n in p.relative_to(path).parts)]
    digest = hashlib.sha256(b"parquet folder")
    for token in sorted(f"{p.relative_to(path).parent}/{_file_hash(p)}" for p in parts):
        digest.update(token.encode())
    return digest.hexdigest(), None if parts else "a Parquet folder without data files"


def read_header(path: Path) -> list[str]:
    """The column names of a landing file; ``LandingFileError`` when they cannot be read.

    A CSV header is read with Python's csv module from at most ``MAX_HEADER_CHARS`` characters (a byte-
    order mark removed), so a huge first line fails here, not in the csv module or Spark.
    """
    if path.suffix == ".parquet":
        return list(_parquet_schema(path).names)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        try:
            return next(csv.reader(_bounded_lines(handle, MAX_HEADER_CHARS)), [])
        except csv.Error as exc:
            raise LandingFileError(f"header row is not valid CSV: {exc}") from exc


def column_problems(
    header: list[str], source: str, extra_columns: Iterable[str] = (), measures: Iterable[str] = ()
) -> str | None:
    """Why a file with these columns cannot go to bronze ``source`` (all reasons, joined), or None.

    ``measures`` (sales): the brands' measure columns, declared columns of which a file needs at least one.
    """
    if not header:
        return "empty file: no header row"
    required, measures = REQUIRED_COLUMNS[source], list(measures)
    declared = list(dict.fromkeys([*required, *OPTIONAL_COLUMNS.get(source, []), *measures, *extra_columns]))
    problems = []
    missing = [c for c in required if c not in header]
    if missing:
        problems.append(f"missing columns {missing}; the file has {_names(header)}")
    if measures and not set(measures) & set(header):
        problems.append(f"no measure column: {source} files need at least one of {measures}")
    unnamed = [i + 1 for i, c in enumerate(header) if c == ""]
    if unnamed:
        problems.append(f"columns without a name at positions {unnamed}")
    refused = [c for c in header if set(c) & set(DELTA_FORBIDDEN)]
    if refused:
        rule = "no space, tab, newline or any of ',;{}()='"
        problems.append(f"column names that Delta refuses ({rule}): {_names(refused)}")
    seen: dict[str, str] = {}
    for column in dict.fromkeys(c for c in header if c != ""):
        first = seen.setdefault(column.lower(), column)
        if first != column:
            problems.append(f"duplicate column {column} (same as {first}: column names are case-insensitive)")
    problems += [f"duplicate column {c}" for c in dict.fromkeys(header) if c != "" and header.count(c) > 1]
    clashes = [c for c in header if c.lower() in PROVENANCE_COLUMNS]
    if clashes:
        problems.append(f"columns {clashes} clash with the provenance columns {list(PROVENANCE_COLUMNS)}")
    unexpected = [c for c in dict.fromkeys(header) if c not in declared and c not in clashes and c != ""]
    if unexpected:
        problems.append(
            f"unexpected columns {_names(unexpected)}; {source} files have {declared} "
            "(a brand keeps more through extra_columns in its config)"
        )
    return "; ".join(problems) or None


def ingest_source(
    spark: SparkSession,
    root: Lake | str | Path,
    landing: str | Path,
    source: str,
    batch_id: str | None = None,
    extra_columns: Iterable[str] = (),
    measures: Iterable[str] = (),
) -> IngestReport:
    """Append the new files of ``landing/<source>/`` to bronze; quarantine the others whole, with the reason.

    ``extra_columns`` are the columns allowed beyond the source's declared ones (the brands'
    ``extra_columns``); ``measures`` are the brands' sales measures, of which a sales file needs at least
    one (a file without any would give silver no records at all). Any failure of one file, whatever its
    cause, quarantines that file and the others flow on.
    """
    if source not in REQUIRED_COLUMNS:
        raise ValueError(f"unknown source {source!r}; choose one of {sorted(REQUIRED_COLUMNS)}")
    batch_id = batch_id or uuid.uuid4().hex[:12]
    extra_columns, measures = list(extra_columns), list(measures)
    report = IngestReport(source=source)
    bronze = BRONZE[source]
    known, refused = _known_hashes(spark, root, bronze), _refused_hashes(spark, root, bronze)
    quarantine_rows = []

    def refuse(path: Path, digest: str | None, problem: str) -> None:
        report.files_quarantined[path.name] = problem
        record = json.dumps({"content_hash": digest})
        quarantine_rows.append((bronze.name, path.name, record, 1, FILE_CHECK, problem, batch_id, _now()))
        if digest is not None:  # None: the file could not even be hashed; it is tried again next run
            refused.add(digest)

    checked: list[_CheckedFile] = []
    copies: list[tuple[str, str]] = []  # (file, hash) of a file whose content another file of this run has
    folder = Path(landing) / source
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        digest = None
        try:
            digest, problem = scan_file(path)
            if digest in known or digest in refused:
                (report.files_skipped if digest in known else report.files_quarantined_before).append(path.name)
                continue
            if any(digest == f.digest for f in checked):
                copies.append((path.name, digest))
                continue
            if problem is None and path.suffix not in READERS:
                problem = f"unsupported file type {path.suffix or '<none>'!r}; landing files are .csv or .parquet"
            if problem is None:
                header = read_header(path)
                problem = column_problems(header, source, extra_columns, measures)
            if problem is None:
                checked.append(_CheckedFile(path, tuple(header), digest, _nanosecond_timestamps(path)))
        except Exception as exc:  # one file's failure quarantines that file, never the run
            problem = _describe_failure(exc)
        if problem is not None:
            refuse(path, digest, problem)
    for file, problem in _append_files(spark, root, bronze, checked, batch_id, report).items():
        refuse(file.path, file.digest, problem)
    for name, digest in copies:  # after the first copy is in bronze, or refused
        (report.files_quarantined_before if digest in refused else report.files_skipped).append(name)
    if quarantine_rows:
        write_quarantine(spark, root, spark.createDataFrame(quarantine_rows, QUARANTINE.schema))
        report.rows_quarantined += len(quarantine_rows)
    return report


@dataclass(frozen=True)
class _CheckedFile:
    """A landing file that passed the file checks: its path, header, content hash and nanosecond columns."""

    path: Path
    header: tuple[str, ...]
    digest: str
    nanos: frozenset[str]  # nanosecond timestamp columns of a Parquet file, read as longs


def _append_files(
    spark: SparkSession,
    root: Lake | str | Path,
    bronze: Table,
    files: list[_CheckedFile],
    batch_id: str,
    report: IngestReport,
) -> dict[_CheckedFile, str]:
    """Append checked files to bronze, adding them to ``report``; returns the files refused, with the reason.

    The files go in one Delta append (one job, one commit): a job and commit per file was most of the
    ingest of many files (69 files of 20.7M rows: 113.5 s file by file, 58.0 s in one append per source,
    bronze statistics off too). If that append fails (a malformed record in one file, with
    the FAILFAST reader), nothing was committed, and each file is appended alone, so that only the bad one
    is refused. A Parquet file with nanosecond timestamps is always read alone: it needs a reader setting.
    """
    refused: dict[_CheckedFile, str] = {}
    together, alone = [], []
    for file in files:
        (alone if file.nanos else together).append(file)
    if len(together) > 1:
        planned, frames = [], []
        for file in together:
            try:
                frames.append(_bronze_frame(spark, file, batch_id))
                planned.append(file)
            except Exception as exc:  # refused at planning time, before any record is read
                refused[file] = _describe_failure(exc)
        together = []
        if frames:
            try:
                bronze.append(functools.reduce(_union, frames), root, files_note(f.path.name for f in planned))
            except Exception:  # nothing was committed: a bad record somewhere, found by appending file by file
                together = planned
            else:
                report.add_ingested([f.path.name for f in planned], _rows_written(spark, root, bronze))
    return refused | _append_each(spark, root, bronze, together + alone, batch_id, report)


def _append_each(
    spark: SparkSession,
    root: Lake | str | Path,
    bronze: Table,
    files: list[_CheckedFile],
    batch_id: str,
    report: IngestReport,
) -> dict[_CheckedFile, str]:
    """Append each file alone (a commit each), adding it to ``report``; returns the files refused, with the reason."""
    refused = {}
    for file in files:
        try:
            with sql_conf(spark, "spark.sql.legacy.parquet.nanosAsLong", "true") if file.nanos else nullcontext():
                bronze.append(_bronze_frame(spark, file, batch_id), root, files_note([file.path.name]))
            report.add_ingested([file.path.name], _rows_written(spark, root, bronze))
        except Exception as exc:  # one file's failure quarantines that file, never the run
            refused[file] = _describe_failure(exc)
    return refused


def files_note(names: Iterable[str]) -> str:
    """The note an append keeps in its bronze commit: the files it added, so that silver finds what is new
    from the table's history, without reading the rows."""
    return json.dumps({"files_appended": sorted(names)})


def appended_files(note: str | None) -> list[str] | None:
    """The files a bronze commit's note names; None for a commit without such a note."""
    try:
        files = json.loads(note or "")["files_appended"]
    except (ValueError, TypeError, KeyError):
        return None
    return [str(name) for name in files] if isinstance(files, list) else None


def _bronze_frame(spark: SparkSession, file: _CheckedFile, batch_id: str) -> DataFrame:
    """One checked file as bronze rows: raw strings plus provenance (its nanosecond timestamp columns are
    read as longs, under ``spark.sql.legacy.parquet.nanosAsLong`` set by the caller)."""
    path, header = file.path, file.header
    frame = READERS[path.suffix](spark, str(path), header)
    if path.suffix == ".parquet" and sorted(c.lower() for c in frame.columns) != sorted(c.lower() for c in header):
        raise LandingFileError(
            f"Spark reads the columns {_names(frame.columns)}, the schema has {_names(list(header))}"
        )
    return frame.select(
        *[_raw_string(f, f.name in file.nanos) for f in frame.schema.fields],  # raw strings; silver types them
        F.lit(path.name).alias("_source_file"),
        F.lit(file.digest).alias("_content_hash"),
        F.lit(_now()).alias("_ingest_time"),
        F.lit(batch_id).alias("_batch_id"),
    )


def _union(left: DataFrame, right: DataFrame) -> DataFrame:
    """Two bronze frames as one, by column name; a column one file lacks is null there (as in its own append)."""
    return left.unionByName(right, allowMissingColumns=True)


def _rows_written(spark: SparkSession, root: Lake | str | Path, bronze: Table) -> int:
    """The rows the last append wrote, from its commit (no second scan)."""
    return int(bronze.latest_commit(spark, root)["operationMetrics"]["numOutputRows"])


def _raw_string(column: StructField, nanos: bool = False) -> Column:
    """A column as raw strings: dates (and timestamps at midnight) as ``yyyy-MM-dd``, as silver parses them.

    ``nanos``: a nanosecond timestamp read as nanoseconds since the epoch (as UTC wall-clock time).
    """
    value = F.col("`" + column.name.replace("`", "``") + "`")
    if nanos:
        midnight = F.pmod(value, F.lit(NANOS_PER_DAY)) == 0
        day = F.date_from_unix_date(F.floor(value / NANOS_PER_DAY).cast("int"))
        clock = F.date_format(F.timestamp_micros(F.floor(value / 1000)), "yyyy-MM-dd HH:mm:ss.SSSSSS")
        text = F.when(midnight, F.date_format(day, "yyyy-MM-dd")).otherwise(clock)
    elif isinstance(column.dataType, DateType):
        text = F.date_format(value, "yyyy-MM-dd")
    elif isinstance(column.dataType, TimestampType | TimestampNTZType):
        midnight = F.date_format(value, "HH:mm:ss.SSSSSS") == "00:00:00.000000"
        text = F.when(midnight, F.date_format(value, "yyyy-MM-dd")).otherwise(value.cast("string"))
    else:
        text = value.cast("string")
    return text.alias(column.name)


def _parquet_schema(path: Path) -> pa.Schema:
    """The Arrow schema of a Parquet file or folder; ``LandingFileError`` when it is not Parquet."""
    try:
        return pq.ParquetDataset(str(path)).schema if path.is_dir() else pq.read_schema(path)
    except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) for non-Parquet bytes
        raise LandingFileError(f"not a Parquet file: {exc}") from exc


def _nanosecond_timestamps(path: Path) -> frozenset[str]:
    """The nanosecond timestamp columns of a Parquet file (Spark cannot read them as timestamps; pandas
    writes them); none for a CSV file."""
    if path.suffix != ".parquet":
        return frozenset()
    return frozenset(f.name for f in _parquet_schema(path) if pa.types.is_timestamp(f.type) and f.type.unit == "ns")


def _undecodable(decoder: codecs.IncrementalDecoder, chunk: bytes, offset: int, final: bool = False) -> str | None:
    """Why ``chunk`` (at byte ``offset`` of the file) is not UTF-8, or None; ``final`` at the end of the file."""
    pending = len(decoder.getstate()[0])  # bytes of a character begun in the previous chunk
    try:
        decoder.decode(chunk, final)
    except UnicodeDecodeError as exc:
        at = offset - pending + exc.start
        if final:
            return f"not a UTF-8 CSV file: it ends inside a character at byte {at} (truncated?)"
        return f"not a UTF-8 CSV file: {exc.reason} at byte {at}"
    return None


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _bounded_lines(handle: TextIO, limit: int) -> Iterator[str]:
    """The handle's lines while at most ``limit`` characters are read; past that, ``LandingFileError``."""
    left = limit
    while line := handle.readline(left + 1):
        left -= len(line)
        if left < 0:
            raise LandingFileError(f"header row longer than {limit // 1024} KB; is this a CSV file with a header?")
        yield line


def _names(columns: list[str], most: int = 20) -> str:
    """Column names for a reason: all of them, or the first ``most`` and how many more."""
    shown = ", ".join(repr(c[:80]) for c in columns[:most])
    return f"[{shown}{f', ... {len(columns) - most} more' if len(columns) > most else ''}]"


def _malformed_csv(exc: Exception) -> str | None:
    """The reason for a CSV file that Spark's FAILFAST reader refused, with the record; None for other errors."""
    found = [m for m in (pattern.search(str(exc)) for pattern in MALFORMED_CSV) if m is not None]
    if not found:
        return None
    record = found[0][1].strip()[:200] if found[0].re is MALFORMED_CSV[0] else f"as parsed {found[0][1][:200]}"
    return (
        "malformed CSV: a record's fields do not match the header row (an unquoted comma or quote, or a line "
        f"break inside a field?): {record}"
    )


def _describe_failure(exc: Exception) -> str:
    """The quarantine reason of a file refused by a check (``LandingFileError``), or that failed while read
    or written."""
    if isinstance(exc, LandingFileError):
        return str(exc)
    return _malformed_csv(exc) or f"could not be ingested: {_describe(exc)}"


def _describe(exc: Exception) -> str:
    """An exception in one line for a quarantine reason (Spark's messages run to a JVM stack trace)."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first[:500]}"


def _known_hashes(spark: SparkSession, root: Lake | str | Path, bronze: Table) -> set[str]:
    if not bronze.exists(spark, root):
        return set()
    return {r[0] for r in bronze.load(spark, root).select("_content_hash").distinct().collect()}


def _refused_hashes(spark: SparkSession, root: Lake | str | Path, bronze: Table) -> set[str]:
    """Content hashes of the files of this source already quarantined whole."""
    if not QUARANTINE.exists(spark, root):
        return set()
    rows = (
        QUARANTINE.load(spark, root)
        .where((F.col("table") == bronze.name) & (F.col("check") == FILE_CHECK))
        .select(F.get_json_object("record", "$.content_hash"))
        .distinct()
        .collect()
    )
    return {r[0] for r in rows if r[0]}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
