"""`finetune`: train the app model on the target data, select the best checkpoint on dev."""

from __future__ import annotations

from typing import Any

from etk_core.interfaces import Algorithm
from etk_core.training.plan import Stage


class Finetune(Algorithm):
    """Fine-tune a pre-trained backbone with the app's head on `train`; pick the best on `dev`."""

    name = "finetune"
    description = "fine-tune the backbone and task head on train, best checkpoint by dev"
    roles = ("train",)
    optional_roles = ("dev", "test")

    def stage(self, run: Any, name: str) -> Stage:
        return Stage(name=name, model=run.build_model(), streams={"train": run.stream("train")}, dev=run.dev(),
                     dev_groups=run.groups("dev") if "dev" in run.records else None)
