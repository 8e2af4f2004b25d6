"""In-process prediction and evaluation with a model artifact: the one code path that `etk predict`,
`etk evaluate` and `etk serve` share, on PyTorch or ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etk_core.errors import ArtifactError
from etk_core.interfaces import Record

BACKENDS = ("auto", "torch", "onnx", "onnx-int8")


def evaluate_features(model: Any, app: Any, features: list[dict[str, Any]], batch_size: int,
                      device: Any = "cpu") -> dict[str, float]:
    """The app's metrics of a PyTorch `model` on encoded, labelled features."""
    from etk_core.training.evaluation import predict_outputs

    outputs = predict_outputs(model, app, features, batch_size, device)
    return {key: float(value) for key, value in app.metrics(outputs, features).items()}


class Predictor:
    """A loaded artifact that predicts for records (dicts with `text`, `text_pair`, ...) or plain strings.

    `backend`: `torch` (the PyTorch weights), `onnx` / `onnx-int8` (the exported graphs, ONNX Runtime), or
    `auto` (ONNX when the artifact has been exported, else PyTorch).
    """

    def __init__(self, path: str | Path, batch_size: int = 64, backend: str = "auto",
                 threads: int | None = None) -> None:
        from etk_core.artifact import load_app, load_artifact
        from etk_core.export.runtime import has_export

        if backend not in BACKENDS:
            raise ArtifactError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        loaded = load_app(path)  # (each file is read and checked once)
        folder = loaded.path
        if backend == "auto":
            backend = "onnx" if has_export(folder, "fp32") else "torch"
        self.backend = backend
        self.batch_size = batch_size
        if backend == "torch":
            self.artifact = load_artifact(folder, loaded)
            from etk_core.training.evaluation import torch_runner

            self._run_batch = torch_runner(self.artifact.model)
        else:
            from etk_core.export.runtime import OnnxRunner

            self.artifact = loaded
            self._run_batch = OnnxRunner(folder, "int8" if backend == "onnx-int8" else "fp32", threads=threads).run
        self.app = self.artifact.app
        self.meta = self.artifact.meta

    @property
    def model(self) -> Any:
        """The PyTorch model (backend `torch`), e.g. a teacher whose internals a distillation reads."""
        if self.backend != "torch":
            raise ArtifactError(f"this predictor runs the {self.backend} graph; load it with backend='torch' "
                                f"for the PyTorch model")
        return self.artifact.model

    @property
    def path(self) -> Path:
        """The artifact folder."""
        return self.artifact.path

    @staticmethod
    def records(inputs: list[Any]) -> list[Record]:
        """Plain strings become `{"text": ...}` records; dicts pass through."""
        return [item if isinstance(item, dict) else {"text": item, "_where": f"input {i + 1}"}
                for i, item in enumerate(inputs)]

    def outputs(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """Raw model outputs for encoded features, in input order."""
        from etk_core.training.evaluation import batched_outputs

        return batched_outputs(self.app, features, self.batch_size, self._run_batch)

    def predict(self, inputs: list[Any]) -> list[dict[str, Any]]:
        """User-facing predictions, one per input."""
        records = self.records(inputs)
        features = self.app.encode_all(records, with_label=False)
        return self.app.postprocess(self.outputs(features), records, features)

    def evaluate(self, records: list[Record]) -> dict[str, float]:
        """Metrics on labelled records."""
        features = self.app.encode_all(records)
        return {key: float(value) for key, value in self.app.metrics(self.outputs(features), features).items()}


def load(path: str | Path, batch_size: int = 64, backend: str = "auto") -> Predictor:
    """Load a model artifact (or a run folder) for prediction: `etk_core.load("runs/x").predict(["..."])`."""
    return Predictor(path, batch_size=batch_size, backend=backend)
