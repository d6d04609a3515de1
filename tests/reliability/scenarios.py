"""Bad inputs and faults, built once for the reliability tests and for ``benchmarks/fault_matrix.py``.

- ``FILE_CASES``: one landing file each (bad, or awkward but valid), written by a builder into a source folder;
  the quarantine reason it must get (or None: it is ingested) and the rows it adds to bronze.
- ``build_matrix``: one landing folder with every record-, market- and lift-test-level bad input of the
  matrix beside synthetic markets with known truth; ``Matrix.problem`` says what went wrong with one case
  after the pipeline ran (None when it was handled as expected), ``Matrix.rows_lost`` counts records that
  are neither passed nor quarantined.
- ``CONFIG_CASES``: brand files (and names) that must be refused with a reason naming the problem.
- ``faulty_training``: a training run over 4 markets where one fit process dies and one hangs.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from pipelines.config import BrandConfig, GateSettings, QualityLimits, TrainingSettings
from pipelines.data.run import PipelineReport
from pipelines.data.synthetic_raw import RawDataConfig, RawLanding, brand_configs, generate_raw_landing
from pipelines.tables import BRONZE, LIFT_TESTS, MARKET_STATUS, MODEL_INPUT, QUARANTINE

HEADER = "date,brand,market,channel,campaign,spend"
GOOD = f"{HEADER}\n2024-01-01,acme,DE,tv_linear,c1,10.0\n2024-01-02,acme,DE,tv_linear,c1,11.0\n"
ROW = "2024-02-01,acme,DE,fb_ads,c2,5.0\n"
DAYS = [dt.date(2024, 3, 1), dt.date(2024, 3, 2)]

Builder = Callable[[Path, str], Path]  # (source folder, file stem) -> the file or folder written


def frame(date_column: object) -> pa.Table:
    """Two spend rows whose ``date`` column is ``date_column`` (an Arrow array)."""
    strings = {c: pa.array(v) for c, v in {"brand": ["acme"] * 2, "market": ["DE"] * 2, "channel": ["tv"] * 2}.items()}
    return pa.table({"date": date_column, **strings, "campaign": pa.array(["c3"] * 2), "spend": pa.array([1.0, 2.0])})


def text(content: str | bytes, suffix: str = ".csv") -> Builder:
    def build(folder: Path, stem: str) -> Path:
        path = folder / f"{stem}{suffix}"
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    return build


def parquet(table: pa.Table) -> Builder:
    def build(folder: Path, stem: str) -> Path:
        pq.write_table(table, folder / f"{stem}.parquet")
        return folder / f"{stem}.parquet"

    return build


def spark_folder(with_parts: bool) -> Builder:
    """A Spark-style Parquet folder ``<stem>.parquet/`` (part files and markers, or markers only)."""

    def build(folder: Path, stem: str) -> Path:
        path = folder / f"{stem}.parquet"
        path.mkdir()
        (path / "_SUCCESS").write_bytes(b"")
        if with_parts:
            pq.write_table(frame(pa.array(DAYS)).slice(0, 1), path / "part-00000-abc.snappy.parquet")
            pq.write_table(frame(pa.array(DAYS)).slice(1, 1), path / "part-00001-abc.snappy.parquet")
            (path / "_committed_123").write_text("{}")  # Databricks' commit marker: not data
        return path

    return build


def other_folder(folder: Path, stem: str) -> Path:
    (folder / stem).mkdir()
    (folder / stem / "old.csv").write_text(GOOD)
    return folder / stem


def pandas_parquet(folder: Path, stem: str) -> Path:
    frame(pa.array(DAYS)).to_pandas().assign(date=pd.to_datetime(DAYS)).to_parquet(folder / f"{stem}.parquet")
    return folder / f"{stem}.parquet"


TRUNCATED = (f"{HEADER}\n" + ROW.replace("c2", "caf\u00e9")).encode("utf-8")
TRUNCATED = TRUNCATED[: TRUNCATED.index("\u00e9".encode()) + 1]  # cut inside the two-byte é
FLOAT16 = pa.table(
    {**{c: frame(pa.array(DAYS)).column(c) for c in ("date", "brand", "market", "channel", "campaign")}}
    | {"spend": pa.array([1.0, 2.0], pa.float16())}
)  # a type Spark's Parquet reader refuses: the failure is Spark's, inside the write


@dataclass(frozen=True)
class FileCase:
    """One landing file in ``spend/``: the reason's substrings (None: ingested), the rows it adds to bronze,
    and the ``extra_columns`` a brand declares for it."""

    build: Builder
    reasons: tuple[str, ...] | None
    rows: int
    extra: tuple[str, ...] = ()


FILE_CASES = {
    "delta_refuses_column_name": FileCase(
        text(f"{HEADER},cost (EUR)\n{ROW[:-1]},1\n"), ("Delta refuses", "'cost (EUR)'"), 0, ("cost (EUR)",)
    ),
    "provenance_column": FileCase(text(f"{HEADER},_batch_id\n{ROW[:-1]},x\n"), ("'_batch_id'", "provenance"), 0),
    "provenance_column_other_case": FileCase(text(f"{HEADER},_Source_File\n{ROW[:-1]},x\n"), ("'_Source_File'",), 0),
    "header_over_128kb": FileCase(
        text(f"{HEADER},{'x' * 140_000}\n{ROW[:-1]},1\n"), ("header row longer than 128 KB",), 0
    ),
    "many_columns_over_128kb": FileCase(
        text(HEADER + "".join(f",c{i}" for i in range(30_000)) + "\n"), ("longer than 128 KB",), 0
    ),
    "spark_parquet_folder": FileCase(spark_folder(with_parts=True), None, 2),
    "spark_parquet_folder_empty": FileCase(spark_folder(with_parts=False), ("a Parquet folder without data files",), 0),
    "folder_not_parquet": FileCase(other_folder, ("a folder, not a file",), 0),
    "unexpected_column": FileCase(
        text(f"{HEADER},currency\n{ROW[:-1]},EUR\n"), ("unexpected columns ['currency']",), 0
    ),
    "declared_extra_column": FileCase(text(f"{HEADER},currency\n{ROW[:-1]},EUR\n"), None, 1, ("currency",)),
    "optional_impressions": FileCase(text(f"{HEADER},impressions\n{ROW[:-1]},1000\n"), None, 1),
    "utf8_bom": FileCase(text(f"\ufeff{HEADER}\n{ROW}"), None, 1),
    "parquet_dates": FileCase(parquet(frame(pa.array(DAYS))), None, 2),
    "parquet_midnight_timestamps_us": FileCase(
        parquet(frame(pa.array(pd.to_datetime(DAYS), pa.timestamp("us")))), None, 2
    ),
    "parquet_timestamps_ns_utc": FileCase(
        parquet(frame(pa.array(pd.to_datetime(DAYS), pa.timestamp("ns", "UTC")))), None, 2
    ),
    "pandas_parquet_timestamps": FileCase(pandas_parquet, None, 2),  # pandas writes nanosecond timestamps
    "truncated_utf8": FileCase(text(TRUNCATED), ("not a UTF-8 CSV file", "ends inside a character"), 0),
    "duplicate_header": FileCase(text(f"{HEADER},spend\n{ROW[:-1]},1\n"), ("duplicate column spend",), 0),
    "duplicate_header_other_case": FileCase(
        text(f"{HEADER},Spend\n{ROW[:-1]},1\n"), ("duplicate column Spend",), 0, ("Spend",)
    ),
    "empty_file": FileCase(text(""), ("empty file",), 0),
    "unnamed_column": FileCase(text(f"{HEADER},\n{ROW[:-1]},1\n"), ("without a name at positions [7]",), 0),
    "unquoted_comma_in_a_number": FileCase(  # Spark's default reader took 1,000.50 as 1
        text(f"{HEADER}\n{ROW}2024-02-02,acme,DE,fb_ads,c2,1,000.50\n"),
        ("malformed CSV", "2024-02-02,acme,DE,fb_ads,c2,1"),
        0,
    ),
    "record_with_a_field_missing": FileCase(
        text(f"{HEADER}\n{ROW}2024-02-02,acme,DE,fb_ads,5.0\n"), ("malformed CSV",), 0
    ),
    "line_break_inside_a_field": FileCase(
        text(f'{HEADER}\n2024-02-03,acme,DE,fb_ads,"camp\naign",5.0\n'), ("malformed CSV",), 0
    ),
    "not_csv_at_all": FileCase(text(bytes(range(256)) * 8), ("not a UTF-8 CSV file",), 0),
    "missing_column": FileCase(
        text("date,brand,market,channel,campaign\n2024-02-01,acme,DE,fb_ads,c2\n"), ("missing columns ['spend']",), 0
    ),
    "fake_parquet": FileCase(text(b"PAR1 this is not parquet", ".parquet"), ("not a Parquet file",), 0),
    "spreadsheet": FileCase(text(b"PK\x03\x04 an Excel workbook", ".xlsx"), ("unsupported file type '.xlsx'",), 0),
    "parquet_type_spark_refuses": FileCase(parquet(FLOAT16), ("could not be ingested", "PARQUET_TYPE_ILLEGAL"), 0),
}


# --- the bad-input matrix: one landing, every record-, market- and lift-test-level case ------------------

AS_OF = dt.date(2024, 6, 3)
MATRIX_CONFIG = RawDataConfig(
    markets={"acme": ["DE", "FR", "IT"], "bolt": ["US"]}, weeks=40, campaigns_per_raw_channel=1, lift_tests=True
)
MATRIX_LIMITS = QualityLimits(min_history_weeks=20, max_gap_weeks=2)
CLEAN_MARKETS = (("acme", "FR"), ("bolt", "US"))  # every bad record lands here; they must still match the truth
DAY = "2023-03-07"  # inside every market's weeks
SOURCE_COLUMNS = {
    "spend": ["date", "brand", "market", "channel", "campaign", "spend"],
    "sales": ["date", "brand", "market", "revenue"],
    "controls": ["date", "brand", "market", "control", "value"],
    "lift_tests": ["brand", "market", "channel", "start", "end", "spend_delta", "lift", "lift_se"],
}


@dataclass(frozen=True)
class RecordCase:
    """Bad records in a file of their own: where they go, the check and reason they must get, how many.

    ``records``: rows as tuples of the source's columns (``None`` an empty cell). ``quarantined``: how many
    quarantine rows the file gets under ``check`` (for sales, one per record of a configured measure).
    """

    source: str
    records: tuple[tuple, ...]
    check: str
    reason: str
    quarantined: int = 1

    @property
    def table(self) -> str:
        return BRONZE[self.source].name


def _spend(*rows: tuple) -> tuple[tuple, ...]:
    """Spend rows on acme/FR's ``DAY`` from (market, channel, spend), each on a campaign of its own."""
    return tuple((DAY, "acme", m, ch, f"matrix_{i}", v) for i, (m, ch, v) in enumerate(rows))


