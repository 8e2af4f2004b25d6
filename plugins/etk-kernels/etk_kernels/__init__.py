"""Compiled kernels: random sparse attention (RSA) and RSA-BERT."""

__version__ = "0.1.0"
