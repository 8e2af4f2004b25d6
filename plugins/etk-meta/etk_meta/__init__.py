"""Meta learning: metaft, metadtl."""

__version__ = "0.1.0"
