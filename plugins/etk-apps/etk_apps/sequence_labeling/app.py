"""The `sequence_labeling` app: words and BIO tags to sub-token features, the tagger, entity metrics and
user-facing entities. Decoding (constrained Viterbi) runs in numpy on the model outputs, for every backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etk_apps.sequence_labeling.bio import OUTSIDE, parse_tag, tag_set
from etk_core.config import Option
from etk_core.errors import ConfigError, DataError
from etk_core.interfaces import App, Record

if TYPE_CHECKING:
    import numpy as np
    import torch

MODELS = ("softmax", "bert_crf", "bert_bilstm_crf")
IGNORE = -100


def _source(records: list[Record]) -> str:
    where = str(records[0].get("_where", "the training data")) if records else "the training data"
    return where.rsplit(":", 1)[0] if ":" in where else where


def _tags(record: Record) -> list[str]:
    """The record's tag list (a whitespace-separated string is split); a DataError when there is none."""
    tags = record.get("tags")
    if isinstance(tags, str):
        tags = tags.split()
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise DataError(f"{record.get('_where', '?')}: no tag list (got {type(tags).__name__}); every training "
                        f"and evaluation sentence needs one tag per word (data.tags)")
    return tags


class SequenceLabeling(App):
    """Tag every word with a BIO tag (`O`, `B-TYPE`, `I-TYPE`) and read entities off the tags."""

    name = "sequence_labeling"
    description = "BIO tagging of words (NER): softmax, bert_crf or bert_bilstm_crf head; entity-level F1"
    main_metric = "f1"
    required_columns = ("tokens", "tags")
    export_outputs = ("emissions", "transitions")
    options = {
        "model": Option(str, "softmax", "head: softmax (linear + cross-entropy), bert_crf, bert_bilstm_crf"),
        "dropout": Option(float, 0.1, "dropout on the encoder states (and the BiLSTM outputs)", min=0,
                          below=1),
        "lstm_hidden": Option(int, 128, "bert_bilstm_crf: hidden units per LSTM direction", min=1),
        "crf_lr_mult": Option(float, 100.0, "CRF scores learn this many times faster than the encoder",
                              above=0),
    }

    def __init__(self, options: dict[str, Any], tokenizer: Any, max_length: int,
                 labels: list[str] | None = None) -> None:
        merged = {key: option.default for key, option in self.options.items()}
        merged.update(options or {})
        super().__init__(merged, tokenizer, max_length, list(labels) if labels is not None else None)
        if merged["model"] not in MODELS:
            raise ConfigError(f"app.model {merged['model']!r} is not one of {', '.join(MODELS)}; "
                              f"set e.g. --set app.model=bert_crf")
        if not 0.0 <= float(merged["dropout"]) < 1.0:
            raise ConfigError(f"app.dropout {merged['dropout']!r} must be in [0, 1); set e.g. --set app.dropout=0.1")
        if int(merged["lstm_hidden"]) < 1:
            raise ConfigError(f"app.lstm_hidden {merged['lstm_hidden']!r} must be at least 1; e.g. 128")
        if float(merged["crf_lr_mult"]) <= 0:
            raise ConfigError(f"app.crf_lr_mult {merged['crf_lr_mult']!r} must be positive (1: no speed-up)")

    # labels ---------------------------------------------------------------------------------------------
    def fit_labels(self, records: list[Record]) -> None:
        seen: set[str] = set()
        for record in records:
            for index, tag in enumerate(_tags(record)):
                if tag not in seen:
                    self._check_tag(record, index, tag)
                    seen.add(tag)
        labels = tag_set(seen)
        if len(labels) < 2:
            raise DataError(f"{_source(records)}: sequence_labeling found no entity tags (only O) in the training "
                            f"data; check the tags column (data.tags)")
        self.labels = labels

    @staticmethod
    def _check_tag(record: Record, index: int, tag: str) -> None:
        try:
            parse_tag(tag)
        except ValueError as exc:
            word = _word(record, index)
            raise DataError(f"{record.get('_where', '?')}: word {index + 1}{word}: {exc}; sequence_labeling reads "
                            f"BIO/IOB2 tags") from None

    @property
    def label_ids(self) -> dict[str, int]:
        """tag -> id, following `self.labels`."""
        if self.labels is None:
            raise RuntimeError("sequence_labeling: call fit_labels() or pass labels= before encoding tags")
        key = tuple(self.labels)
        if getattr(self, "_label_key", None) != key:
            self._label_key, self._label_map = key, {label: index for index, label in enumerate(key)}
        return self._label_map

    # features -------------------------------------------------------------------------------------------
    def encode(self, record: Record, with_label: bool = True) -> dict[str, Any]:
        from etk_apps.sequence_labeling.features import align, record_words

        words, _, _ = record_words(record)
        features = align(self.tokenizer, words, self.max_length)
        if not with_label:
            return features
        where = record.get("_where", "?")
        tags = _tags(record)
        if len(tags) != len(words):
            raise DataError(f"{where}: {len(words)} words but {len(tags)} tags; give one tag per word")
        ids = []
        for index, tag in enumerate(tags):
            if tag not in self.label_ids:
                self._check_tag(record, index, tag)
                raise DataError(f"{where}: word {index + 1}{_word(record, index)}: tag {tag!r} is not one of the "
                                f"training tags ({', '.join(self.labels or [])})")
            ids.append(self.label_ids[tag])
        if all(start < 0 for start in features["word_starts"]):
            raise DataError(f"{where}: no word of this sentence survives tokenisation; check the tokens")
        labels = [IGNORE] * len(features["input_ids"])
        for word, start in enumerate(features["word_starts"]):
            if start >= 0:
                labels[start] = ids[word]
        features["tag_ids"], features["labels"] = ids, labels
        return features

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        from etk_apps.padding import encoder_inputs, padded

        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        batch = encoder_inputs(features, pad_id)
        if all("labels" in f for f in features):
            batch["labels"] = padded(features, "labels", IGNORE)
        return batch

    # model ----------------------------------------------------------------------------------------------
    def build_model(self, encoder: Any) -> torch.nn.Module:
        from etk_apps.sequence_labeling.model import SequenceTagger

        if not self.labels:
            raise RuntimeError("sequence_labeling: call fit_labels() or pass labels= before build_model()")
        return SequenceTagger(encoder, len(self.labels), self.options["model"], float(self.options["dropout"]),
                              int(self.options["lstm_hidden"]), float(self.options["crf_lr_mult"]))

    # outputs --------------------------------------------------------------------------------------------
    def decode(self, outputs: dict[str, np.ndarray], features: list[dict[str, Any]]) -> list[list[str]]:
        """The predicted tag of every word of every feature (BIO-constrained Viterbi over the word emissions;
        words without a sub-token, i.e. cut off by max_length, get `O`)."""
        import numpy as np

        from etk_apps.sequence_labeling.viterbi import decode

        labels = self.labels or []
        if not features:
            return []
        kept = [[word for word, start in enumerate(f["word_starts"]) if start >= 0] for f in features]
        rows = [np.asarray(outputs["emissions"][i])[[f["word_starts"][w] for w in kept[i]]]
                for i, f in enumerate(features)]
        paths = decode(rows, np.asarray(outputs["transitions"][0]), labels)
        return [_fill(len(f["word_starts"]), words, [labels[t] for t in path])
                for f, words, path in zip(features, kept, paths)]

    def metrics(self, outputs: dict[str, np.ndarray], features: list[dict[str, Any]]) -> dict[str, float]:
        from etk_apps.sequence_labeling.scores import entity_scores

        labels = self.labels or []
        keep = [i for i, f in enumerate(features) if "tag_ids" in f]
        if not keep:
            return {}
        predicted = self.decode({key: [value[i] for i in keep] for key, value in outputs.items()},
                                [features[i] for i in keep])
        gold = [[labels[t] for t in features[i]["tag_ids"]] for i in keep]
        return entity_scores(gold, predicted)

    def postprocess(self, outputs: dict[str, np.ndarray], records: list[Record],
                    features: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        from etk_apps.sequence_labeling.bio import entities
        from etk_apps.sequence_labeling.features import record_words

        features = features if features is not None else self.encode_all(records, with_label=False)
        if len(features) != len(records):
            raise ValueError(f"sequence_labeling: {len(features)} features for {len(records)} records")
        predictions = []
        for record, tags in zip(records, self.decode(outputs, features)):
            _, text, spans = record_words(record)
            found = [{"text": text[spans[start][0]:spans[end - 1][1]], "type": kind, "start": spans[start][0],
                      "end": spans[end - 1][1], "token_start": start, "token_end": end}
                     for kind, start, end in entities(tags)]
            predictions.append({"tags": tags, "entities": found})
        return predictions

    def state(self) -> dict[str, Any]:
        return {"labels": list(self.labels) if self.labels is not None else None, "options": dict(self.options)}

    def export_samples(self) -> list[Record]:
        words = ("Peter Blackburn of the European Commission said on 1996-08-22 in BRUSSELS that Germany would "
                 "not boycott lamb").split()
        return [{"tokens": words[: 2 + (5 * i) % len(words)] * (1 + i // 3), "_where": f"sample {i + 1}"}
                for i in range(6)]


def _word(record: Record, index: int) -> str:
    tokens = record.get("tokens")
    if isinstance(tokens, str):
        tokens = tokens.split()
    return f" ({tokens[index]!r})" if isinstance(tokens, list) and index < len(tokens) else ""


def _fill(count: int, words: list[int], tags: list[str]) -> list[str]:
    """Tags of all `count` words from the tags of the decoded `words`: a word between two decoded ones takes
    `I-X` when the next decoded word continues an entity (so it stays inside it), else `O`."""
    out = [OUTSIDE] * count
    for word, tag in zip(words, tags):
        out[word] = tag
    following = OUTSIDE
    decoded = set(words)
    for word in range(count - 1, -1, -1):
        if word in decoded:
            following = out[word]
        elif following.startswith("I-"):  # constrained decoding put B-X or I-X before it
            out[word] = following
    return out
