"""Progress of training, reported to whoever watches: a rich bar in a terminal, plain lines in a log file,
nothing or a callback in Python."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

#: Seconds between two plain progress lines (when stderr is not a terminal).
PROGRESS_EVERY_ENV = "ETK_PROGRESS_EVERY"


class Reporter:
    """Receives a stage's start, each optimiser step, each evaluation and the stage's end."""

    def start(self, stage: str, total: int, completed: int) -> None:
        """A stage of `total` steps begins (`completed` of them done before a resume)."""

    def update(self, step: int, loss: float, samples_per_s: float) -> None:
        """One optimiser step is done."""

    def evaluated(self, step: int, metrics: dict[str, Any]) -> None:
        """The model was evaluated on dev data after `step` steps."""

    def finish(self) -> None:
        """The stage ended."""

    def notice(self, message: str) -> None:
        """A wait the user should know about (tokenising a large data role)."""

    def close(self) -> None:
        """The run ended (or failed): release the terminal."""


class SilentReporter(Reporter):
    """Reports nothing (other workers; the Python API by default)."""


class CallbackReporter(Reporter):
    """Calls `callback(event)` with a dict per event: `{"event": "start"|"step"|"eval"|"finish", ...}`."""

    def __init__(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self.callback = callback
        self.stage = ""

    def start(self, stage: str, total: int, completed: int) -> None:
        self.stage = stage
        self.callback({"event": "start", "stage": stage, "total": total, "completed": completed})

    def update(self, step: int, loss: float, samples_per_s: float) -> None:
        self.callback({"event": "step", "stage": self.stage, "step": step, "loss": loss,
                       "samples_per_s": samples_per_s})

    def evaluated(self, step: int, metrics: dict[str, Any]) -> None:
        self.callback({"event": "eval", "stage": self.stage, "step": step, "metrics": dict(metrics)})

    def finish(self) -> None:
        self.callback({"event": "finish", "stage": self.stage})


def format_metrics(metrics: dict[str, Any], limit: int = 6) -> str:
    """`accuracy 0.8125 macro_f1 0.8010 ...`: the first `limit` figures of an evaluation, 4 decimals."""
    shown = [f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}"
             for key, value in list(metrics.items())[:limit]]
    return " ".join(shown) + (" ..." if len(metrics) > limit else "")


def format_duration(seconds: float) -> str:
    """`1h02m`, `3m12s` or `42s`."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class PlainReporter(Reporter):
    """Plain lines for a log file, CI or nohup: a stage's start, a line every `every` seconds (and at the last
    step) with loss, samples/s and ETA, one per evaluation, and the stage's end."""

    def __init__(self, stream: TextIO | None = None, every: float | None = None) -> None:
        self.stream = stream
        if every is None:
            every = float(os.environ.get(PROGRESS_EVERY_ENV) or 30)
        self.every = every
        self.stage, self.total, self.first = "", 0, 0
        self.started = self.last_line = 0.0

    def _line(self, text: str) -> None:
        print(f"[{self.stage}] {text}", file=self.stream or sys.stderr, flush=True)

    def start(self, stage: str, total: int, completed: int) -> None:
        self.stage, self.total, self.first = stage, total, completed
        self.started = self.last_line = time.monotonic()
        self._line(f"{total} steps" + (f", resuming after step {completed}" if completed else ""))

    def update(self, step: int, loss: float, samples_per_s: float) -> None:
        now = time.monotonic()
        if now - self.last_line < self.every and step < self.total:
            return
        self.last_line = now
        done = step - self.first
        eta = (now - self.started) / done * (self.total - step) if done > 0 else 0.0
        percent = 100 * step / max(1, self.total)
        self._line(f"step {step}/{self.total} ({percent:.0f}%) loss {loss:.4f} {samples_per_s:.1f} samples/s "
                   f"eta {format_duration(eta)}")

    def evaluated(self, step: int, metrics: dict[str, Any]) -> None:
        self._line(f"dev at step {step}: {format_metrics(metrics)}")

    def notice(self, message: str) -> None:
        from etk_core.console import notice

        notice(message)

    def finish(self) -> None:
        self._line(f"done in {format_duration(time.monotonic() - self.started)}")


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

    def evaluated(self, step: int, metrics: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress.console.print(f"dev at step {step}: {format_metrics(metrics)}", highlight=False,
                                        markup=False)

    def notice(self, message: str) -> None:
        from etk_core.console import notice

        if self.progress is None:
            notice(message)
        else:
            self.progress.console.print(f"etk: {message}", highlight=False, markup=False)

    def close(self) -> None:
        """Stop the bar (at the end of the run, or when it fails)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
