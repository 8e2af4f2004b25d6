"""`etk serve` pieces without a model: the batcher, validation messages, settings, CLI start-up errors."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from typing import Any

import pytest

from etk_core.testing import run_cli


def fake_infer(log: list[int], fail: bool = False):
    """Predicts `{"n": text}` per record and logs the batch sizes (in features)."""

    def infer(parts: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]) -> list[list[dict[str, Any]]]:
        log.append(sum(len(features) for features, _ in parts))
        if fail:
            raise RuntimeError("boom")
        return [[{"n": record["text"]} for record in records] for _, records in parts]

    return infer


def job(*texts: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return [{"x": text} for text in texts], [{"text": text} for text in texts]


def test_batcher_batches_greedily_and_splits_at_max_batch() -> None:
    from etk_core.serve.batcher import Batcher

    async def main() -> tuple[list[list[dict]], list[int]]:
        log: list[int] = []
        batcher = Batcher(fake_infer(log), max_batch=4, queue_size=16)
        batcher.start()
        # all queued before the batcher task runs: [1 + 2] (+3 would exceed 4), [3 + 1], [1 + 2]
        requests = [job("a"), job("b", "c"), job("d", "e", "f"), job("g"), job("h"), job("i", "j")]
        futures = [batcher.submit(*request) for request in requests]
        results = await asyncio.wait_for(asyncio.gather(*futures), 10)
        await batcher.stop(5)
        return results, log

    results, log = asyncio.run(main())
    assert results == [[{"n": "a"}], [{"n": "b"}, {"n": "c"}], [{"n": "d"}, {"n": "e"}, {"n": "f"}], [{"n": "g"}],
                       [{"n": "h"}], [{"n": "i"}, {"n": "j"}]]
    assert log == [3, 4, 3]


def test_batcher_window_waits_for_more() -> None:
    from etk_core.serve.batcher import Batcher

    async def main() -> list[int]:
        log: list[int] = []
        batcher = Batcher(fake_infer(log), max_batch=8, queue_size=16, window_ms=300)
        batcher.start()
        first = batcher.submit(*job("a"))
        await asyncio.sleep(0.05)
        second = batcher.submit(*job("b"))
        await asyncio.wait_for(asyncio.gather(first, second), 10)
        await batcher.stop(5)
        return log

    assert asyncio.run(main()) == [2]


def test_batcher_full_queue_and_failures() -> None:
    from etk_core.serve.batcher import Batcher, InferenceError, QueueFull, ShuttingDown

    async def main() -> None:
        log: list[int] = []
        batcher = Batcher(fake_infer(log, fail=True), max_batch=4, queue_size=2)
        with pytest.raises(ShuttingDown):
            batcher.submit(*job("a"))  # not started
        batcher.start()
        futures = [batcher.submit(*job("a")), batcher.submit(*job("b"))]
        assert batcher.full
        with pytest.raises(QueueFull):
            batcher.submit(*job("c"))
        for future in futures:
            with pytest.raises(InferenceError, match="RuntimeError; details in the server log") as info:
                await asyncio.wait_for(future, 10)
            assert "boom" not in str(info.value)  # the exception text goes to the log, not to clients
        # the batcher survives a failed batch
        assert batcher.running
        with pytest.raises(InferenceError):
            await asyncio.wait_for(batcher.predict(*job("d")), 10)
        await batcher.stop(5)
        assert not batcher.running

    asyncio.run(main())


def test_stop_fails_what_cannot_finish_in_time() -> None:
    import time

    from etk_core.serve.batcher import Batcher, ShuttingDown

    def slow(parts: list) -> list:
        time.sleep(0.5)
        return [[{}] * len(records) for _, records in parts]

    async def main() -> None:
        batcher = Batcher(slow, max_batch=1, queue_size=4)
        batcher.start()
        running, queued = batcher.submit(*job("a")), batcher.submit(*job("b"))
        await asyncio.sleep(0.05)
        await batcher.stop(timeout=0.1)
        for future in (running, queued):
            with pytest.raises(ShuttingDown):
                await asyncio.wait_for(future, 5)

    asyncio.run(main())


def test_validation_messages_name_the_field() -> None:
    from pydantic import ValidationError

    from etk_core.serve.responses import validation_message
    from etk_core.serve.schemas import PredictRequest, limit_error

    def message(data: Any) -> str:
        with pytest.raises(ValidationError) as info:
            PredictRequest.model_validate(data)
        return validation_message(info.value.errors())

    assert message({"inputs": [{"text": 1}]}).startswith("inputs[0].text:")
    assert message({"inputs": ["a", 3]}).startswith("inputs[1]: each input must be a string or an object")
    assert "extra: unknown field" in message({"inputs": ["a"], "extra": 1})
    request = PredictRequest.model_validate({"inputs": ["abc", {"text": "a", "text_pair": "abcd"}]})
    assert limit_error(request, max_inputs=1, max_text_chars=10).startswith("inputs: 2 inputs")
    assert limit_error(request, max_inputs=2, max_text_chars=3).startswith("inputs[1].text_pair: 4 characters")
    assert limit_error(request, max_inputs=2, max_text_chars=4) is None


def test_settings_round_trip_and_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from etk_core.serve.settings import SETTINGS_ENV, ServeSettings, physical_cores, resolve_threads

    settings = ServeSettings(artifact="runs/x", workers=3, api_key="k", batch_window_ms=2.5)
    monkeypatch.setenv(SETTINGS_ENV, settings.to_env())
    assert ServeSettings.from_env() == settings
    monkeypatch.delenv("ETK_ORT_THREADS", raising=False)
    assert resolve_threads(None, 1) == physical_cores()
    assert resolve_threads(None, 2) == 1
    assert resolve_threads(3, 2) == 3
    monkeypatch.setenv("ETK_ORT_THREADS", "5")
    assert resolve_threads(None, 1) == 5


def test_cli_errors_are_one_line(tmp_path) -> None:
    missing = run_cli(["serve", str(tmp_path / "nope"), "--port", "0"])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli(["serve", str(tmp_path), "--port", str(port)])
    assert busy.exit_code == 2 and f"127.0.0.1:{port}" in busy.stderr and "--port" in busy.stderr


def test_cli_stays_light() -> None:
    code = ("import sys, etk_core.cli.main; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'torch', 'prometheus_client') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "ETK_LOAD_PLUGINS": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    help_text = run_cli(["serve", "--help"]).output
    for option in ("--max-batch", "--queue-size", "--batch-window-ms", "--api-key", "--workers", "--threads"):
        assert option in help_text


def test_empty_api_key_is_refused_in_one_line(tmp_path) -> None:
    for args, env in ((["--api-key", ""], None), (["--api-key", "  "], None), ([], {"ETK_API_KEY": ""})):
        result = run_cli(["serve", str(tmp_path), "--port", "0", *args], env=env)
        assert result.exit_code == 2, result.output
        assert "API key is empty" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    empty_hosts = run_cli(["serve", str(tmp_path), "--port", "0", "--allowed-hosts", " , "])
    assert empty_hosts.exit_code == 2 and "--allowed-hosts is empty" in empty_hosts.stderr


def test_host_allow_list_and_content_types() -> None:
    from etk_core.serve.middleware import host_name, is_json
    from etk_core.serve.settings import ServeSettings, host_allow_list

    assert host_name(b"127.0.0.1:8000") == "127.0.0.1" and host_name(b"[::1]:80") == "::1"
    assert host_name(b"LocalHost") == "localhost" and host_name(b"::1") == "::1"
    assert host_allow_list(ServeSettings(artifact="a")) == {"127.0.0.1", "localhost", "::1"}
    assert host_allow_list(ServeSettings(artifact="a", host="0.0.0.0")) is None  # exposed on purpose: any name
    assert host_allow_list(ServeSettings(artifact="a", host="0.0.0.0", allowed_hosts=["API.example.com"])) == {
        "api.example.com"}
    assert host_allow_list(ServeSettings(artifact="a", allowed_hosts=["*"])) is None
    assert is_json(b"application/json") and is_json(b"Application/JSON; charset=utf-8")
    assert is_json(b"application/vnd.api+json")
    assert not any(is_json(value) for value in (None, b"text/plain", b"application/x-www-form-urlencoded",
                                                 b"multipart/form-data; boundary=x", b"text/json"))


def test_parse_json_limits() -> None:
    from etk_core.serve.schemas import MAX_JSON_DEPTH, BodyError, parse_json

    assert parse_json(b'{"inputs": ["[[[[[[[[[[[[[[[[[[[[[[[[[[ \\" {{{{"]}') == {
        "inputs": ['[[[[[[[[[[[[[[[[[[[[[[[[[[ " {{{{']}  # brackets inside strings do not count
    assert parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None
    for body, fragment in ((b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "deeper"),
                           (b"[" * 200_000, "deeper"), (b"[NaN]", "NaN"), (b"[Infinity]", "Infinity"),
                           (b'{"a": 1, "a": 2}', "twice"), (b"\xc3\x28", "not UTF-8"), (b"", "empty"),
                           (b"[" + b"1" * 5000 + b"]", "number too long"), (b"\xef\xbb\xbf{}", "not valid JSON")):
        with pytest.raises(BodyError, match=fragment):
            parse_json(body)


def test_parse_json_reads_or_refuses_any_bytes() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    from etk_core.serve.schemas import BodyError, PredictRequest, limit_error, parse_json

    @hypothesis.settings(max_examples=150, deadline=None, derandomize=True, database=None)
    @hypothesis.given(st.binary(max_size=300) | st.text(max_size=100).map(str.encode)
                      | st.from_regex(r'\{"inputs": \[("[^"]{0,5}",? ?){0,3}\]\}').map(str.encode))
    def check(body: bytes) -> None:
        from pydantic import ValidationError

        try:
            request = PredictRequest.model_validate(parse_json(body))
        except (BodyError, ValidationError):
            return
        limit_error(request, 64, 10_000)

    check()


def test_docs_are_off_by_default_and_pinned_when_on() -> None:
    from starlette.testclient import TestClient

    from etk_core.serve.app import REDOC_VERSION, SWAGGER_UI_VERSION, create_app
    from etk_core.serve.settings import ServeSettings

    plain = TestClient(create_app(ServeSettings(artifact="a"), predictor=object()), base_url="http://localhost")
    assert plain.get("/docs").status_code == 404 and plain.get("/redoc").status_code == 404
    assert plain.get("/openapi.json").status_code == 200
    on = TestClient(create_app(ServeSettings(artifact="a", docs=True), predictor=object()),
                    base_url="http://127.0.0.1")
    assert f"swagger-ui-dist@{SWAGGER_UI_VERSION}/" in on.get("/docs").text
    assert f"redoc@{REDOC_VERSION}/" in on.get("/redoc").text
    foreign = TestClient(create_app(ServeSettings(artifact="a", allowed_hosts=["api.example.com"]),
                                    predictor=object()), base_url="http://api.example.com")
    assert foreign.get("/healthz").status_code == 200
    refused = foreign.get("/healthz", headers={"host": "localhost"})
    assert refused.status_code == 421 and "api.example.com" in refused.json()["error"]
