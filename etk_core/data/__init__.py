"""The data layer: readers for files and tables, column mapping, named datasets and `load_records`."""

from __future__ import annotations

from etk_core.data.load import load_records

__all__ = ["load_records"]
