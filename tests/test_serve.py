"""`etk serve` end to end: a tiny trained model, the real server as a subprocess on a free loopback port.

One model is trained (and exported to ONNX, as `etk train` does) per module; a few servers are started with
different options. Every wait is bounded by time, every server is killed in a `finally`. Servers and the
in-process Predictor use 1 thread (the default would be all cores): on a 2-core machine shared with other
jobs, thread pools that wait on each other are many times slower; the worker test keeps the default.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")

from etk_core.testing import Server, free_port, run_cli, serving  # noqa: E402

KEY = "s3cret-key"
TEXTS = ["a wonderful, moving book", "terrible plot and boring characters", "it was fine I guess",
         "great", "the worst purchase ever", "absolutely loved every page of it"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bert-tiny text classifier trained for 20 steps; exported to ONNX (fp32 and int8) when the exporter
    is installed, so the servers run the default backend on an exported artifact."""
    out = tmp_path_factory.mktemp("serve") / "run"
    result = run_cli(["train", "--model", "bert-tiny", "--data", "train=synthetic_sentiment:train",
                      "--data", "dev=synthetic_sentiment:dev", "--set", "train.max_steps=20",
                      "--set", "train.max_length=64", "--set", "train.threads=1", "--output", str(out)])
    assert result.exit_code == 0, result.output
    from etk_core.export.onnx_export import export_onnx

    export_onnx(out / "model", quantize="int8")
    return out


async def post_many(url: str, bodies: list[dict], headers: dict[str, str] | None = None,
                    timeout: float = 30.0) -> list[httpx.Response]:
    """POST every body to /v1/predict at once (one connection each)."""
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits, headers=headers) as client:
        return list(await asyncio.gather(*(client.post("/v1/predict", json=body) for body in bodies)))


PREDICTORS: dict[tuple[Path, str], object] = {}


def expected(run: Path, inputs: list, backend: str = "auto") -> list[dict]:
    """What the Python API predicts for `inputs` (one Predictor per artifact and backend)."""
    from etk_core.predict import Predictor

    if (run, backend) not in PREDICTORS:
        PREDICTORS[run, backend] = Predictor(run, backend=backend, threads=1)
    return PREDICTORS[run, backend].predict(inputs)


def assert_same_predictions(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for one, other in zip(got, want):
        assert one["label"] == other["label"]
        assert one["probabilities"] == pytest.approx(other["probabilities"], abs=1e-5)


# --- one server with small limits, for the endpoints and every client mistake --------------------------------
@pytest.fixture(scope="module")
def server(run_dir: Path) -> Iterator[Server]:
    with serving(run_dir, "--max-inputs", "8", "--max-text-chars", "200", "--max-body-bytes", "4000") as running:
        yield running


def test_health_ready_and_model(server: Server, run_dir: Path) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "alive"}
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    info = httpx.get(server.url + "/v1/model").json()
    meta = json.loads((run_dir / "model" / "etk.json").read_text())
    exported = (run_dir / "model" / "model.onnx").is_file()
    assert info["name"] == "run" and info["model"] == "bert-tiny" and info["app"] == "text_classify"
    assert info["labels"] == meta["app_state"]["labels"] and info["metrics"] == meta["metrics"]
    assert info["backend"] == ("onnx" if exported else "torch")
    assert info["version"]


