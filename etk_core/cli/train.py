"""`etk train`: resolve the config, prepare the run, run the algorithm, report."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from etk_core.cli.options import echo_json, parse_data


@click.command("train")
@click.option("--app", help="Application, e.g. text_classify (etk list apps).")
@click.option("--algo", help="Algorithm, e.g. finetune (etk list algos).")
@click.option("--model", help="Backbone name, size preset or local Hugging Face folder (etk list models).")
@click.option("--data", "data", multiple=True, metavar="ROLE=SOURCE",
              help="Data for a role: a file, a SQL URL or a dataset name (repeatable).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML or JSON run config.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config key (dotted).")
@click.option("--strategy", help="Execution strategy (etk list strategies).")
@click.option("--nproc", type=click.IntRange(min=1),
              help="Worker processes of a multi-process strategy (strategy.nproc), per node.")
@click.option("--nnodes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Machines taking part; run the same command on each with its --node-rank.")
@click.option("--node-rank", type=click.IntRange(min=0), default=0, show_default=True,
              help="This machine's index among --nnodes (0 writes the run folder).")
@click.option("--master-addr", default="127.0.0.1", show_default=True,
              help="Address of node 0, where the workers meet (multi-node runs).")
@click.option("--master-port", type=click.IntRange(1, 65535), help="Port on node 0 for the rendezvous "
              "(needed with --nnodes > 1; default: a free port).")
@click.option("--output", "-o", type=click.Path(file_okay=False), help="Run folder (default runs/<app>-<algo>-<time>).")
@click.option("--resume", is_flag=True, help="Continue the run in --output from its last checkpoint. Without it, "
              "--output must be new, empty, or a run that stopped before its first checkpoint (started again); "
              "a folder holding checkpoints or a model is refused.")
@click.option("--no-export", "no_export", is_flag=True, default=None,
              help="Do not export the best model to ONNX at the end (same as --set export=false).")
@click.option("--json", "as_json", is_flag=True, help="Print the final metrics as one JSON object.")
def train(app: str | None, algo: str | None, model: str | None, data: tuple[str, ...], config_file: str | None,
          sets: tuple[str, ...], strategy: str | None, nproc: int | None, nnodes: int, node_rank: int,
          master_addr: str, master_port: int | None, output: str | None, resume: bool, no_export: bool | None,
          as_json: bool) -> None:
    """Train a model; writes a run folder with metrics, checkpoints and the model artifact."""
    from etk_core import config as config_mod
    from etk_core.api import WorkersFailed, execute
    from etk_core.launch import Nodes, is_worker
    from etk_core.run import check_output

    flags = {"app.name": app, "algo.name": algo, "model.name": model, "strategy.name": strategy,
             "output": output, "data.sources": parse_data(data) or None,
             "export": False if no_export else None, "strategy.nproc": nproc}
    config = config_mod.resolve(config_file, flags, sets)
    if config["output"] and node_rank == 0 and not is_worker():  # node 0's main worker creates the folder
        check_output(Path(config["output"]), resume)
    verbose = bool((click.get_current_context().obj or {}).get("verbose"))
    try:
        with _progress() as reporter:
            result = execute(config, resume=resume, reporter=reporter,
                             nodes=Nodes(nnodes, node_rank, master_addr, master_port), verbose=verbose)
    except WorkersFailed as failed:  # the failing worker printed its own one-line error
        raise SystemExit(failed.exit_code) from None
    if not result.metrics:  # a worker other than the main one, or another node: the main process reports
        return
    if as_json:
        echo_json({"run": str(result.run_dir), **result.metrics})
    else:
        _print_summary(result)


@contextlib.contextmanager
def _progress() -> Iterator[Any]:
    """The training reporter: a rich progress bar when stderr is a terminal, plain lines otherwise."""
    from etk_core.console import stderr_console
    from etk_core.training.reporter import PlainReporter, RichReporter

    reporter = RichReporter() if stderr_console().is_terminal else PlainReporter()
    try:
        yield reporter
    finally:
        reporter.close()


def _print_summary(result: Any) -> None:
    from etk_core.console import print_path, stdout_console, table

    figures = table("metric", "value", right=("value",))
    for key, value in result.metrics.items():
        figures.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    stdout_console().print(figures)
    print_path("run folder", result.run_dir)
    if result.artifact is not None:
        print_path("model artifact", result.artifact)


COMMANDS = [train]
