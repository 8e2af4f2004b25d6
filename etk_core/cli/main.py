"""The `etk` command group: one-line errors, `--verbose` for tracebacks, plugin-added commands."""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any, NoReturn

import click

from etk_core import __version__
from etk_core.errors import EtkError
from etk_core.plugins import CORE_PLUGIN_NAME, EtkPluginManager, describe_error, get_plugin_manager

logger = logging.getLogger("etk.plugins")


class EtkGroup(click.Group):
    """A group that turns user errors into one line and a non-zero exit."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:  # `etk --bogus`
            _usage_error(exc)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EtkError as exc:
            if (ctx.obj or {}).get("verbose"):
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:  # a bad option value, a missing option, an unknown command
            _usage_error(exc)
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


#: `etk` alone prints the help (click raises it as a usage error): left to click.
_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _usage_error(exc: click.UsageError) -> NoReturn:
    """Click's usage error on one line (instead of usage, hint and message), then its exit code (2)."""
    if isinstance(exc, _HELP):
        raise exc
    where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
    click.echo(f"error: {exc.format_message().replace(chr(10), ' ')}{where}", err=True)
    sys.exit(exc.exit_code)


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


def add_plugin_commands(group: click.Group, manager: EtkPluginManager) -> None:
    """Let each plugin add its commands to `group` on its own: one that raises, or that reuses a name already
    taken (a core command or another plugin's), is a warning and the commands already there stay."""
    owners = dict.fromkeys(group.commands, CORE_PLUGIN_NAME)
    for impl in manager.hook.etk_register_commands.get_hookimpls():
        if impl.hookwrapper or impl.wrapper:
            continue
        plugin_name = impl.plugin_name
        before = dict(group.commands)
        ok, _ = manager.call_impl("etk_register_commands", impl, cli=group)
        added = dict(group.commands)
        group.commands.clear()
        group.commands.update(before)
        if not ok:  # it raised (already warned and recorded): drop whatever it added half-way
            continue
        for name, command in added.items():
            if before.get(name) is command:
                continue
            if name in before:
                logger.warning("%s adds the command %r, which %r already provides; its command is skipped "
                               "(rename it in the plugin)", manager.label(plugin_name), name, owners[name])
                if plugin_name in manager.infos:
                    manager.infos[plugin_name].add_failure(
                        f"etk_register_commands: {name!r} is taken by {owners[name]!r}")
                continue
            group.add_command(command, name)
            owners[name] = plugin_name


def _add_commands() -> None:
    from etk_core.cli import evaluate, export, plugins, predict, serve, train

    for module in (train, evaluate, predict, export, serve, plugins):
        for command in module.COMMANDS:
            cli.add_command(command)
    try:
        add_plugin_commands(cli, get_plugin_manager())
    except Exception as exc:  # plugin commands are never worth losing the core ones
        logger.warning("plugin commands are not available: %s; run `etk plugins` to see which plugin fails",
                       describe_error(exc))


_add_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="etk")
