"""Rich consoles for stdout (results) and stderr (progress, warnings)."""

from __future__ import annotations

from typing import Any


def stdout_console() -> Any:
    """A console on stdout (width fixed when not a terminal, so output is stable in files and tests)."""
    from rich.console import Console

    return Console(soft_wrap=False, width=None)


def stderr_console() -> Any:
    """A console on stderr for progress bars."""
    from rich.console import Console

    return Console(stderr=True)
