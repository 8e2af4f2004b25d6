"""The `mrc` app: extractive reading comprehension (SQuAD-style spans) over sliding passage windows."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from etk_core.config import Option
from etk_core.errors import ConfigError, DataError
from etk_core.interfaces import App, Record

if TYPE_CHECKING:
    import numpy as np
    import torch

    from etk_apps.mrc.windows import Window

logger = logging.getLogger("etk.apps.mrc")

MODELS = ("plm", "hae")
_NONE = type(None)


class Mrc(App):
    """Find the answer to a question as a span of its passage; `hae` also reads earlier dialogue answers."""

    name = "mrc"
    description = "extractive reading comprehension: answer spans over passage windows (plm, hae); metrics EM, F1"
    main_metric = "f1"
    required_columns = ("text", "text_pair", "answers")
    export_outputs = ("start_logits", "end_logits")
    options = {
        "model": Option(str, "plm", "plm (span head on the encoder) or hae (plus history answer embedding)"),
        "doc_stride": Option(int, 128, "passage tokens shared by neighbouring windows (capped at half a window)",
                             min=0),
        "max_question_len": Option(int, 64, "question tokens kept (the rest is cut)", min=1),
        "max_answer_len": Option(int, 30, "longest predicted answer, in tokens", min=1),
        "top_k": Option(int, 20, "start and end candidates per window when decoding spans", min=1),
        "history_turns": Option((int, _NONE), None, "hae: earlier turns whose answers are marked (null: all)",
                                min=0),
        "dropout": Option(float, 0.1, "dropout before the span head", min=0, below=1),
    }

    def __init__(self, options: dict[str, Any], tokenizer: Any, max_length: int,
                 labels: list[str] | None = None) -> None:
        merged = {key: option.default for key, option in self.options.items()}
        merged.update(options or {})
        super().__init__(merged, tokenizer, max_length, None)
        if merged["model"] not in MODELS:
            raise ConfigError(f"app.model {merged['model']!r} is not an mrc model ({', '.join(MODELS)}); "
                              f"set e.g. --set app.model=hae")
        for key, least in (("doc_stride", 0), ("max_question_len", 1), ("max_answer_len", 1), ("top_k", 1)):
            if int(merged[key]) < least:
                raise ConfigError(f"app.{key} is {merged[key]}, must be >= {least}; set e.g. "
                                  f"--set app.{key}={Mrc.options[key].default}")
        turns = merged["history_turns"]
        if turns is not None and int(turns) < 0:
            raise ConfigError(f"app.history_turns is {turns}, must be >= 0 or null (all earlier turns)")
        if not 0.0 <= float(merged["dropout"]) < 1.0:
            raise ConfigError(f"app.dropout {merged['dropout']!r} must be in [0, 1); set e.g. --set app.dropout=0.1")
        self._plan: tuple[int, int] | None = None

    @property
    def uses_history(self) -> bool:
        """Whether features carry the history answer mask (the `hae` model)."""
        return self.options["model"] == "hae"

    def fit_labels(self, records: list[Record]) -> None:
        """Spans need no label set; answers are checked when the records are encoded."""

    # features -------------------------------------------------------------------------------------------
    def _window_plan(self) -> tuple[int, int]:
        """(question tokens kept, tokenizer stride): `app.max_question_len` capped at half a window, and
        `app.doc_stride` capped at half the passage room left beside the longest question."""
        if self._plan is None:
            if not getattr(self.tokenizer, "is_fast", False):
                name = type(self.tokenizer).__name__
                raise ConfigError(f"mrc needs a fast (Rust) tokenizer for character offsets; {name} is not one; "
                                  f"choose a backbone with a fast tokenizer")
            free = self.max_length - self.tokenizer.num_special_tokens_to_add(pair=True)
            if free < 4:
                raise ConfigError(f"train.max_length {self.max_length} is too short for a question and a passage; "
                                  f"set e.g. --set train.max_length=384")
            question = min(int(self.options["max_question_len"]), free // 2)
            overlap = min(int(self.options["doc_stride"]), (free - question) // 2)
            self._plan = (question, overlap)
            if (question, overlap) != (self.options["max_question_len"], self.options["doc_stride"]):
                logger.info("mrc: windows of train.max_length %d keep %d question tokens and share %d passage "
                            "tokens (app.max_question_len %d and app.doc_stride %d are capped at half a window)",
                            self.max_length, question, overlap, self.options["max_question_len"],
                            self.options["doc_stride"])
        return self._plan

    def encode(self, record: Record, with_label: bool = True) -> dict[str, Any]:
        """The features of the record's first window (`encode_all` gives every window)."""
        return self.encode_all([record], with_label)[0]

    def encode_all(self, records: list[Record], with_label: bool = True) -> list[dict[str, Any]]:
        """One feature per passage window, each with `owner` (record index), `offsets` (token character spans,
        an int32 array, -1 outside the passage) and `context`; with
        labels also `label` (answer start/end token, or the CLS index twice) and `answers` (gold texts)."""
        from etk_apps.mrc.answers import gold_answers, history_spans, locate
        from etk_apps.mrc.windows import answer_positions, history_mask, make_windows, truncate_question

        question_len, overlap = self._window_plan()
        questions, contexts, golds, spans, histories = [], [], [], [], []
        for record in records:
            question, context = _texts(record)
            questions.append(truncate_question(self.tokenizer, question, question_len))
            contexts.append(context)
            if with_label:
                answers = gold_answers(record)
                golds.append([text for text, _ in answers])
                located = [locate(context, answer, record) for answer in answers if answer[0]]
                spans.append(located[0] if located else None)
            if self.uses_history:
                histories.append(history_spans(record, context, self.options["history_turns"]))
        features = []
        for window in make_windows(self.tokenizer, questions, contexts, self.max_length, overlap):
            feature = self._window_features(window, contexts[window.owner])
            if self.uses_history:
                feature["history_mask"] = history_mask(window, histories[window.owner])
            if with_label:
                feature["label"] = list(answer_positions(window, spans[window.owner]))
                feature["answers"] = golds[window.owner]
            features.append(feature)
        return features

    @staticmethod
    def _window_features(window: Window, context: str) -> dict[str, Any]:
        from etk_apps.mrc.spans import offsets_array

        feature: dict[str, Any] = {"input_ids": window.input_ids, "attention_mask": window.attention_mask}
        if window.token_type_ids is not None:
            feature["token_type_ids"] = window.token_type_ids
        feature.update(passage_mask=window.passage_mask, owner=window.owner,
                       offsets=offsets_array(window.offsets), context=context)
        return feature

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        import torch

        from etk_apps.padding import encoder_inputs, padded

        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        batch = encoder_inputs(features, pad_id)
        batch["passage_mask"] = padded(features, "passage_mask", 0)
        if self.uses_history:
            batch["history_mask"] = padded(features, "history_mask", 0)
        if all("label" in f for f in features):
            batch["labels"] = torch.tensor([f["label"] for f in features], dtype=torch.long)
        return batch

    # model ----------------------------------------------------------------------------------------------
    def build_model(self, encoder: Any) -> torch.nn.Module:
        from etk_apps.mrc.model import SpanExtractor

        return SpanExtractor(encoder, float(self.options["dropout"]), history=self.uses_history)

    # outputs --------------------------------------------------------------------------------------------
    def _decode(self, outputs: dict[str, np.ndarray], features: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """The best answer of every owner (record index) over its windows."""
        from etk_apps.mrc.spans import decode_answer

        if len(outputs["start_logits"]) != len(features):
            raise ValueError(f"mrc: {len(outputs['start_logits'])} outputs for {len(features)} windows")
        windows: dict[int, list[Any]] = {}
        for index, feature in enumerate(features):
            windows.setdefault(feature["owner"], []).append(
                (outputs["start_logits"][index], outputs["end_logits"][index], feature["offsets"]))
        contexts = {feature["owner"]: feature["context"] for feature in features}
        return {owner: decode_answer(contexts[owner], rows, int(self.options["max_answer_len"]),
                                     int(self.options["top_k"]))
                for owner, rows in windows.items()}

    def metrics(self, outputs: dict[str, np.ndarray], features: list[dict[str, Any]]) -> dict[str, float]:
        from etk_apps.mrc.scores import squad_scores

        predicted = self._decode(outputs, features)
        golds = {f["owner"]: f["answers"] for f in features if "answers" in f}
        owners = sorted(golds)
        return squad_scores([str(predicted[o]["answer"]) for o in owners], [golds[o] for o in owners])

    def postprocess(self, outputs: dict[str, np.ndarray], records: list[Record],
                    features: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        if features is None:
            raise ValueError("mrc: postprocess needs the features (windows) the outputs belong to")
        predicted = self._decode(outputs, features)
        empty = {"answer": "", "start": 0, "end": 0, "score": 0.0}
        return [dict(predicted.get(index, empty)) for index in range(len(records))]

    def state(self) -> dict[str, Any]:
        return {"labels": None, "options": dict(self.options)}

    def export_samples(self) -> list[Record]:
        """Questions over passages of varied length (the longest spans several windows), with history."""
        sentences = ["the river runs past the old mill .", "a red kite circles above the hill .",
                     "children play near the stone bridge .", "the baker opens his shop at dawn ."]
        samples = []
        for index in range(4):
            context = " ".join(sentences[(index + k) % len(sentences)] for k in range(1 + 12 * index))
            answer = context.split(" . ")[0].split()[-1]
            history = [{"question": "where ?", "answer": {"text": answer, "answer_start": context.index(answer)}}]
            samples.append({"text": "what does the text say " * (index + 1) + "?", "text_pair": context,
                            "history": history, "_where": f"sample {index + 1}"})
        return samples


def _texts(record: Record) -> tuple[str, str]:
    where = record.get("_where", "?")
    question, context = record.get("text"), record.get("text_pair")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: no question (got {question!r:.40}); check the question column (data.text)")
    if not isinstance(context, str) or not context.strip():
        raise DataError(f"{where}: no passage (got {context!r:.40}); mrc reads the passage from the context "
                        f"column (set data.text_pair=COLUMN)")
    return question, context
