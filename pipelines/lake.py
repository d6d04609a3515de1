"""Where the catalogue's tables are (``pipelines.tables``): Delta folders, or Unity Catalog names.

Standard library only, so that the platform config can name a lake without loading the catalogue's
pandas and Spark types (``mmm --help`` stays fast).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.tables import Table

UC_SCHEMA_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"  # catalog.schema, unquoted identifiers


@dataclass(frozen=True)
class Lake:
    """Where the catalogue's tables are.

    ``root`` is always a folder: the lake's lock and the files written beside the tables (the dashboard)
    live there, and without ``schema`` the tables are Delta folders under it. With ``schema``
    (``catalog.schema``) the tables are managed Unity Catalog tables in that schema.
    """

    root: Path
    schema: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        if self.schema is not None and not re.match(UC_SCHEMA_PATTERN, self.schema):
            raise ValueError(f"tables schema {self.schema!r} is not catalog.schema (letters, digits, underscores)")

    @classmethod
    def of(cls, where: Lake | str | Path) -> Lake:
        """A lake as given, or Delta folders under a path."""
        return where if isinstance(where, Lake) else cls(Path(where))

    def identifier(self, table: Table) -> str:
        """The table's name in Spark SQL: a Unity Catalog name, or ``delta.`<path>```."""
        if self.schema is not None:
            return f"{self.schema}.{table.layer}_{table.name}"
        return "delta.`" + self.path(table).replace("`", "``") + "`"

    def path(self, table: Table) -> str:
        """The table's folder, for a lake of Delta folders (a Unity Catalog table has no path of its own)."""
        if self.schema is not None:
            raise ValueError(
                f"{table.qualified_name} is the Unity Catalog table {self.identifier(table)}, not a folder"
            )
        return str(self.root / table.layer / table.name)

    def location(self, table: Table) -> str:
        """Where a reader outside Spark finds the table (MLflow's dataset source): its folder, or its name."""
        return self.identifier(table) if self.schema is not None else self.path(table)

    def __str__(self) -> str:
        return self.schema if self.schema is not None else str(self.root)