def _lift(market: str = "FR", channel: str = "tv", start: str = "2023-05-01", end: str = "2023-05-28", **values):
    numbers = {"spend_delta": "-500", "lift": "-800", "lift_se": "80"} | values
    return (("acme", market, channel, start, end, numbers["spend_delta"], numbers["lift"], numbers["lift_se"]),)


RECORD_CASES = {
    "negative_spend": RecordCase("spend", _spend(("FR", "tv_linear", "-100")), "spend_non_negative", "negative: -100"),
    "nan_spend": RecordCase("spend", _spend(("FR", "tv_linear", "NaN")), "spend_not_null", "not a number: NaN"),
    "text_spend": RecordCase("spend", _spend(("FR", "tv_linear", "12 EUR")), "spend_not_null", "not a number: 12 EUR"),
    "empty_spend": RecordCase("spend", _spend(("FR", "tv_linear", None)), "spend_not_null", "not a number: <empty>"),
    "infinite_spend": RecordCase(
        "spend", _spend(("FR", "tv_linear", "1e400"), ("FR", "fb_ads", "Infinity")), "spend_not_null", "number", 2
    ),
    "duplicate_row": RecordCase(  # on acme/DE (excluded): the copy that passes adds its spend
        "spend", ((DAY, "acme", "DE", "tv_linear", "dup", "5"),) * 2, "unique_key", "duplicate record"
    ),
    "unknown_channel": RecordCase(
        "spend",
        _spend(("FR", "carrier_pigeon", "5")),
        "known_channel",
        "carrier_pigeon is not configured for brand acme",
    ),
    "unparseable_date": RecordCase(
        "spend", (("31/02/2023?", "acme", "FR", "tv_linear", "m", "5"),), "parse_date", "31/02/2023?"
    ),
    "empty_date": RecordCase("spend", ((None, "acme", "FR", "tv_linear", "m", "5"),), "parse_date", "<empty>"),
    "future_date": RecordCase(
        "spend", (("2999-01-01", "acme", "FR", "tv_linear", "m", "5"),), "no_future_dates", "after 2024-06-03"
    ),
    "market_name_with_slash": RecordCase("spend", _spend(("D/E", "tv_linear", "5")), "valid_names", "D/E"),
    "market_name_with_dots": RecordCase("spend", _spend(("../x", "tv_linear", "5")), "valid_names", "../X"),
    "empty_market": RecordCase("spend", _spend((None, "tv_linear", "5")), "names_present", "brand or market is empty"),
    "brand_without_config": RecordCase(
        "spend", ((DAY, "zeta", "FR", "tv_linear", "m", "5"),), "known_channel", "not configured for brand zeta"
    ),
    "negative_sales": RecordCase("sales", ((DAY, "acme", "FR", "-5"),), "value_non_negative", "negative: -5"),
    "sales_of_a_brand_without_config": RecordCase(
        "sales", ((DAY, "zeta", "FR", "5"),), "known_measure", "not configured for brand zeta"
    ),
    "sales_without_a_brand": RecordCase(
        "sales", ((DAY, None, "FR", "5"),), "names_present", "brand or market is empty"
    ),
    "unknown_control": RecordCase(
        "controls", ((DAY, "acme", "FR", "weather", "3"),), "known_control", "weather is not configured for brand acme"
    ),
    "nan_control": RecordCase("controls", ((DAY, "acme", "FR", "price_index", "nan"),), "value_not_null", "nan"),
    "lift_test_bad_date": RecordCase("lift_tests", _lift(start="May 1st"), "parse_dates", "not a yyyy-MM-dd date"),
    "lift_test_ends_before_start": RecordCase(
        "lift_tests", _lift(start="2023-06-01", end="2023-05-01"), "end_after_start", "ends before it starts"
    ),
    "lift_test_missing_number": RecordCase("lift_tests", _lift(lift=""), "numbers_not_null", "missing or not a"),
    "lift_test_infinite_se": RecordCase("lift_tests", _lift(lift_se="inf"), "numbers_not_null", "finite number"),
    "lift_test_se_not_positive": RecordCase("lift_tests", _lift(lift_se="0"), "lift_se_positive", "lift_se must be"),
    "lift_test_unknown_channel": RecordCase(
        "lift_tests", _lift(channel="radio"), "known_channel", "channel is not configured"
    ),
    "lift_test_bad_market_name": RecordCase("lift_tests", _lift(market="F.R"), "valid_names", "not a valid name"),
}
# market-level cases: (brand, market) -> the exclusion check and the start of its reason
MARKET_CASES = {
    "sales_gap": ("acme", "DE", "max_gap_weeks", "3 weeks without sales or a control, more than the limit of 2"),
    "short_history": ("acme", "IT", "min_history", "10 weeks with sales"),
}
SPELLINGS = ("fr", "FR ", " Fr")  # acme/FR spelled three more ways: one market, no rows quarantined
SALES_WITHOUT_MEASURE = "sales_without_a_measure"  # a sales file with none of the brands' measures
# one landing for all: a brand's extra columns would apply to every file, so the case that needs them is left out
MATRIX_FILES = {k: c for k, c in FILE_CASES.items() if c.reasons is not None or not c.extra}
MATRIX_CASES = [*MATRIX_FILES, *RECORD_CASES, *MARKET_CASES, "market_spellings", SALES_WITHOUT_MEASURE]


