"""Helpers the benchmark scripts share: run `etk train` in its own process, write a README table section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def etk_train(args: list[str], output: Path, label: str) -> dict[str, Any]:
    """`etk train ARGS --no-export --json --output OUTPUT` in a fresh process; its final metrics plus
    `seconds` (wall time). A failed run stops the benchmark, naming `label` and the run's last output."""
    command = [sys.executable, "-m", "etk_core", "train", *args, "--no-export", "--json", "--output", str(output)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        raise SystemExit(f"{label} failed: {done.stdout[-500:]}{done.stderr[-1500:]}")
    metrics = json.loads(done.stdout.strip().splitlines()[-1])
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    return metrics


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a benchmark's JSON-lines run log (none where it does not exist yet)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def append_log(path: Path, records: list[dict[str, Any]]) -> None:
    """Append finished runs' records to a JSON-lines run log (a cut-short benchmark keeps what it finished)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as file:
        file.writelines(json.dumps(record) + "\n" for record in records)


def write_section(path: Path, begin: str, end: str, text: str) -> None:
    """Replace what lies between the markers `begin` and `end` in the file at `path` with `text`."""
    content = path.read_text(encoding="utf-8")
    start, stop = content.index(begin) + len(begin), content.index(end)
    path.write_text(content[:start] + "\n" + text + "\n" + content[stop:], encoding="utf-8")
