"""The `text_classify` app: records to token ids, batches, the classifier, metrics and predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from etk_apps.classic import CLASSIC_MODELS, CLASSIC_OPTIONS, Vocabulary
from etk_apps.classic.options import check_classic_options
from etk_core.config import Option
from etk_core.errors import ConfigError, DataError
from etk_core.interfaces import App, Record

if TYPE_CHECKING:
    import numpy as np
    import torch

POOLINGS = ("cls", "mean")


def _source(records: list[Record]) -> str:
    """The file the records came from (their `_where` without the line), for error messages."""
    where = str(records[0].get("_where", "the training data")) if records else "the training data"
    return where.rsplit(":", 1)[0] if ":" in where else where


class TextClassify(App):
    """Classify a text (or a text pair) into one of the labels seen in training."""

    name = "text_classify"
    description = ("text (or text-pair) classification into string labels (PLM or textcnn); metrics accuracy, "
                   "macro_f1, auc")
    main_metric = "accuracy"
    required_columns = ("text", "label")
    options = {
        "pooling": Option(str, "cls", "sentence vector: 'cls' (first token) or 'mean' (over real tokens)"),
        "dropout": Option(float, 0.1, "dropout before the classification head", min=0, below=1),
        "model": Option(str, "plm", "'plm' (the backbone encoder + linear head) or 'textcnn' (classic: takes only "
                                    "the tokenizer's vocabulary)"),
        **CLASSIC_OPTIONS,
    }
    #: Values of app.model.
    MODELS: ClassVar[tuple[str, ...]] = ("plm", "textcnn")

    def __init__(self, options: dict[str, Any], tokenizer: Any, max_length: int,
                 labels: list[str] | None = None) -> None:
        merged = {key: option.default for key, option in self.options.items()}
        merged.update(options or {})
        super().__init__(merged, tokenizer, max_length, list(labels) if labels is not None else None)
        if merged["pooling"] not in POOLINGS:
            raise ConfigError(f"app.pooling {merged['pooling']!r} is not one of {', '.join(POOLINGS)}; "
                              f"set e.g. --set app.pooling=cls")
        if not 0.0 <= float(merged["dropout"]) < 1.0:
            raise ConfigError(f"app.dropout {merged['dropout']!r} must be in [0, 1); set e.g. --set app.dropout=0.1")
        if merged["model"] not in self.MODELS:
            raise ConfigError(f"app.model {merged['model']!r} is not one of {', '.join(self.MODELS)}; "
                              f"set e.g. --set app.model={self.MODELS[0]}")
        check_classic_options(merged, self.classic)
        self._vocabulary: Vocabulary | None = None

    @property
    def classic(self) -> bool:
        """Whether app.model is a classic (non-PLM) model, which ignores the encoder."""
        return self.options["model"] in CLASSIC_MODELS

    @property
    def uses_encoder(self) -> bool:
        return not self.classic

    @property
    def vocabulary(self) -> Vocabulary:
        """Token ids of classic models (the tokenizer's unless app.vocab gives a word list)."""
        if self._vocabulary is None:
            self._vocabulary = Vocabulary.from_option(self.options.get("vocab"), self.tokenizer)
        return self._vocabulary

    @property
    def pad_id(self) -> int:
        if self.classic:
            return self.vocabulary.pad_id
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    # labels ---------------------------------------------------------------------------------------------
    def fit_labels(self, records: list[Record]) -> None:
        labels = sorted({str(r["label"]) for r in records if r.get("label") is not None})
        if len(labels) < 2:
            found = f"only {labels[0]!r}" if labels else "no labels"
            raise DataError(f"{_source(records)}: text_classify needs at least 2 label values in training data, "
                            f"found {found}; check the label column (data.label)")
        self.labels = labels

    @property
    def label_ids(self) -> dict[str, int]:
        """label string -> class index, following `self.labels`."""
        if self.labels is None:
            raise RuntimeError("text_classify: call fit_labels() or pass labels= before encoding labels")
        key = tuple(self.labels)
        if getattr(self, "_label_key", None) != key:
            self._label_key, self._label_map = key, {label: index for index, label in enumerate(key)}
        return self._label_map

    # features -------------------------------------------------------------------------------------------
    def encode(self, record: Record, with_label: bool = True) -> dict[str, Any]:
        where = record.get("_where", "?")
        text, pair = record.get("text"), record.get("text_pair")
        if not isinstance(text, str):
            raise DataError(f"{where}: no text (got {text!r}); check the text column (data.text)")
        if pair is not None and not isinstance(pair, str):
            raise DataError(f"{where}: text_pair must be text, got {pair!r}; check data.text_pair")
        if self.classic:
            encoded = self.vocabulary.encode(text, pair, self.max_length)
        else:
            encoded = self.tokenizer(text, pair, truncation=True, max_length=self.max_length)
        features: dict[str, Any] = {"input_ids": list(encoded["input_ids"]),
                                    "attention_mask": list(encoded["attention_mask"])}
        if "token_type_ids" in encoded:
            features["token_type_ids"] = list(encoded["token_type_ids"])
        if with_label:
            features["label"] = self.label_id(record)
        return features

    def label_id(self, record: Record) -> int:
        """The class index of a record's label; a missing or unknown label is a DataError."""
        where = record.get("_where", "?")
        label = record.get("label")
        if label is None:
            raise DataError(f"{where}: no label; every training and evaluation row needs one (data.label)")
        label = str(label)
        if label not in self.label_ids:
            raise DataError(f"{where}: label {label!r} is not one of the training labels {self.labels}")
        return self.label_ids[label]

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        import torch

        from etk_apps.padding import encoder_inputs

        batch = encoder_inputs(features, self.pad_id)
        if all("label" in f for f in features):
            batch["labels"] = torch.tensor([f["label"] for f in features], dtype=torch.long)
        return batch

    # model ----------------------------------------------------------------------------------------------
    def build_model(self, encoder: Any) -> torch.nn.Module:
        from etk_apps.text_classify.model import TextClassifier

        if not self.labels:
            raise RuntimeError("text_classify: call fit_labels() or pass labels= before build_model()")
        if self.classic:
            from etk_apps.classic.build import build_classic_model

            return build_classic_model(self.options["model"], self.vocabulary, self.options, len(self.labels),
                                       self.max_length)
        return TextClassifier(encoder, len(self.labels), self.options["pooling"], float(self.options["dropout"]))

    # outputs --------------------------------------------------------------------------------------------
    def metrics(self, outputs: dict[str, np.ndarray], features: list[dict[str, Any]]) -> dict[str, float]:
        import numpy as np

        from etk_apps.text_classify.scores import classification_metrics

        logits = np.asarray(outputs["logits"])
        keep = [i for i, f in enumerate(features) if "label" in f]
        gold = np.array([features[i]["label"] for i in keep], dtype=np.int64)
        return classification_metrics(logits[keep], gold)

    def postprocess(self, outputs: dict[str, np.ndarray], records: list[Record],
                    features: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        from etk_apps.text_classify.scores import softmax

        probabilities = softmax(outputs["logits"])
        if len(probabilities) != len(records):
            raise ValueError(f"text_classify: {len(probabilities)} outputs for {len(records)} records")
        labels = self.labels or []
        return [{"label": labels[int(row.argmax())],
                 "probabilities": {label: float(p) for label, p in zip(labels, row)}}
                for row in probabilities]

    def state(self) -> dict[str, Any]:
        options = dict(self.options)
        if self.classic:  # the artifact keeps a given word list and the trained embeddings, not their files
            options["vocab"] = self.vocabulary.words
            options["embeddings"] = None
        return {"labels": list(self.labels) if self.labels is not None else None, "options": options}
