"""The final figures of a run that most algorithms report."""

from __future__ import annotations

from typing import Any


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux and macOS units differ)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def default_summary(run: Any, results: dict[str, Any]) -> dict[str, float]:
    """`dev_*`: the last stage's best dev metrics; `test_*`: the artifact's metrics on the test role;
    steps (all stages), this process's training samples/s (all processes: x nproc), peak memory."""
    last = list(results.values())[-1]
    metrics: dict[str, Any] = {f"dev_{key}": value for key, value in (last.best_metrics or {}).items()}
    if "test" in run.records and run.engine().is_main_process:
        best = run.best_artifact().model
        metrics.update({f"test_{key}": value for key, value in run.evaluate(best, "test").items()})
    trained = [result for result in results.values() if result.steps]
    metrics["train_samples_per_s"] = trained[-1].samples_per_s if trained else 0.0
    metrics["steps"] = sum(result.steps for result in results.values())
    metrics["peak_rss_mib"] = round(peak_rss_mib(), 1)
    return metrics
