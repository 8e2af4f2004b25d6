"""In-process prediction and evaluation with a model artifact (the code path `etk predict` uses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etk_core.interfaces import Record


def evaluate_features(model: Any, app: Any, features: list[dict[str, Any]], batch_size: int,
                      device: Any = "cpu") -> dict[str, float]:
    """The app's metrics of `model` on encoded, labelled features."""
    from etk_core.training.evaluation import predict_outputs

    outputs = predict_outputs(model, app, features, batch_size, device)
    return {key: float(value) for key, value in app.metrics(outputs, features).items()}


class Predictor:
    """A loaded artifact that predicts for records (dicts with `text`, `text_pair`, ...) or plain strings."""

    def __init__(self, path: str | Path, batch_size: int = 64) -> None:
        from etk_core.artifact import load_artifact

        self.artifact = load_artifact(path)
        self.app = self.artifact.app
        self.model = self.artifact.model
        self.batch_size = batch_size

    @staticmethod
    def _records(inputs: list[Any]) -> list[Record]:
        return [item if isinstance(item, dict) else {"text": item, "_where": f"input {i + 1}"}
                for i, item in enumerate(inputs)]

    def predict(self, inputs: list[Any]) -> list[dict[str, Any]]:
        """User-facing predictions, one per input."""
        from etk_core.training.evaluation import predict_outputs

        records = self._records(inputs)
        features = [self.app.encode(record, with_label=False) for record in records]
        outputs = predict_outputs(self.model, self.app, features, self.batch_size)
        return self.app.postprocess(outputs, records)

    def evaluate(self, records: list[Record]) -> dict[str, float]:
        """Metrics on labelled records."""
        features = [self.app.encode(record) for record in records]
        return evaluate_features(self.model, self.app, features, self.batch_size)


def load(path: str | Path, batch_size: int = 64) -> Predictor:
    """Load a model artifact (or a run folder) for prediction: `etk_core.load("runs/x").predict(["..."])`."""
    return Predictor(path, batch_size=batch_size)
