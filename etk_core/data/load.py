"""`load_records`: any source spec (file, SQL table, dataset name) to a list of canonical records.

Every rank reads and checks the whole source, then keeps the usable records whose index i satisfies
i % world_size == rank, so all ranks agree on errors and the shards partition the unsharded result.
`max_rows` caps the usable records before sharding. A shard may be empty when there are fewer records than
ranks; a source with no usable record at all is a DataError.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from etk_core.data.columns import CANONICAL, ColumnMap, MalformedRow, resolve_columns
from etk_core.errors import DataError
from etk_core.interfaces import Record

logger = logging.getLogger("etk.data")

#: (record or None, where, reason): one row after mapping.
Checked = tuple[Record | None, str, str | None]


def load_records(spec: str, options: dict[str, Any], required: tuple[str, ...] = ("text",),
                 rank: int = 0, world_size: int = 1) -> list[Record]:
    """Read `spec` (a file, a SQL URL or `NAME[:SPLIT]` of a dataset) into records, checked and sharded."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside world size {world_size}")
    on_error = options.get("on_error") or "error"
    max_rows = options.get("max_rows")
    records: list[Record] = []
    skipped = 0
    first: tuple[str, str] | None = None
    for record, where, reason in _checked(spec, options, tuple(required)):
        if max_rows is not None and len(records) >= max_rows:
            break
        if reason is None and record is not None:
            records.append(record)
            continue
        if on_error != "skip":
            message = f"{where}: {reason}; fix the row or use --set data.on_error=skip"
            raise DataError(message)
        skipped += 1
        first = first or (where, reason or "malformed")
    if skipped and first:
        logger.warning("skipped %d malformed rows in %s (first: %s: %s)", skipped, spec, *first)
    if not records:
        detail = f"all {skipped} rows are malformed (first: {first[0]}: {first[1]})" if first else "nothing to read"
        message = f"{spec}: no usable records; {detail}; fix the data"
        raise DataError(message)
    return records[rank::world_size]


def _checked(spec: str, options: dict[str, Any], required: tuple[str, ...]) -> Iterator[Checked]:
    source = resolve_source(spec)
    if isinstance(source, tuple):
        yield from _dataset_rows(*source, required)
        return
    reader = source(spec, options)
    columns: ColumnMap | None = None
    for row in reader.rows():
        if row.values is None:
            yield None, row.where, row.error or "cannot parse the row"
            continue
        if columns is None:
            columns = resolve_columns(spec, list(row.values), options, required)
        try:
            record = columns.record(row.values, row.where)
        except MalformedRow as exc:
            yield None, row.where, str(exc)
            continue
        yield record, row.where, _missing(record, required)


def _dataset_rows(dataset: Any, split: str, required: tuple[str, ...]) -> Iterator[Checked]:
    for index, record in enumerate(dataset.records(split)):
        where = record.get("_where") or f"{dataset.name}:{split} row {index + 1}"
        yield record, where, _missing(record, required)


def _missing(record: Record, required: Sequence[str]) -> str | None:
    for key in required:
        value = record.get(key)
        if value is None or (key in CANONICAL and isinstance(value, str) and not value.strip()):
            return f"missing {key.replace('_', ' ')}"
    return None


def resolve_source(spec: str) -> type[Any] | tuple[Any, str]:
    """The reader class for a file or URL, or `(dataset, split)` for a dataset name; else a DataError."""
    from etk_core.registry import get_registry

    # a reader that recognises its files by content (e.g. SQuAD JSON) outranks one that goes by suffix
    readers = sorted((component.cls for component in get_registry("readers").components.values()),
                     key=lambda reader: -getattr(reader, "priority", 0))
    base = spec.partition("#")[0]
    if "://" in base or Path(spec).is_file() or Path(base).is_file():
        for reader in readers:
            if reader.accepts(spec):
                return reader
        if "://" in base:
            message = f"{spec}: no reader handles this URL; use a SQLAlchemy URL such as sqlite:///data.db"
        else:
            suffixes = ", ".join(sorted({suffix for reader in readers for suffix in reader.suffixes}))
            message = f"{spec}: unknown file type {Path(base).suffix or '(no suffix)'!r}; supported: {suffixes}"
        raise DataError(message)
    if Path(base).is_dir():
        message = f"{spec} is a folder; give a data file, a SQL URL or a dataset name"
        raise DataError(message)
    datasets = get_registry("datasets")
    name, _, split = spec.partition(":")
    if name in datasets.components:
        dataset = datasets.get(name)()
        split = split or "train"
        if split not in dataset.splits:
            message = f"dataset {name} has no split {split!r}; splits: {', '.join(dataset.splits)}"
            raise DataError(message)
        return dataset, split
    names = ", ".join(datasets.names()) or "none"
    if Path(base).suffix or "/" in base or "\\" in base:
        message = f"{spec}: file not found; check the path (or name a dataset: {names})"
    else:
        message = f"no file, table or dataset named {spec}; datasets: {names}"
    raise DataError(message)
