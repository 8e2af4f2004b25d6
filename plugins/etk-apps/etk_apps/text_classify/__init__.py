"""text_classify: single-text or text-pair classification into string labels."""

from etk_apps.text_classify.app import TextClassify

__all__ = ["TextClassify"]
