"""Request and response models of the HTTP API (pydantic): validation and the OpenAPI description."""

from __future__ import annotations

import json
import re
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


#: Deepest JSON nesting read; a valid body nests 3 deep (`{"inputs": [{"text": ...}]}`).
MAX_JSON_DEPTH = 16
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class BodyError(ValueError):
    """The body is not JSON etk reads (400): the message says what and where."""


def _depth_over(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit` (stops at the first level past it)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return True
        elif token in "]}":
            depth -= 1
    return False


def _no_constant(name: str) -> Any:
    raise BodyError(f"{name} is not a JSON number; send finite numbers only")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BodyError(f"key {key[:40]!r} appears twice in one object; send each field once")
        out[key] = value
    return out


def parse_json(body: bytes) -> Any:
    """The body as JSON: UTF-8, nested at most MAX_JSON_DEPTH deep, no NaN/Infinity, no duplicate keys;
    raises BodyError with a one-line message otherwise."""
    hint = '; send {"inputs": ["a text", ...]}'
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"request body is not UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})"
                        f"{hint}") from None
    if not text.strip():
        raise BodyError(f"request body is empty{hint}")
    if _depth_over(text, MAX_JSON_DEPTH):
        raise BodyError(f"request body nests deeper than {MAX_JSON_DEPTH} levels{hint}")
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise BodyError(f"request body is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
                        f"{hint}") from None
    except BodyError as exc:
        raise BodyError(f"request body: {exc}") from None
    except (ValueError, RecursionError):  # e.g. an integer over Python's 4300-digit limit
        raise BodyError(f"request body holds a value JSON readers refuse (a number too long?){hint}") from None


def _unencodable(text: str) -> str | None:
    """Why `text` cannot be encoded as UTF-8 (a lone surrogate from a `\\ud800` escape), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"not valid Unicode: lone surrogate \\u{ord(text[exc.start]):04x} at character {exc.start}"
    return None


def limit_error(request: PredictRequest, max_inputs: int, max_text_chars: int) -> str | None:
    """Why the request is over a configured limit or holds a text that cannot be encoded, or None."""
    if len(request.inputs) > max_inputs:
        return (f"inputs: {len(request.inputs)} inputs, more than the limit of {max_inputs} (--max-inputs); "
                f"split the request")
    for i, item in enumerate(request.inputs):
        texts = [("text", item)] if isinstance(item, str) else [("text", item.text), ("text_pair", item.text_pair)]
        for field, text in texts:
            if text is None:
                continue
            where = f"inputs[{i}]" if isinstance(item, str) else f"inputs[{i}].{field}"
            if len(text) > max_text_chars:
                return (f"{where}: {len(text)} characters, more than the limit of {max_text_chars} "
                        f"(--max-text-chars); shorten the text")
            problem = _unencodable(text)
            if problem:
                return f"{where}: {problem}; send UTF-8 text"
    return None
