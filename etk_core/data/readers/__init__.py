"""Built-in readers: csv, tsv, jsonl, json, parquet and sql tables."""

from __future__ import annotations

from etk_core.data.readers.delimited import CsvReader, TsvReader
from etk_core.data.readers.jsonfile import JsonReader
from etk_core.data.readers.jsonl import JsonlReader
from etk_core.data.readers.parquet import ParquetReader
from etk_core.data.readers.sql import SqlReader

BUILTIN_READERS = (CsvReader, TsvReader, JsonlReader, JsonReader, ParquetReader, SqlReader)

__all__ = ["BUILTIN_READERS", "CsvReader", "TsvReader", "JsonlReader", "JsonReader", "ParquetReader", "SqlReader"]
