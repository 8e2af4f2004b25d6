"""BERT size presets: randomly initialised BertModels with the BERT uncased vocabulary."""

from __future__ import annotations

from typing import Any, ClassVar

from etk_core.interfaces import Backbone

#: name -> (layers, hidden, heads, parameters in millions with the 30,522-token vocabulary)
SIZES: dict[str, tuple[int, int, int, float]] = {
    "bert-tiny": (2, 128, 2, 4.4),
    "bert-mini": (4, 256, 4, 11.2),
    "bert-small": (4, 512, 8, 28.8),
    "bert-medium": (8, 512, 8, 41.4),
    "bert-base": (12, 768, 12, 109.5),
    "bert-large": (24, 1024, 16, 335.1),
}
VOCAB_SIZE = 30522
MAX_POSITIONS = 512


class BertPreset(Backbone):
    """A randomly initialised BERT of a fixed size (seeded by the core through torch's RNG)."""

    layers: ClassVar[int] = 0
    hidden: ClassVar[int] = 0
    heads: ClassVar[int] = 0
    options = {}

    @classmethod
    def config(cls, vocab_size: int = VOCAB_SIZE, pad_token_id: int = 0) -> Any:
        """The BertConfig of this size (intermediate size 4 x hidden)."""
        from transformers import BertConfig

        return BertConfig(vocab_size=vocab_size, hidden_size=cls.hidden, num_hidden_layers=cls.layers,
                          num_attention_heads=cls.heads, intermediate_size=4 * cls.hidden,
                          max_position_embeddings=MAX_POSITIONS, pad_token_id=pad_token_id)

    def load(self) -> tuple[Any, Any]:
        from transformers import BertModel

        from etk_zoo.minilm import load_tokenizer, minilm_folder

        tokenizer = load_tokenizer(minilm_folder(self.name))
        encoder = BertModel(self.config(len(tokenizer), tokenizer.pad_token_id))
        return encoder, tokenizer


def _make(name: str, layers: int, hidden: int, heads: int, millions: float) -> type[BertPreset]:
    description = (f"BERT preset, random init: {layers} layers, hidden {hidden}, {heads} heads, "
                   f"{millions}M params (uncased vocab)")
    attrs = {"name": name, "description": description, "layers": layers, "hidden": hidden, "heads": heads,
             "__doc__": f"{name}: {description}."}
    class_name = "".join(part.capitalize() for part in name.split("-"))
    return type(class_name, (BertPreset,), attrs)


PRESETS: tuple[type[BertPreset], ...] = tuple(_make(name, *size) for name, size in SIZES.items())
# Expose each generated class as a module attribute (etk_zoo.presets.BertTiny, ...), e.g. for pickling.
globals().update({cls.__name__: cls for cls in PRESETS})