@dataclass
class Matrix:
    """The matrix's landing folder, brand configs and truth; after a run, the checks of each case."""

    landing: RawLanding
    brands: dict[str, BrandConfig]

    @property
    def folder(self) -> Path:
        return self.landing.folder

    def problem(self, spark, root: Path, case: str) -> str | None:
        """What is wrong with how ``case`` was handled (None: quarantined or accepted as expected)."""
        quarantine = QUARANTINE.read(spark, root)
        if case in MATRIX_FILES:
            return _file_problem(quarantine, BRONZE["spend"].read(spark, root), case, MATRIX_FILES[case])
        if case == SALES_WITHOUT_MEASURE:
            return _file_problem(
                quarantine[quarantine.table == "raw_sales"],
                BRONZE["sales"].read(spark, root),
                case,
                FileCase(text(""), ("no measure column", "['revenue']"), 0),
            )
        if case in RECORD_CASES:
            return _record_problem(quarantine, case, RECORD_CASES[case])
        if case in MARKET_CASES:
            brand, market, check, reason = MARKET_CASES[case]
            status = MARKET_STATUS.read(spark, root).set_index(["brand", "market"])
            found = status.loc[(brand, market)]
            if found.status != "excluded" or found.checks != check or not found.reason.startswith(reason):
                return f"{brand}/{market}: {found.status} {found.checks!r} {found.reason!r}"
            held = quarantine[(quarantine.table == "model_input") & (quarantine.check == check)]
            return None if len(held) else f"no model_input rows of {brand}/{market} quarantined"
        if case == "market_spellings":
            markets = set(MARKET_STATUS.read(spark, root).market)
            spelled = quarantine[quarantine.source_file == "market_spellings.csv"]
            if markets != {"DE", "FR", "IT", "US"} or len(spelled):
                return f"markets {sorted(markets)}, {len(spelled)} spelled rows quarantined"
            return None
        raise KeyError(case)

    def flows_on(self, spark, root: Path) -> str | None:
        """Whether the clean markets reached model_input exactly as simulated (None: they did)."""
        model_input = MODEL_INPUT.read(spark, root)
        included = set(zip(model_input.brand, model_input.market, strict=True))
        if included != set(CLEAN_MARKETS):
            return f"model_input holds {sorted(included)}, not {sorted(CLEAN_MARKETS)}"
        for brand, market in CLEAN_MARKETS:
            rows = model_input[(model_input.brand == brand) & (model_input.market == market)].sort_values("week_start")
            truth = self.landing.weekly[(brand, market)]
            columns = [("target", "y"), *((f"spend_{c}", c) for c in MATRIX_CONFIG.taxonomy)]
            for ours, theirs in columns:
                if len(rows) != len(truth) or not all(map(math.isclose, rows[ours], truth[theirs])):
                    return f"{brand}/{market} {ours} differs from the simulated truth"
        lift = LIFT_TESTS.read(spark, root)
        honest = self.landing.lift_tests
        if len(lift) != len(honest) or set(lift.source_file) != {"acme_lift_tests.csv", "bolt_lift_tests.csv"}:
            return f"{len(lift)} silver lift tests from {sorted(set(lift.source_file))}, expected {len(honest)}"
        return None

    def rows_lost(self, spark, root: Path, report: PipelineReport) -> int:
        """Records neither passed nor quarantined: every landing file is ingested (all its rows in bronze) or
        quarantined whole; every bronze record passes silver or is quarantined; every stage adds up."""
        lost = 0
        quarantine = QUARANTINE.read(spark, root)
        ingested = {r.source: r for r in report.ingest}
        for source in SOURCE_COLUMNS:
            bronze = BRONZE[source].read(spark, root)
            refused = set(
                quarantine[(quarantine.table == BRONZE[source].name) & (quarantine.check == "parse")].source_file
            )
            for path in sorted((self.folder / source).iterdir()):
                in_bronze = int((bronze._source_file == path.name).sum()) if len(bronze) else 0
                if path.name in refused:
                    lost += in_bronze  # a refused file must add nothing
                elif path.name in ingested[source].files_ingested or path.name in ingested[source].files_skipped:
                    lost += abs(landing_rows(path) - in_bronze)
                else:
                    lost += max(landing_rows(path), 1)  # neither ingested nor quarantined: lost whole
        for stage in report.stages:
            lost += abs(stage.rows_in - stage.rows_passed - stage.rows_quarantined)
        stages = {s.table: s for s in report.stages}
        # A run that checked every record accounts for all of bronze and all of the quarantine; a weekly run
        # that re-checked only new files and their weeks accounts for those (its stages add up, above).
        for source, table in (("spend", "weekly_spend"), ("controls", "weekly_controls")):  # one record per row
            if stages[table].every_record:
                lost += abs(BRONZE[source].count(spark, root) - stages[table].rows_in)
        for table, stage in (
            ("raw_spend", "weekly_spend"),
            ("raw_sales", "weekly_sales"),
            ("raw_controls", "weekly_controls"),
            ("lift_tests", "lift_tests"),
            ("model_input", "model_input"),
        ):
            if stages[stage].every_record:
                records = quarantine[(quarantine.table == table) & (quarantine.check != "parse")]
                lost += abs(len(records) - stages[stage].rows_quarantined)
        return lost


