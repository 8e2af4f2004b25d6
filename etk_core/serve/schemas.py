"""Request and response models of the HTTP API (pydantic): validation and the OpenAPI description."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class TextInput(BaseModel):
    """One input given as an object: a text and, for pair tasks, a second text."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(description="The text to classify.")
    text_pair: str | None = Field(None, description="Second text of a pair (pair-classification models).")


def _input_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict | TextInput):
        return "object"
    return None


Input = Annotated[
    Annotated[str, Tag("text")] | Annotated[TextInput, Tag("object")],
    Discriminator(_input_kind, custom_error_type="input_type",
                  custom_error_message="each input must be a string or an object {\"text\": ..., \"text_pair\": ...}"),
]


class PredictRequest(BaseModel):
    """Texts to predict for; each a string or a `{"text", "text_pair"}` object."""

    model_config = ConfigDict(extra="forbid", strict=True,
                              json_schema_extra={"examples": [{"inputs": ["a great book", {"text": "dull"}]}]})

    inputs: list[Input] = Field(min_length=1, description="At least one input, at most --max-inputs (default 64); "
                                                          "each text at most --max-text-chars (default 10000).")


class PredictResponse(BaseModel):
    """One prediction per input, in input order (what `etk predict` and `Predictor.predict` give)."""

    predictions: list[dict[str, Any]] = Field(
        description="For text_classify: {\"label\": str, \"probabilities\": {label: float}}.")


class ModelInfo(BaseModel):
    """What is being served."""

    name: str = Field(description="Run (or artifact folder) name.")
    model: str = Field(description="Backbone name, e.g. minilm-l6.")
    app: str
    algo: str | None = None
    labels: list[str] | None = None
    backend: str = Field(description="torch, onnx or onnx-int8.")
    max_length: int | None = None
    version: str = Field(description="etk version of this server.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Dev metrics recorded at training.")


class ErrorBody(BaseModel):
    """Every error response: one line saying what is wrong."""

    error: str


class Status(BaseModel):
    """Liveness / readiness answer."""

    status: str
    queue_depth: int | None = None


def records(request: PredictRequest) -> list[dict[str, Any]]:
    """The request's inputs as app records (`text`, `text_pair`, `_where`), as `Predictor.records` makes them."""
    out = []
    for i, item in enumerate(request.inputs):
        record: dict[str, Any] = {"text": item} if isinstance(item, str) else {"text": item.text}
        if not isinstance(item, str) and item.text_pair is not None:
            record["text_pair"] = item.text_pair
        record["_where"] = f"input {i + 1}"
        out.append(record)
    return out


def limit_error(request: PredictRequest, max_inputs: int, max_text_chars: int) -> str | None:
    """Why the request is over a configured limit, or None."""
    if len(request.inputs) > max_inputs:
        return (f"inputs: {len(request.inputs)} inputs, more than the limit of {max_inputs} (--max-inputs); "
                f"split the request")
    for i, item in enumerate(request.inputs):
        texts = [("text", item)] if isinstance(item, str) else [("text", item.text), ("text_pair", item.text_pair)]
        for field, text in texts:
            if text is not None and len(text) > max_text_chars:
                where = f"inputs[{i}]" if isinstance(item, str) else f"inputs[{i}].{field}"
                return (f"{where}: {len(text)} characters, more than the limit of {max_text_chars} "
                        f"(--max-text-chars); shorten the text")
    return None
