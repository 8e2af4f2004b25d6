"""Running an exported artifact with ONNX Runtime."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from etk_core.errors import ArtifactError, DamagedFileError

ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
EXPORT_META = "onnx.json"
#: Key of onnx.json holding the sha256 of each graph file.
DIGESTS_KEY = "files"


def has_export(folder: Path, variant: str = "fp32") -> bool:
    """Whether the artifact folder holds an exported graph of `variant`."""
    return (Path(folder) / ONNX_FILES[variant]).is_file() and (Path(folder) / EXPORT_META).is_file()


def export_meta(folder: Path) -> dict[str, Any]:
    """The export record (`onnx.json`): inputs, outputs, opset, checks."""
    file = Path(folder) / EXPORT_META
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not an export record")
    except (OSError, ValueError) as exc:
        raise DamagedFileError(f"{file}: damaged export record ({type(exc).__name__}); "
                               f"{reexport_hint(folder)}") from None
    return meta


def reexport_hint(folder: Path) -> str:
    """What to do about a damaged export."""
    return f"re-export with `etk export {folder}`"


class OnnxRunner:
    """One ONNX Runtime session over an exported artifact; `run(batch)` takes a collated batch."""

    def __init__(self, folder: Path, variant: str = "fp32", threads: int | None = None) -> None:
        import onnxruntime as ort

        folder = Path(folder)
        if not has_export(folder, variant):
            hint = " --quantize int8" if variant == "int8" else ""
            raise ArtifactError(f"{folder} has no {ONNX_FILES[variant]}; run `etk export {folder}{hint}` first")
        from etk_core.artifact import check_files

        self.meta = export_meta(folder)
        graph = ONNX_FILES[variant]
        check_files(folder, {graph: (self.meta.get(DIGESTS_KEY) or {}).get(graph)}, fix=reexport_hint(folder))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or int(os.environ.get("ETK_ORT_THREADS", "0"))
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(folder / graph), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for a garbled graph
            raise DamagedFileError(f"{folder / graph}: damaged exported graph ({type(exc).__name__}); "
                                   f"{reexport_hint(folder)}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Outputs (numpy) of one batch whose values are tensors or arrays keyed by input name."""
        import numpy as np

        feed = {}
        for name in self.input_names:
            value = batch[name]
            feed[name] = np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.int64)
        static = (getattr(self, "meta", None) or {}).get("static_length")
        length = next(iter(feed.values())).shape[1] if feed else 0
        if static and length < static:  # a graph exported at a fixed length: pad (masked), then cut back
            feed = {name: np.pad(value, ((0, 0), (0, static - length))) for name, value in feed.items()}
        outputs = dict(zip(self.output_names, self.session.run(self.output_names, feed)))
        if static and length < static:
            outputs = {name: value[:, :length] if value.ndim > 1 and value.shape[1] == static else value
                       for name, value in outputs.items()}
        return outputs
