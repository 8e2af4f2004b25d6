"""The `etk` command group: one-line errors, `--verbose` for tracebacks, plugin-added commands."""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any

import click

from etk_core import __version__
from etk_core.errors import EtkError


class EtkGroup(click.Group):
    """A group that turns user errors into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EtkError as exc:
            if (ctx.obj or {}).get("verbose"):
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if (ctx.obj or {}).get("verbose"):
                traceback.print_exc()
            click.echo(f"error: {type(exc).__name__}: {exc} (run `etk --verbose ...` for the traceback)", err=True)
            sys.exit(1)


@click.group(cls=EtkGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="etk")
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """etk: transfer learning for NLP. Train, evaluate, predict and list plugins."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        import os
        import warnings

        warnings.filterwarnings("ignore")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _add_commands() -> None:
    from etk_core.cli import evaluate, export, plugins, predict, serve, train

    for module in (train, evaluate, predict, export, serve, plugins):
        for command in module.COMMANDS:
            cli.add_command(command)
    from etk_core.plugins import get_plugin_manager

    get_plugin_manager().hook.etk_register_commands(cli=cli)


_add_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="etk")
