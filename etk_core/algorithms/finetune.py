"""`finetune`: train the app model on the target data, select the best checkpoint on dev."""

from __future__ import annotations

from typing import Any

from etk_core.interfaces import Algorithm


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux and macOS units differ)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


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
        metrics["train_samples_per_s"] = result.samples_per_s  # this process's; all processes: x nproc
        metrics["steps"] = result.steps
        metrics["peak_rss_mib"] = round(peak_rss_mib(), 1)
        return metrics
