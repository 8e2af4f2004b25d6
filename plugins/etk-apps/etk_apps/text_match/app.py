"""The `text_match` app: a pair of texts -> one of the training labels.

`app.model`: `cross` (the PLM reads both texts as one sequence: text_classify's pair encoding and model),
`bi` (two-tower: one shared PLM encodes each text on its own), or a classic model (`bicnn`, `hcnn`,
`dam`, `dam_plus`) over the tokenizer's (or a given) vocabulary. Two-tower and classic models take each
text as its own input: `input_ids`/`attention_mask` and `pair_input_ids`/`pair_attention_mask`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from etk_apps.text_classify.app import TextClassify
from etk_core.config import Option
from etk_core.errors import ConfigError, DataError
from etk_core.interfaces import Record

if TYPE_CHECKING:
    import torch

BI_HEADS = ("mlp", "cosine")
SAMPLE_PAIRS = (
    ("how do i reset my password", "how can i change my password"),
    ("where is the nearest train station to the airport in the city centre", "what time is it"),
    ("is it going to rain tomorrow", "will tomorrow be rainy or sunny in the north of the country today"),
    ("my order never arrived", "my order never arrived"),
    ("can i pay with a credit card or only in cash at the shop", "does the store accept cards"),
    ("hi", "what is the best way to learn to play the guitar quickly as an adult beginner at home"),
)


class TextMatch(TextClassify):
    """Classify a pair of texts (paraphrase or not, entailment/neutral/contradiction, ...)."""

    name = "text_match"
    description = ("text-pair matching (paraphrase, NLI): PLM cross-encoder, two-tower, bicnn, hcnn, dam, dam_plus; "
                   "metrics accuracy, macro_f1, auc")
    required_columns = ("text", "text_pair", "label")
    options = {
        **TextClassify.options,
        "model": Option(str, "cross", "cross (PLM cross-encoder), bi (PLM two-tower), or a classic model: bicnn, "
                                      "hcnn, dam, dam_plus"),
        "pooling": Option((str, type(None)), None, "PLM sentence vector: cls or mean (null: cls for cross, mean "
                                                   "for bi)"),
        "bi_head": Option(str, "mlp", "two-tower head: mlp ([u, v, |u-v|, u*v] -> linear) or cosine (2 labels)"),
        "cosine_scale": Option(float, 10.0, "initial scale s of the cosine head's logit s*cos(u, v) + b",
                               above=0),
    }
    MODELS: ClassVar[tuple[str, ...]] = ("cross", "bi", "bicnn", "hcnn", "dam", "dam_plus")

    def __init__(self, options: dict[str, Any], tokenizer: Any, max_length: int,
                 labels: list[str] | None = None) -> None:
        options = dict(options or {})
        if options.get("pooling") is None:
            options["pooling"] = "mean" if options.get("model") == "bi" else "cls"
        super().__init__(options, tokenizer, max_length, labels)
        if self.options["bi_head"] not in BI_HEADS:
            raise ConfigError(f"app.bi_head {self.options['bi_head']!r} is not one of {', '.join(BI_HEADS)}; "
                              f"set e.g. --set app.bi_head=mlp")

    @property
    def separate(self) -> bool:
        """Whether each text is its own input (two-tower and classic models) rather than one joined sequence."""
        return self.options["model"] != "cross"

    # features -------------------------------------------------------------------------------------------
    def encode(self, record: Record, with_label: bool = True) -> dict[str, Any]:
        where = record.get("_where", "?")
        text, pair = record.get("text"), record.get("text_pair")
        if not isinstance(text, str):
            raise DataError(f"{where}: no text (got {text!r}); check the first text column (data.text)")
        if not isinstance(pair, str):
            raise DataError(f"{where}: no text_pair (got {pair!r}); text_match needs two texts per row, name the "
                            f"second column with --set data.text_pair=COLUMN")
        if not self.separate:
            return super().encode(record, with_label)
        vocabulary = self.vocabulary  # the tokenizer's for `bi`
        left = vocabulary.encode(text, None, self.max_length)
        right = vocabulary.encode(pair, None, self.max_length)
        features: dict[str, Any] = {"input_ids": left["input_ids"], "attention_mask": left["attention_mask"],
                                    "pair_input_ids": right["input_ids"],
                                    "pair_attention_mask": right["attention_mask"]}
        if with_label:
            features["label"] = self.label_id(record)
        return features

    def length(self, features: dict[str, Any]) -> int:
        return max(len(features["input_ids"]), len(features.get("pair_input_ids", ())))

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Cross: as text_classify. Separate inputs: both texts padded to one length, the longest text of the
        batch (`hcnn`: always `max_length`, for its fixed-size interaction map)."""
        if not self.separate:
            return super().collate(features)
        import torch

        from etk_apps.padding import padded

        longest = self.max_length if self.options["model"] == "hcnn" else max(self.length(f) for f in features)
        batch = {key: padded(features, key, value, longest)
                 for key, value in (("input_ids", self.pad_id), ("attention_mask", 0),
                                    ("pair_input_ids", self.pad_id), ("pair_attention_mask", 0))}
        if all("label" in f for f in features):
            batch["labels"] = torch.tensor([f["label"] for f in features], dtype=torch.long)
        return batch

    # model ----------------------------------------------------------------------------------------------
    def build_model(self, encoder: Any) -> torch.nn.Module:
        if self.options["model"] != "bi":
            return super().build_model(encoder)  # cross: text_classify's classifier; classic: by name
        from etk_apps.text_match.two_tower import TwoTower

        if not self.labels:
            raise RuntimeError("text_match: call fit_labels() or pass labels= before build_model()")
        if self.options["bi_head"] == "cosine" and len(self.labels) != 2:
            raise ConfigError(f"app.bi_head=cosine needs 2 labels, the training data has {len(self.labels)} "
                              f"({', '.join(self.labels)}); use --set app.bi_head=mlp")
        return TwoTower(encoder, len(self.labels), self.options["pooling"], self.options["bi_head"],
                        float(self.options["dropout"]), float(self.options["cosine_scale"]))

    def export_samples(self) -> list[Record]:
        return [{"text": a, "text_pair": b, "_where": f"sample {i + 1}"} for i, (a, b) in enumerate(SAMPLE_PAIRS)]