def landing_rows(path: Path) -> int:
    """Data rows of a landing file as the csv module or pyarrow read it (a Parquet folder: its parts)."""
    if path.suffix == ".parquet":
        return pq.ParquetDataset(str(path)).read().num_rows
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return max(sum(1 for row in csv.reader(handle) if row) - 1, 0)


def build_matrix(folder: Path) -> Matrix:
    """Synthetic landing (acme DE with a sales gap, IT with a short history, FR and bolt/US clean, honest lift
    tests) plus a file per file case, record case, the spellings of FR and a sales file without a measure."""
    landing = generate_raw_landing(folder, MATRIX_CONFIG, inject=("sales_gap", "short_history"))
    matrix = Matrix(landing, brand_configs(MATRIX_CONFIG, MATRIX_LIMITS))
    for case, spec in MATRIX_FILES.items():
        spec.build(folder / "spend", case)
    for case, spec in RECORD_CASES.items():
        pd.DataFrame(list(spec.records), columns=SOURCE_COLUMNS[spec.source]).to_csv(
            folder / spec.source / f"{case}.csv", index=False
        )
    spellings = [(DAY, "Acme", market, "tv_linear", f"spelling_{i}", 0.0) for i, market in enumerate(SPELLINGS)]
    pd.DataFrame(spellings, columns=SOURCE_COLUMNS["spend"]).to_csv(
        folder / "spend" / "market_spellings.csv", index=False
    )
    (folder / "sales" / f"{SALES_WITHOUT_MEASURE}.csv").write_text(f"date,brand,market\n{DAY},acme,FR\n")
    return matrix


