"""Rich consoles for stdout (results) and stderr (progress, warnings), tables that fold and one-line notices."""

from __future__ import annotations

import sys
from typing import Any


def stdout_console() -> Any:
    """A console on stdout (width fixed when not a terminal, so output is stable in files and tests)."""
    from rich.console import Console

    return Console(soft_wrap=False, width=None)


def stderr_console() -> Any:
    """A console on stderr for progress bars."""
    from rich.console import Console

    return Console(stderr=True)


def table(*columns: str, title: str | None = None, right: tuple[str, ...] = ()) -> Any:
    """A rich table whose cells fold onto more lines instead of being cut, so it fits 80 columns and every name
    stays whole (columns named in `right` are right-aligned)."""
    from rich.table import Table

    result = Table(title=title, show_header=True)
    for column in columns:
        result.add_column(column, overflow="fold", justify="right" if column in right else "left")
    return result


def print_path(label: str, path: Any) -> None:
    """`label: path` on stdout as one logical line (never folded mid-path: the terminal wraps it, so it pastes)."""
    stdout_console().print(f"{label}: {path}", soft_wrap=True, highlight=False, markup=False)


def notice(message: str) -> None:
    """A one-line message on stderr about a wait the user would otherwise not see (a download, tokenising)."""
    print(f"etk: {message}", file=sys.stderr, flush=True)
