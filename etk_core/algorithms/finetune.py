"""`finetune`: train the app model on the target data, select the best checkpoint on dev."""

from __future__ import annotations

from typing import Any

from etk_core.interfaces import Algorithm


class Finetune(Algorithm):
    """Fine-tune a pre-trained backbone with the app's head on `train`; pick the best on `dev`."""

    name = "finetune"
    description = "fine-tune the backbone and task head on train, best checkpoint by dev"
    roles = ("train",)
    optional_roles = ("dev", "test")

    def run(self, run: Any) -> dict[str, float]:
        model = run.build_model()
        result = run.fit(model, train="train", dev="dev")
        metrics = {f"dev_{key}": value for key, value in (result.best_metrics or {}).items()}
        if "test" in run.records:
            from etk_core.artifact import load_artifact

            best = load_artifact(run.dir).model
            metrics.update({f"test_{key}": value for key, value in run.evaluate(best, "test").items()})
        metrics["train_samples_per_s"] = result.samples_per_s
        metrics["steps"] = result.steps
        return metrics
