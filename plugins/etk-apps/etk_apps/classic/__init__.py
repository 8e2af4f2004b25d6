"""Classic (non-PLM) models and their shared pieces: vocabulary (the backbone tokenizer's or a given one),
embeddings (random or from word vectors), masked conv encoders and pooling; TextCNN, BiCNN, HCNN, DAM, DAM+.

This module and `options`/`vocab` import no torch; the model modules do.
"""

from etk_apps.classic.options import CLASSIC_MODELS, CLASSIC_OPTIONS
from etk_apps.classic.vocab import Vocabulary

__all__ = ["CLASSIC_MODELS", "CLASSIC_OPTIONS", "Vocabulary"]
