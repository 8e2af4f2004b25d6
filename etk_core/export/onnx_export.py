"""The built-in exporter: artifact -> `model.onnx` (+ `model.int8.onnx`), checked against PyTorch."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from etk_core.artifact import clone, swap_in
from etk_core.config import Option
from etk_core.errors import EtkError
from etk_core.export.runtime import DIGESTS_KEY, EXPORT_META, ONNX_FILES
from etk_core.interfaces import Exporter
from etk_core.io import sha256

logger = logging.getLogger("etk.export")

OPSET = 17
#: Largest |PyTorch - ONNX Runtime| allowed on any fp32 output value.
FP32_TOLERANCE = 1e-4


class ExportError(EtkError):
    """An export whose graph does not reproduce the PyTorch model."""


class _Positional:
    """Build (lazily, to keep torch out of import time) a module that takes inputs positionally."""

    @staticmethod
    def wrap(model: Any, input_names: list[str], output_names: tuple[str, ...]) -> Any:
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *inputs: Any) -> tuple[Any, ...]:
                outputs = self.model(**dict(zip(input_names, inputs)))
                return tuple(outputs[name] for name in output_names)

        return Wrapped().eval()


def _sample_batch(app: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    features = app.encode_all(app.export_samples(), with_label=False)
    batch = app.collate(features)
    batch.pop("labels", None)
    return features, batch


def static_length(model: Any, app: Any) -> int | None:
    """The fixed sequence length to export at, for encoders whose attention depends on the length at trace
    time (config flag `etk_export_static_length`, e.g. RSA's block layout): the app's max_length."""
    encoder = getattr(model, "encoder", None)
    return app.max_length if getattr(getattr(encoder, "config", None), "etk_export_static_length", False) else None


def _pad_to(batch: dict[str, Any], length: int) -> dict[str, Any]:
    """Pad every [batch, sequence] input with zeros (padding / masked) up to `length`."""
    import torch

    return {name: torch.nn.functional.pad(value, (0, length - value.shape[1])) for name, value in batch.items()}


def _export_graph(model: Any, app: Any, batch: dict[str, Any], target: Path) -> list[str]:
    import torch

    input_names = list(batch)
    output_names = app.export_outputs
    static = static_length(model, app)
    if static is None:
        # the eager attention exports to plain ops that ONNX Runtime's optimizer fuses into Attention (every
        # encoder of the model: a feature-based TL model has a shared and a private one)
        for module in model.modules():
            if hasattr(module, "set_attn_implementation") and hasattr(module, "config"):
                module.set_attn_implementation("eager")
    axes = {name: {0: "batch"} if static else {0: "batch", 1: "sequence"} for name in input_names}
    axes.update({name: {0: "batch"} for name in output_names})
    with torch.no_grad():
        torch.onnx.export(_Positional.wrap(model, input_names, output_names), tuple(batch.values()), str(target),
                          input_names=input_names, output_names=list(output_names), dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
    return input_names


def _optimise(path: Path, encoder_config: Any) -> bool:
    """Fuse attention and layer norms for BERT-like encoders; keep the plain graph when that fails."""
    if getattr(encoder_config, "model_type", "") not in ("bert", "roberta", "albert", "electra", "distilbert"):
        return False
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        optimised = optimize_model(str(path), model_type="bert", num_heads=encoder_config.num_attention_heads,
                                   hidden_size=encoder_config.hidden_size, opt_level=1)
        optimised.save_model_to_file(str(path))
        return True
    except Exception as exc:  # the plain graph is still correct, only slower
        logger.warning("graph optimisation skipped: %s: %s", type(exc).__name__, exc)
        return False


_GELU_OPS = {"Gelu", "BiasGelu", "FastGelu", "QuickGelu"}


def _gelu_fed_matmuls(path: Path) -> list[str]:
    """The MatMul nodes fed by a GELU: the feed-forward down-projections of each transformer layer."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {output: node.op_type for node in graph.node for output in node.output}
    return [node.name for node in graph.node
            if node.op_type == "MatMul" and producer.get(node.input[0]) in _GELU_OPS]


def _quantise(source: Path, target: Path) -> int:
    """Write the int8 graph; return how many MatMuls were kept in fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weight scales, and the FFN down-projections kept in fp32: their GELU inputs have a long
    # tail that one dynamic uint8 scale per tensor clips. Label agreement with fp32 on 400 Amazon book
    # reviews (MiniLM): per-tensor 96.75%, per-channel 98.75%, per-channel + fp32 down-projections 99.0%.
    keep = _gelu_fed_matmuls(source)
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     nodes_to_exclude=keep, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return len(keep)


def _session_outputs(path: Path, batch: dict[str, Any]) -> dict[str, Any]:
    from etk_core.export.runtime import OnnxRunner

    runner = OnnxRunner.__new__(OnnxRunner)
    import onnxruntime as ort

    runner.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    runner.input_names = [i.name for i in runner.session.get_inputs()]
    runner.output_names = [o.name for o in runner.session.get_outputs()]
    return runner.run(batch)


def export_onnx(path: str | Path, quantize: str | None = None, optimize: bool = True,
                loaded: Any = None) -> dict[str, Any]:
    """Export the artifact at `path` (`loaded`: it, already loaded); check ONNX Runtime against PyTorch;
    return the export record."""
    import warnings

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser and exporter log advice meant for their developers
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _export_onnx(path, quantize, optimize, loaded)
    finally:
        root.setLevel(level)


def _write_graphs(model: Any, app: Any, batch: dict[str, Any], reference: dict[str, Any], stage: Path,
                  quantize: str | None, optimize: bool, record: dict[str, Any], folder: Path) -> None:
    """Export, optimise and check the graphs into `stage`; add their figures and digests to `record`."""
    import numpy as np

    fp32 = stage / ONNX_FILES["fp32"]
    record["inputs"] = _export_graph(model, app, batch, fp32)
    encoder = getattr(model, "encoder", None)
    record["optimized"] = bool(optimize and encoder is not None and _optimise(fp32, encoder.config))
    got = _session_outputs(fp32, batch)
    diff = max(float(np.abs(got[name] - reference[name]).max()) for name in reference)
    record["max_abs_diff"] = diff
    if diff > FP32_TOLERANCE:
        raise ExportError(f"{folder}: ONNX Runtime outputs differ from PyTorch by {diff:.2e} (tolerance "
                          f"{FP32_TOLERANCE:.0e}); report this with `etk --verbose export`")
    written = [fp32]
    if quantize == "int8":
        int8 = stage / ONNX_FILES["int8"]
        record["int8_fp32_matmuls"] = _quantise(fp32, int8)
        got8 = _session_outputs(int8, batch)
        first = app.export_outputs[0]
        record["int8_sample_agreement"] = float((got8[first].argmax(-1) == reference[first].argmax(-1)).mean())
        record["int8_max_abs_diff"] = float(np.abs(got8[first] - reference[first]).max())
        written.append(int8)
    record[DIGESTS_KEY] = {path.name: sha256(path) for path in written}
    record["parameters"] = sum(parameter.numel() for parameter in model.parameters())
    record["bytes"] = {path.name: path.stat().st_size for path in written}  # what a deployment ships


def _export_onnx(path: str | Path, quantize: str | None, optimize: bool, loaded: Any) -> dict[str, Any]:
    import onnxruntime
    import torch

    from etk_core.artifact import load_artifact

    if quantize not in (None, "int8"):
        raise EtkError(f"unknown quantisation {quantize!r}; the only one is int8 (--quantize int8)")
    loaded = loaded or load_artifact(path)
    model, app, folder = loaded.model, loaded.app, loaded.path
    _, batch = _sample_batch(app)
    static = static_length(model, app)
    if static:
        batch = _pad_to(batch, static)
    with torch.no_grad():
        reference = {name: value.float().numpy() for name, value in model(**batch).items()
                     if name in app.export_outputs}
    record: dict[str, Any] = {"opset": OPSET, "outputs": list(app.export_outputs), "torch": torch.__version__,
                              "onnxruntime": onnxruntime.__version__, "static_length": static}
    # the new graphs go into a hidden sibling copy of the artifact, swapped in whole: the graphs and their
    # record change together, and a killed export leaves nothing inside the artifact
    stale = {path.name for path in folder.iterdir() if path.is_dir() and path.name.startswith("tmp")}
    stage = clone(folder, skip={*ONNX_FILES.values(), EXPORT_META, *stale})
    try:
        _write_graphs(model, app, batch, reference, stage, quantize, optimize, record, folder)
        (stage / EXPORT_META).write_text(json.dumps(record, indent=1), encoding="utf-8")
        swap_in(stage, folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return record


class OnnxExporter(Exporter):
    """Export to ONNX (dynamic batch and sequence axes), fused for BERT-like encoders, optional int8."""

    name = "onnx"
    description = "ONNX graph for ONNX Runtime (fused attention; optional int8 dynamic quantisation)"
    options = {"quantize": Option((str, type(None)), None, "int8 for an extra dynamically quantised graph"),
               "optimize": Option(bool, True, "fuse attention and layer norms (BERT-like encoders)")}

    def export(self, artifact: Path, options: dict[str, Any]) -> Path:
        # `loaded`: the artifact already in memory (training's export does not read it from disk again)
        export_onnx(artifact, quantize=options.get("quantize"), optimize=options.get("optimize", True),
                    loaded=options.get("loaded"))
        return Path(artifact)
