"""AppZoo: text classification, text matching, reading comprehension, sequence labeling."""

__version__ = "0.1.0"