def _file_problem(quarantine: pd.DataFrame, bronze: pd.DataFrame, case: str, spec: FileCase) -> str | None:
    seen = set(quarantine.source_file.dropna()) | set(bronze.get("_source_file", []))
    names = [n for n in seen if Path(n).stem == case]
    if len(names) != 1:
        return f"{case}: found as {names}"
    rows = quarantine[(quarantine.source_file == names[0]) & (quarantine.check == "parse")]
    added = int((bronze._source_file == names[0]).sum()) if len(bronze) else 0
    if spec.reasons is None:
        return None if rows.empty and added == spec.rows else f"{case}: {len(rows)} refusals, {added} rows in bronze"
    if len(rows) != 1 or added:
        return f"{case}: {len(rows)} quarantine rows, {added} rows in bronze"
    reason = rows.iloc[0].reason
    missing = [r for r in spec.reasons if r not in reason]
    return f"{case}: reason {reason!r} lacks {missing}" if missing or "\n" in reason else None


def _record_problem(quarantine: pd.DataFrame, case: str, spec: RecordCase) -> str | None:
    rows = quarantine[(quarantine.source_file == f"{case}.csv") & (quarantine.table == spec.table)]
    matching = rows[(rows.check == spec.check) & rows.reason.str.contains(spec.reason, regex=False)]
    if len(matching) != spec.quarantined or len(rows) != spec.quarantined:
        found = rows[["check", "reason"]].to_dict("records")
        return f"{case}: expected {spec.quarantined} x {spec.check} ({spec.reason!r}), found {found}"
    return None


