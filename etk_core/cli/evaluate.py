"""`etk evaluate`: metrics of a model artifact on labelled data."""

from __future__ import annotations

import click

from etk_core.cli.options import echo_json, parse_data


@click.command("evaluate")
@click.argument("artifact", type=click.Path())
@click.option("--data", "data", multiple=True, required=True, metavar="ROLE=SOURCE",
              help="Labelled data to evaluate on, e.g. dev=dev.tsv (repeatable).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Data options, e.g. data.label=sentiment.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Examples per batch.")
@click.option("--backend", type=click.Choice(["auto", "torch", "onnx", "onnx-int8"]), default="auto",
              show_default=True, help="auto: ONNX Runtime when the artifact is exported, else PyTorch.")
@click.option("--domain", default=None, metavar="NAME",
              help="The run's model of another domain (RUN/domains/NAME; e.g. a feature-based TL run's source).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
def evaluate(artifact: str, data: tuple[str, ...], sets: tuple[str, ...], batch_size: int, backend: str,
             domain: str | None, as_json: bool) -> None:
    """Evaluate RUN_OR_ARTIFACT on labelled data and print its metrics."""
    from etk_core.artifact import find_artifact
    from etk_core.cli.data_options import data_options
    from etk_core.data.load import load_records
    from etk_core.predict import Predictor

    options = data_options(sets)
    predictor = Predictor(find_artifact(artifact, domain) if domain else artifact, batch_size=batch_size,
                          backend=backend)
    results: dict[str, dict[str, float]] = {}
    for role, spec in parse_data(data).items():
        records = load_records(spec, options, required=predictor.app.required_columns)
        results[role] = predictor.evaluate(records)
    if as_json:
        echo_json(results if len(results) > 1 else next(iter(results.values())))
        return
    for role, metrics in results.items():
        click.echo(f"{role}: " + "  ".join(f"{key}={value:.4f}" for key, value in metrics.items()))


COMMANDS = [evaluate]
