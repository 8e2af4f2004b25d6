"""ModelZoo: named backbones (BERT presets, packaged real checkpoints, local Hugging Face folders)."""

__version__ = "0.1.0"