def sources_missing(folder: Path) -> tuple[Path, dict[str, BrandConfig]]:
    """A landing folder with spend only: no ``controls/`` folder, and a ``sales/`` folder whose one file is refused
    (so neither has a bronze table). Returns the folder and the brand configs."""
    config = RawDataConfig(markets={"acme": ["DE"]}, weeks=30, campaigns_per_raw_channel=1)
    generate_raw_landing(folder, config)
    for source in ("sales", "controls"):
        for path in (folder / source).iterdir():
            path.unlink()
    (folder / "controls").rmdir()
    (folder / "sales" / "acme_batch1.csv").write_text("date,brand\n2023-01-02,acme\n")  # missing columns
    return folder, brand_configs(config, QualityLimits(min_history_weeks=20))


# --- ``mmm pipeline`` in subprocesses: two at once, one killed mid-run --------------------------------------

SMALL = RawDataConfig(markets={"acme": ["DE", "FR"]}, weeks=30, campaigns_per_raw_channel=1)
SMALL_LIMITS = QualityLimits(min_history_weeks=20)


def write_cli_project(folder: Path) -> dict[str, BrandConfig]:
    """``SMALL``'s landing folder, brand files and a ``platform.yaml`` under ``folder``; returns the brands."""
    generate_raw_landing(folder / "landing", SMALL)
    brands = brand_configs(SMALL, SMALL_LIMITS)
    (folder / "brands").mkdir(parents=True)
    for name, brand in brands.items():
        (folder / "brands" / f"{name}.yaml").write_text(yaml.safe_dump(brand.model_dump(mode="json")))
    platform = {"landing": str(folder / "landing"), "brands": str(folder / "brands"), "lock_wait_s": 300}
    (folder / "platform.yaml").write_text(yaml.safe_dump(platform))
    return brands


