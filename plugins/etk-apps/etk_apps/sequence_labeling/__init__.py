"""sequence_labeling: one BIO tag per word (named entities and other spans); softmax, CRF and BiLSTM-CRF heads."""

from etk_apps.sequence_labeling.app import SequenceLabeling

__all__ = ["SequenceLabeling"]
