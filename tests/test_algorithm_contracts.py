"""The core's built-in algorithm passes the Algorithm contract (kill and resume, ddp, metrics rows)."""

from etk_core.testing import AlgorithmContract


class TestFinetune(AlgorithmContract):
    component_name = "finetune"
