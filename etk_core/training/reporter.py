"""Progress of training, reported to whoever watches: a rich bar on the CLI, nothing or a callback in Python."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Reporter:
    """Receives a stage's start, each optimiser step and its end."""

    def start(self, stage: str, total: int, completed: int) -> None:
        """A stage of `total` steps begins (`completed` of them done before a resume)."""

    def update(self, step: int, loss: float, samples_per_s: float) -> None:
        """One optimiser step is done."""

    def finish(self) -> None:
        """The stage ended."""


class SilentReporter(Reporter):
    """Reports nothing (other workers; the Python API by default)."""


class CallbackReporter(Reporter):
    """Calls `callback(event)` with a dict per event: `{"event": "start"|"step"|"finish", ...}`."""

    def __init__(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self.callback = callback
        self.stage = ""

    def start(self, stage: str, total: int, completed: int) -> None:
        self.stage = stage
        self.callback({"event": "start", "stage": stage, "total": total, "completed": completed})

    def update(self, step: int, loss: float, samples_per_s: float) -> None:
        self.callback({"event": "step", "stage": self.stage, "step": step, "loss": loss,
                       "samples_per_s": samples_per_s})

    def finish(self) -> None:
        self.callback({"event": "finish", "stage": self.stage})


class RichReporter(Reporter):
    """A rich progress bar on stderr, one task per stage; started on the first stage (a process that only
    launches workers shows none)."""

    def __init__(self) -> None:
        self.progress: Any = None
        self.task: Any = None

    def start(self, stage: str, total: int, completed: int) -> None:
        if self.progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            from etk_core.console import stderr_console

            columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:.1f} samples/s"),
                       TimeRemainingColumn())
            self.progress = Progress(*columns, console=stderr_console(), transient=False)
            self.progress.start()
        self.task = self.progress.add_task(stage, total=total, completed=completed, loss=float("nan"), rate=0.0)

    def update(self, step: int, loss: float, samples_per_s: float) -> None:
        self.progress.update(self.task, completed=step, loss=loss, rate=samples_per_s)

    def close(self) -> None:
        """Stop the bar (at the end of the run, or when it fails)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