def pipeline_command(folder: Path, lake: str) -> list[str]:
    """``mmm pipeline`` on ``folder``'s project (``write_cli_project``) and lake ``folder/lake``, on ``local[1]``."""
    options = ["--platform", str(folder / "platform.yaml"), "--lake", str(folder / lake)]
    return [
        str(Path(sys.executable).parent / "mmm"),
        "pipeline",
        *options,
        "--as-of",
        AS_OF.isoformat(),
        "--master",
        "local[1]",
    ]


def kill_pipeline_after(folder: Path, lake: str, prefix: str) -> str | None:
    """Run ``mmm pipeline`` and kill it (SIGKILL, its Spark JVM too) once it prints a line starting with ``prefix``;
    returns that line (None: it ended first)."""
    run = subprocess.Popen(
        pipeline_command(folder, lake),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: the kill takes its Spark JVM along
    )
    killed_at = None
    for line in run.stdout:
        if line.startswith(prefix):
            os.killpg(run.pid, signal.SIGKILL)
            killed_at = line.strip()
            break
    run.communicate()
    return killed_at


def each_file_once(spark, lake: Path, landing: Path) -> bool:
    """Every landing file's rows are in bronze exactly once."""
    for source in ("spend", "sales", "controls"):
        bronze = BRONZE[source].read(spark, lake)
        for path in (landing / source).iterdir():
            if int((bronze._source_file == path.name).sum()) != landing_rows(path):
                return False
    return True


# --- brand files and names that must be refused ----------------------------------------------------------

TAXONOMY = "taxonomy:\n  tv: [tv_linear]\n"
# id -> (brand files written to a folder of their own, the substrings of the refusal)
CONFIG_CASES = {
    "duplicate_yaml_key": ({"acme.yaml": f"brand: acme\n{TAXONOMY}{TAXONOMY}"}, ("duplicate keys ['taxonomy']",)),
    "model_spec_missing": (
        {"acme.yaml": f"brand: acme\n{TAXONOMY}model_spec: models/nowhere.yaml\n"},
        ("model_spec 'models/nowhere.yaml' not found",),
    ),
    "brand_name_with_slash": ({"ab.yaml": f"brand: a/b\n{TAXONOMY}"}, ("brand", "'a/b' is not a valid name")),
    "model_channel_with_space": (
        {"acme.yaml": "brand: acme\ntaxonomy:\n  paid social: [fb]\n"},
        ("model channel 'paid social' is not a valid name",),
    ),
    "raw_channel_twice": (
        {"acme.yaml": "brand: acme\ntaxonomy:\n  tv: [tv_linear]\n  video: [TV_Linear]\n"},
        ("raw channel 'tv_linear' maps to both 'tv' and 'video'",),
    ),
    "target_not_a_measure": ({"acme.yaml": f"brand: acme\ntarget: orders\n{TAXONOMY}"}, ("target 'orders'",)),
    "misspelt_field": ({"acme.yaml": f"brand: acme\n{TAXONOMY}contrls: [price]\n"}, ("contrls", "Extra inputs")),
    "not_yaml": ({"acme.yaml": "brand: acme\ntaxonomy: [unclosed\n"}, ("not valid YAML",)),
    "brand_configured_twice": (
        {"acme.yaml": f"brand: acme\n{TAXONOMY}", "acme_copy.yaml": f"brand: ACME\n{TAXONOMY}"},
        ("brands configured twice", "['acme']"),
    ),
}


