"""Parquet files, read lazily in record batches with pyarrow."""

from __future__ import annotations

from collections.abc import Iterator

from etk_core.data.readers.files import no_rows, require_file
from etk_core.errors import DataError
from etk_core.interfaces import RawRow, Reader

BATCH_ROWS = 4096


class ParquetReader(Reader):
    """Rows of a Parquet file; `where` is `FILE row N` (1-based)."""

    name = "parquet"
    description = "Apache Parquet file, read in record batches (.parquet)"
    suffixes = (".parquet", ".pq")

    def rows(self) -> Iterator[RawRow]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = require_file(self.source)
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            message = f"{self.source}: not a readable Parquet file ({str(exc).splitlines()[0]}); re-export it"
            raise DataError(message) from None
        if parquet.metadata.num_rows == 0:
            raise no_rows(self.source, "the Parquet file has no rows")
        number = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            for values in batch.to_pylist():
                number += 1
                yield RawRow(values, f"{self.source} row {number}")
