"""An example etk plugin, written as a third party would: one reader, one algorithm and one command.

Install it with `pip install -e examples/etk-hello`; it then shows in `etk plugins`, `etk list readers`
reads `*.lines` files (one text per line), `etk list algos` has `hello_weighted` (two streams and an extra
module on the training engine, `etk_hello/algorithm.py`), and `etk hello` greets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from etk_core.errors import DataError
from etk_core.hookspecs import hookimpl
from etk_core.interfaces import RawRow, Reader


class LinesReader(Reader):
    """One text per line (no labels): for `etk predict --input notes.lines`."""

    name = "lines"
    description = "plain text, one example per line (*.lines)"
    suffixes = (".lines",)

    def rows(self) -> Iterator[RawRow]:
        try:
            handle = open(self.source, "rb")  # noqa: SIM115 - closed below; bytes, so a bad line is named
        except OSError as exc:  # missing, a folder, unreadable: one line naming the file, not a traceback
            raise DataError(f"{self.source}: cannot read it ({exc.strerror or exc}); check the path") from None
        with handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    raise DataError(f"{self.source}:{number}: not UTF-8 text; save the file as UTF-8") from None
                if line.strip():
                    yield RawRow({"text": line}, f"{self.source}:{number}")


@hookimpl
def etk_register_readers() -> list[type[Any]]:
    return [LinesReader]


@hookimpl
def etk_register_algorithms() -> list[type[Any]]:
    from etk_hello.algorithm import UncertaintyWeighted

    return [UncertaintyWeighted]


@hookimpl
def etk_register_commands(cli: click.Group) -> None:
    @cli.command("hello")
    @click.argument("name", default="world")
    def hello(name: str) -> None:
        """Say hello (an example plugin command)."""
        click.echo(f"hello, {name}")
