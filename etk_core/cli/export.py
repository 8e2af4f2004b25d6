"""`etk export`: turn a model artifact into a serving artifact (ONNX by default)."""

from __future__ import annotations

import click


@click.command("export")
@click.argument("artifact", type=click.Path())
@click.option("--format", "exporter", default="onnx", show_default=True, help="Exporter (etk list exporters).")
@click.option("--quantize", type=click.Choice(["int8"]), default=None, help="Also write a dynamically quantised graph.")
@click.option("--no-optimize", is_flag=True, help="Skip ONNX Runtime's transformer graph fusion.")
@click.option("--json", "as_json", is_flag=True, help="Print the export record as one JSON object.")
def export(artifact: str, exporter: str, quantize: str | None, no_optimize: bool, as_json: bool) -> None:
    """Export RUN_OR_ARTIFACT; the check against PyTorch must pass or nothing is replaced."""
    from etk_core.artifact import find_artifact
    from etk_core.cli.options import echo_json
    from etk_core.export.runtime import export_meta
    from etk_core.registry import get_component

    folder = find_artifact(artifact)
    get_component("exporters", exporter)().export(folder, {"quantize": quantize, "optimize": not no_optimize})
    record = export_meta(folder)
    if as_json:
        echo_json(record)
        return
    click.echo(f"exported {folder / 'model.onnx'} (opset {record['opset']}, max |torch - onnx| "
               f"{record['max_abs_diff']:.1e}, optimised: {record['optimized']})")
    if "int8_sample_agreement" in record:
        click.echo(f"exported {folder / 'model.int8.onnx'} (prediction agreement with PyTorch on samples "
                   f"{record['int8_sample_agreement']:.0%})")


COMMANDS = [export]
