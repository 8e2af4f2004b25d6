"""`etk predict`: predictions of a model artifact for every row of a file, as JSON lines or TSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from etk_core.errors import ConfigError
from etk_core.io import atomic_write_text


def input_columns(record: dict[str, Any]) -> dict[str, Any]:
    """The columns of a record as the user gave them (no internal keys)."""
    original = record.get("_columns")
    keys = original if original else [key for key in record if not key.startswith("_")]
    return {key: record[key] for key in keys if key in record}


def _tsv_cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("\t", " ").replace("\n", " ")


def render(records: list[dict[str, Any]], predictions: list[dict[str, Any]], fmt: str) -> str:
    """JSON lines (input columns + `prediction`) or TSV (input columns + `pred_*` columns)."""
    if fmt == "jsonl":
        return "".join(json.dumps({**input_columns(record), "prediction": prediction}, ensure_ascii=False) + "\n"
                       for record, prediction in zip(records, predictions))
    rows = [{**input_columns(record), **{f"pred_{key}": value for key, value in prediction.items()}}
            for record, prediction in zip(records, predictions)]
    header = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["\t".join(header)] + ["\t".join(_tsv_cell(row.get(key, "")) for key in header) for row in rows]
    return "\n".join(lines) + "\n"


@click.command("predict")
@click.argument("artifact", type=click.Path())
@click.option("--input", "input_spec", required=True, help="File, SQL URL or dataset with the inputs.")
@click.option("--output", "output", required=True, type=click.Path(dir_okay=False), help="Where to write predictions.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "tsv"]), default=None,
              help="Output format (default: from the --output suffix, else jsonl).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Data options, e.g. data.text=review.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Examples per batch.")
@click.option("--backend", type=click.Choice(["auto", "torch", "onnx", "onnx-int8"]), default="auto",
              show_default=True, help="auto: ONNX Runtime when the artifact is exported, else PyTorch.")
def predict(artifact: str, input_spec: str, output: str, fmt: str | None, sets: tuple[str, ...],
            batch_size: int, backend: str) -> None:
    """Predict with RUN_OR_ARTIFACT for each input row; one output row per input row."""
    from etk_core.cli.data_options import data_options
    from etk_core.data.load import load_records
    from etk_core.predict import Predictor

    fmt = fmt or ("tsv" if output.endswith((".tsv", ".txt")) else "jsonl")
    folder = Path(output).absolute().parent
    if not folder.is_dir():
        raise ConfigError(f"--output {output}: the folder {folder} does not exist; create it or choose another path")
    predictor = Predictor(artifact, batch_size=batch_size, backend=backend)
    records = load_records(input_spec, data_options(sets), required=("text",))
    predictions = predictor.predict(records)
    atomic_write_text(Path(output), render(records, predictions, fmt))
    click.echo(f"wrote {len(predictions)} predictions to {output}", err=True)


COMMANDS = [predict]
