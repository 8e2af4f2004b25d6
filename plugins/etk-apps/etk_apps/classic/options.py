"""Config keys shared by the classic (non-PLM) models and their checks (no heavy imports)."""

from __future__ import annotations

from typing import Any

from etk_core.config import Option
from etk_core.errors import ConfigError

_NONE = type(None)

#: Classic model name -> (conv widths, filters per width) defaults from the spec ("App models").
CONV_DEFAULTS: dict[str, tuple[tuple[int, ...], int]] = {
    "textcnn": ((3, 4, 5), 100),
    "bicnn": ((2, 3, 4), 200),
    "dam_plus": ((2, 3, 4), 200),  # its BiCNN branch
    "hcnn": ((4,), 300),
    "dam": ((), 0),
}
CLASSIC_MODELS = tuple(CONV_DEFAULTS)

CLASSIC_OPTIONS: dict[str, Option] = {
    "embedding_dim": Option(int, 300, "word embedding width of classic (non-PLM) models", min=1),
    "embeddings": Option((str, _NONE), None, "word-vectors text file (GloVe or word2vec text format) that "
                                             "initialises the classic models' embeddings (null: random)", path="file"),
    "vocab": Option((str, _NONE), None, "vocabulary file for classic models, one token per line (or a "
                                        "word-vectors file: its words) (null: the backbone tokenizer's)", path="file"),
    "freeze_embeddings": Option(bool, False, "keep the classic models' embedding table fixed in training"),
    "filter_sizes": Option((list, _NONE), None, "conv widths of classic models (null: textcnn [3,4,5], "
                                                "bicnn/dam_plus [2,3,4], hcnn [4])"),
    "num_filters": Option((int, _NONE), None, "conv filters per width (null: textcnn 100, bicnn/dam_plus 200, "
                                              "hcnn 300)", min=1),
    "hidden_dim": Option(int, 200, "dense layer width of bicnn, hcnn, dam and dam_plus", min=1),
    "abs_difference": Option(bool, False, "bicnn, hcnn, dam_plus: compare the two sentence vectors by |l - r| "
                                          "instead of the spec's l - r"),
    "classic_dropout": Option(float, 0.5, "dropout of classic models (PLM models use app.dropout)", min=0, below=1),
}


def conv_settings(model: str, options: dict[str, Any]) -> tuple[tuple[int, ...], int]:
    """(widths, filters) of a classic model: the options where set, else the model's defaults."""
    widths, filters = CONV_DEFAULTS[model]
    chosen = options.get("filter_sizes")
    return (tuple(int(w) for w in chosen) if chosen else widths), int(options.get("num_filters") or filters)


def check_classic_options(options: dict[str, Any], classic: bool, model_key: str = "app.model") -> None:
    """ConfigError (one line) for a bad classic option, or a classic-only option set for a PLM model."""
    if not classic:
        for key in ("vocab", "embeddings"):
            if options.get(key):
                raise ConfigError(f"app.{key} is used only by classic models ({', '.join(CLASSIC_MODELS)}), "
                                  f"but {model_key}={options.get('model')!r}; remove it or choose a classic model")
        return
    for key in ("embedding_dim", "hidden_dim"):
        if not isinstance(options.get(key), int) or options[key] < 1:
            raise ConfigError(f"app.{key} must be a positive integer, got {options.get(key)!r}; "
                              f"set e.g. --set app.{key}={CLASSIC_OPTIONS[key].default}")
    sizes = options.get("filter_sizes")
    if sizes is not None and (not sizes or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1
                                                   for w in sizes)):
        raise ConfigError(f"app.filter_sizes must be a non-empty list of positive integers, got {sizes!r}; "
                          f"set e.g. --set app.filter_sizes=[3,4,5]")
    filters = options.get("num_filters")
    if filters is not None and filters < 1:
        raise ConfigError(f"app.num_filters must be positive, got {filters!r}; set e.g. --set app.num_filters=100")
    if not 0.0 <= float(options.get("classic_dropout", 0.5)) < 1.0:
        raise ConfigError(f"app.classic_dropout {options.get('classic_dropout')!r} must be in [0, 1); "
                          f"set e.g. --set app.classic_dropout=0.5")