def test_predictions_equal_the_python_api(server: Server, run_dir: Path) -> None:
    inputs = [*TEXTS, {"text": "good book", "text_pair": "bad ending"}]
    response = httpx.post(server.url + "/v1/predict", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    assert_same_predictions(response.json()["predictions"], expected(run_dir, inputs))
    # a JSON content type with parameters is JSON; a form-encoded body (curl -d without -H) is refused
    charset = httpx.post(server.url + "/v1/predict", content=json.dumps({"inputs": TEXTS[:1]}),
                         headers={"content-type": "application/json; charset=utf-8"})
    assert charset.status_code == 200
    assert charset.json()["predictions"][0]["label"] == response.json()["predictions"][0]["label"]
    form = httpx.post(server.url + "/v1/predict", content=json.dumps({"inputs": TEXTS[:1]}),
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415 and "application/json" in form.json()["error"]


def test_concurrent_requests_are_batched_and_each_gets_its_own(server: Server, run_dir: Path) -> None:
    bodies = [{"inputs": [TEXTS[i % len(TEXTS)], TEXTS[(i * 5 + 1) % len(TEXTS)]][: 1 + i % 2]} for i in range(24)]
    responses = asyncio.run(post_many(server.url, bodies))
    assert [r.status_code for r in responses] == [200] * len(bodies)
    for body, response in zip(bodies, responses):
        assert_same_predictions(response.json()["predictions"], expected(run_dir, body["inputs"]))
    metrics = httpx.get(server.url + "/metrics").text
    counts = [line for line in metrics.splitlines() if line.startswith("etk_batch_size_count")]
    runs = float(counts[0].split()[-1])
    assert 1 <= runs  # batches were run (usually fewer than requests: greedy batching)


ERRORS = {
    # name: (raw body, status, fragment of the error)
    "invalid json": (b'{"inputs": ["a"', 400, "not valid JSON"),
    "empty body": (b"", 400, "empty"),
    "not an object": (b'["a"]', 422, "JSON object"),
    "inputs not a list": (b'{"inputs": "a text"}', 422, "inputs"),
    "input of wrong type": (b'{"inputs": [5]}', 422, "inputs[0]"),
    "text of wrong type": (b'{"inputs": [{"text": 5}]}', 422, "inputs[0].text"),
    "missing text": (b'{"inputs": [{"text_pair": "b"}]}', 422, "inputs[0].text"),
    "unknown field": (b'{"inputs": ["a"], "top_k": 3}', 422, "top_k: unknown field"),
    "unknown input field": (b'{"inputs": [{"text": "a", "lang": "en"}]}', 422, "inputs[0].lang: unknown field"),
    "missing inputs": (b"{}", 422, "inputs"),
    "empty inputs": (b'{"inputs": []}', 422, "inputs: must not be empty"),
    "too many inputs": (json.dumps({"inputs": ["a"] * 9}).encode(), 422, "--max-inputs"),
    "text too long": (json.dumps({"inputs": ["a" * 201]}).encode(), 422, "--max-text-chars"),
    "pair too long": (json.dumps({"inputs": [{"text": "a", "text_pair": "b" * 201}]}).encode(), 422,
                      "inputs[0].text_pair"),
    "body too large": (json.dumps({"inputs": ["a" * 150] * 30}).encode(), 413, "--max-body-bytes"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_client_mistakes_are_4xx_with_a_json_error(server: Server, case: str) -> None:
    body, status, fragment = ERRORS[case]
    response = httpx.post(server.url + "/v1/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"], response.json()


def test_streamed_body_over_the_limit_is_413(server: Server) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer, counted as it arrives
        yield b'{"inputs": ["'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"]}'

    response = httpx.post(server.url + "/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "--max-body-bytes" in response.json()["error"]


def test_wrong_method_and_path(server: Server) -> None:
    wrong_method = httpx.get(server.url + "/v1/predict")
    assert wrong_method.status_code == 405 and "POST" in wrong_method.json()["error"]
    missing = httpx.post(server.url + "/v2/predict", json={"inputs": ["a"]})
    assert missing.status_code == 404 and "/v2/predict" in missing.json()["error"]


def test_metrics_and_openapi(server: Server) -> None:
    httpx.post(server.url + "/v1/predict", json={"inputs": ["one more"]})
    metrics = httpx.get(server.url + "/metrics")
    assert metrics.status_code == 200
    for name in ("etk_requests_total", "etk_request_duration_seconds_bucket", "etk_batch_size_bucket",
                 "etk_errors_total", "etk_queue_depth"):
        assert name in metrics.text, name
    assert 'etk_requests_total{method="POST",path="/v1/predict",status="200"}' in metrics.text
    spec = httpx.get(server.url + "/openapi.json").json()
    assert "post" in spec["paths"]["/v1/predict"]
    assert {"/v1/model", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    assert "PredictRequest" in spec["components"]["schemas"]
    # the server is still healthy after all the bad requests above
    assert httpx.get(server.url + "/healthz").status_code == 200


# --- API key and the full queue ------------------------------------------------------------------------------
def test_api_key_and_queue_full(run_dir: Path) -> None:
    with serving(run_dir, "--queue-size", "1", "--max-batch", "8", env={"ETK_API_KEY": KEY}) as server:
        body = {"inputs": ["a"]}
        assert httpx.post(server.url + "/v1/predict", json=body).status_code == 401
        wrong = httpx.post(server.url + "/v1/predict", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "API key" in wrong.json()["error"]
        assert httpx.get(server.url + "/v1/model").status_code == 401
        assert httpx.get(server.url + "/metrics").status_code == 401
        assert httpx.get(server.url + "/healthz").status_code == 200
        assert httpx.get(server.url + "/readyz").status_code == 200
        bearer = httpx.post(server.url + "/v1/predict", json=body, headers={"Authorization": f"Bearer {KEY}"})
        assert bearer.status_code == 200
        header = httpx.post(server.url + "/v1/predict", json=body, headers={"X-API-Key": KEY})
        assert header.status_code == 200

        # many concurrent requests against a queue of 1: some are turned away at once, none fails otherwise
        long_text = " ".join(TEXTS * 3)[:190]
        bodies = [{"inputs": [long_text] * 8} for _ in range(40)]
        statuses: list[int] = []
        for _ in range(3):  # bounded retries: the split between 200 and 503 depends on timing
            responses = asyncio.run(post_many(server.url, bodies, headers={"X-API-Key": KEY}))
            statuses += [r.status_code for r in responses]
            for response in responses:
                assert response.status_code in (200, 503), response.text
                if response.status_code == 503:
                    assert response.headers["retry-after"] == "1" and "busy" in response.json()["error"]
                else:
                    assert len(response.json()["predictions"]) == 8
            if 503 in statuses:
                break
        assert 503 in statuses and 200 in statuses, statuses
        assert httpx.get(server.url + "/readyz").status_code == 200  # the queue drained


# --- graceful shutdown and workers ---------------------------------------------------------------------------
async def _requests_then_sigterm(server: Server, count: int) -> tuple[list[httpx.Response], bool]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        tasks = [asyncio.create_task(client.post("/v1/predict", json={"inputs": [TEXTS[i % len(TEXTS)]]}))
                 for i in range(count)]
        await asyncio.sleep(0.5)  # all sent; the 1 s batching window keeps them in flight
        assert not any(task.done() for task in tasks)
        server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        try:  # no new connections once shutting down
            async with httpx.AsyncClient(timeout=2) as fresh:
                await fresh.get(server.url + "/healthz")
            refused = False
        except httpx.TransportError:
            refused = True
        return list(await asyncio.gather(*tasks)), refused


def test_sigterm_lets_in_flight_requests_finish(run_dir: Path) -> None:
    int8 = (run_dir / "model" / "model.int8.onnx").is_file()
    args = ["--batch-window-ms", "1000", *(["--backend", "onnx-int8"] if int8 else [])]
    with serving(run_dir, *args) as server:
        if int8:
            assert httpx.get(server.url + "/v1/model").json()["backend"] == "onnx-int8"
        responses, refused = asyncio.run(_requests_then_sigterm(server, 8))
        assert [r.status_code for r in responses] == [200] * 8
        inputs = [TEXTS[i % len(TEXTS)] for i in range(8)]
        want = expected(run_dir, inputs, backend="onnx-int8" if int8 else "auto")
        assert_same_predictions([r.json()["predictions"][0] for r in responses], want)
        assert refused
        assert server.process.wait(30) == 0, server.output()
        assert "Application shutdown complete" in server.output()


def test_workers_share_the_port_and_metrics(run_dir: Path) -> None:
    with serving(run_dir, "--workers", "2", threads=None) as server:  # default: 1 thread per worker
        bodies = [{"inputs": [text]} for text in TEXTS]
        responses = asyncio.run(post_many(server.url, bodies))
        assert [r.status_code for r in responses] == [200] * len(bodies)
        assert_same_predictions([r.json()["predictions"][0] for r in responses], expected(run_dir, TEXTS))
        metrics = httpx.get(server.url + "/metrics").text
        line = next(line for line in metrics.splitlines()
                    if line.startswith('etk_requests_total{method="POST",path="/v1/predict",status="200"}'))
        assert float(line.split()[-1]) == len(bodies)  # summed over both workers
        assert server.stop() == 0, server.output()


# --- start-up errors: one line, exit 2, nothing served -------------------------------------------------------
def test_missing_backend_export_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "plain"
    shutil.copytree(run_dir / "model", copy, ignore=shutil.ignore_patterns("*.onnx", "onnx.json"))
    result = run_cli(["serve", str(copy), "--port", str(free_port()), "--backend", "onnx"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ") and "etk export" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
