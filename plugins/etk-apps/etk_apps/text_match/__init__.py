"""text_match: sentence-pair classification (paraphrase, NLI) with cross-, two-tower and classic models."""

from etk_apps.text_match.app import TextMatch

__all__ = ["TextMatch"]
