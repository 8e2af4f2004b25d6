"""The training engine: what algorithms declare (`Stage`, `Stream`, `Trainable`, `StepContext`,
`StreamBatch`) and what runs it (the loop, batching, checkpoints, evaluation). Plugins import the
declarations from here."""

from etk_core.training.plan import Stage, StepContext, Stream, StreamBatch, Trainable
from etk_core.training.summary import default_summary

__all__ = ["Stage", "StepContext", "Stream", "StreamBatch", "Trainable", "default_summary"]