def config_refusal(folder: Path, case: str) -> str:
    """Write the case's brand files into ``folder`` and load them; the refusal's message (raises if accepted)."""
    from pipelines.config import ConfigError, load_brands

    files, _ = CONFIG_CASES[case]
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(content)
    try:
        load_brands(folder)
    except ConfigError as exc:
        return str(exc)
    raise AssertionError(f"{case}: the brand files were accepted")


def escaping_brand_refusal(folder: Path) -> str:
    """``generate-raw`` for brand ``../../x``: the refusal's message (raises if a file was written outside)."""
    from pipelines.names import InvalidNameError

    landing = folder / "deep" / "landing"
    try:
        generate_raw_landing(landing, RawDataConfig(markets={"../../x": ["DE"]}, weeks=20, campaigns_per_raw_channel=1))
    except InvalidNameError as exc:
        outside = [p for p in folder.rglob("*x_batch1.csv")]
        if outside:
            raise AssertionError(f"written outside the landing folder: {outside}") from exc
        return str(exc)
    raise AssertionError("brand '../../x' was accepted")


# --- a training run with faults --------------------------------------------------------------------------

FAULTS = "acme/DE=exit,bolt/DE=hang"  # MMM_TEST_FAULT: acme/DE's fit process dies, bolt/DE's hangs
HANG_TIMEOUT_S = 5
# as tests/pipelines/training/test_driver.py: short numpyro chains, a gate loosened to match
TRAINING = TrainingSettings(sampler="numpyro", chains=2, draws=300, tune=300, holdout_weeks=8, target_accept=0.95)
GATE = GateSettings(max_rhat=1.06, min_ess_bulk=100, max_divergences=5)


def faulty_training(
    spark, folder: Path, training: TrainingSettings = TRAINING, gate: GateSettings = GATE, as_of: dt.date = AS_OF
) -> dict:
    """Train 4 markets (78 weeks) with ``FAULTS``; bolt/DE's ``market_timeout_s`` is ``HANG_TIMEOUT_S``.

    Returns the lake ``root``, ``platform``, ``brands``, the ``report``, the ``job`` the workers got and an
    MLflow ``client``.
    """
    from mlflow import MlflowClient

    from pipelines.config import MlflowSettings, PlatformConfig
    from pipelines.data.run import run_pipeline
    from pipelines.training import driver
    from pipelines.training.worker import TEST_FAULT_VARIABLE, fit_group_function

    config = RawDataConfig(markets={"acme": ["DE", "FR"], "bolt": ["DE", "US"]}, weeks=78, campaigns_per_raw_channel=1)
    landing = generate_raw_landing(folder / "landing", config)
    brands = brand_configs(config, QualityLimits(min_history_weeks=52))
    root = folder / "lake"
    run_pipeline(spark, landing.folder, root, brands, as_of, progress=lambda _: None)
    platform = PlatformConfig(
        mlflow=MlflowSettings(
            tracking_uri=f"sqlite:///{folder}/mlflow.db", artifact_location=str(folder / "artifacts")
        ),
        training=training,
        gate=gate,
    )
    jobs = []

    def recording(job):
        jobs.append(job)
        return fit_group_function(job)

    overrides = {"bolt/DE": {"training": {"market_timeout_s": HANG_TIMEOUT_S}}}
    # the session's Python workers started earlier, with the environment of then: the driver carries the
    # variable to them in the TrainJob
    with patch.dict(os.environ, {TEST_FAULT_VARIABLE: FAULTS}), patch.object(driver, "fit_group_function", recording):
        report = driver.train(spark, root, brands, platform, as_of, overrides=overrides, progress=print)
    return {
        "root": root,
        "platform": platform,
        "brands": brands,
        "report": report,
        "job": jobs[0],
        "client": MlflowClient(platform.mlflow.tracking_uri),
    }
