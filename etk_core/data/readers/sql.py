"""A table of a SQL database through SQLAlchemy.

The source is a SQLAlchemy URL (`sqlite:///data.db`, `postgresql://user@host/db`) or the path of a SQLite
file (.db, .sqlite, .sqlite3); the table comes from `options["table"]` or a `#table` suffix, and may be
left out when the database holds exactly one table. Rows come in primary-key order (when there is one),
streamed; `where` is `SOURCE table T row N`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from etk_core.data.readers.files import no_rows
from etk_core.errors import DataError
from etk_core.interfaces import RawRow, Reader

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def split_source(source: str) -> tuple[str, str | None]:
    """`base#table` -> (base, table)."""
    base, _, table = source.partition("#")
    return base, table or None


class SqlReader(Reader):
    """Rows of one table in a SQL database."""

    name = "sql"
    description = "table of a SQL database: SQLAlchemy URL or SQLite file (.db), table via data.table or #table"
    suffixes = SQLITE_SUFFIXES

    @classmethod
    def accepts(cls, source: str) -> bool:
        base, _ = split_source(source)
        return "://" in base or base.lower().endswith(SQLITE_SUFFIXES)

    def _url(self) -> tuple[str, str]:
        """The SQLAlchemy URL and how to show it in messages (no password)."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        base, _ = split_source(self.source)
        if "://" not in base:
            path = Path(base)
            if not path.is_file():
                message = f"{base}: database file not found; check the path"
                raise DataError(message)
            return f"sqlite:///{path.resolve()}", base
        try:
            url = make_url(base)
        except ArgumentError as exc:
            message = f"{base}: not a database URL ({exc}); use e.g. sqlite:///data.db or postgresql://host/db"
            raise DataError(message) from None
        shown = url.render_as_string(hide_password=True)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            if not Path(url.database).is_file():
                message = f"{shown}: database file {url.database} not found; check the URL"
                raise DataError(message)
        return base, shown

    def rows(self) -> Iterator[RawRow]:
        from sqlalchemy import MetaData, Table, create_engine, inspect, select
        from sqlalchemy.exc import SQLAlchemyError

        url, shown = self._url()
        try:
            engine = create_engine(url)
        except (ImportError, SQLAlchemyError) as exc:
            message = f"{shown}: cannot load the database driver ({exc}); pip install the driver for this URL"
            raise DataError(message) from None
        try:
            with engine.connect() as connection:
                table = self._table(inspect(connection).get_table_names(), shown)
                reflected = Table(table, MetaData(), autoload_with=connection)
                query = select(reflected).order_by(*reflected.primary_key.columns)
                result = connection.execution_options(stream_results=True).execute(query)
                number = 0
                for number, values in enumerate(result.mappings(), 1):
                    yield RawRow(dict(values), f"{shown} table {table} row {number}")
                if number == 0:
                    raise no_rows(f"{shown} table {table}", "the table is empty")
        except SQLAlchemyError as exc:
            message = f"{shown}: cannot read the database ({str(exc).splitlines()[0]}); check the URL and table"
            raise DataError(message) from None
        finally:
            engine.dispose()

    def _table(self, present: list[Any], shown: str) -> str:
        _, suffix = split_source(self.source)
        table = self.options.get("table") or suffix
        tables = ", ".join(sorted(present)) or "none"
        if table is None:
            if len(present) == 1:
                return present[0]
            message = f"{shown}: which table? set --set data.table=NAME or add #NAME to the source; tables: {tables}"
            raise DataError(message)
        if table not in present:
            message = f"{shown}: no table {table!r}; tables present: {tables}; set data.table to one of them"
            raise DataError(message)
        return table
