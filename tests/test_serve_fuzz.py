"""`etk serve` against a hostile client: a table of bad requests sent as raw bytes to ONE real server process,
each answered with its status and a JSON `{"error": ...}` message, the server healthy after every one; then
the faults that need their own timing (half a body, a 20 MB upload, an 8 MB header, clients that leave)
and a small soak (0 5xx, 0 lost).

Requests go through a plain socket (`exchange`) so that a case can send what no HTTP library would: invalid
UTF-8, a lying Content-Length, a foreign Host, a body that stops half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")

from etk_core.testing import Server, run_cli, serving  # noqa: E402

KEY = "fuzz-key"
VALID = b'{"inputs": ["a wonderful book", {"text": "dull", "text_pair": "long"}]}'
READ_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bert-tiny text classifier (20 steps), exported to ONNX fp32: the default backend."""
    out = tmp_path_factory.mktemp("fuzz") / "run"
    result = run_cli(["train", "--model", "bert-tiny", "--data", "train=synthetic_sentiment:train",
                      "--data", "dev=synthetic_sentiment:dev", "--set", "train.max_steps=20",
                      "--set", "train.max_length=64", "--set", "train.threads=1", "--output", str(out)])
    assert result.exit_code == 0, result.output
    from etk_core.export.onnx_export import export_onnx

    export_onnx(out / "model")
    return out


@pytest.fixture(scope="module")
def server(run_dir: Path) -> Iterator[Server]:
    with serving(run_dir, "--max-inputs", "8", "--max-text-chars", "200", "--max-body-bytes", "4000",
                 "--read-timeout", str(READ_TIMEOUT), env={"ETK_API_KEY": KEY}) as running:
        yield running


# --- raw HTTP ------------------------------------------------------------------------------------------------
def port_of(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def request(method: str = "POST", path: str = "/v1/predict", body: bytes = b"", *, content_type: str | None =
            "application/json", host: str = "127.0.0.1", key: str | None = KEY, length: bool = True,
            extra: list[str] = ()) -> bytes:
    """One HTTP/1.1 request (Connection: close) as bytes."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close", *extra]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if key is not None:
        lines.append(f"X-API-Key: {key}")
    if length and (body or method in ("POST", "PUT")):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def exchange(port: int, raw: bytes, timeout: float = 15.0) -> tuple[int, dict[str, str], bytes, float]:
    """Send `raw`, read the answer until the server closes: (status, headers, body, seconds)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        decoded, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if not size:
                break
            decoded, rest = decoded + rest[:size], rest[size + 2:]
        body = decoded
    return status, headers, body, time.monotonic() - started


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def assert_healthy(server: Server) -> None:
    port = port_of(server)
    assert exchange(port, request("GET", "/healthz", key=None, content_type=None))[0] == 200
    status, _, body, _ = exchange(port, request(body=VALID))
    assert status == 200, body
    assert len(json.loads(body)["predictions"]) == 2


def nested(depth: int) -> bytes:
    return b'{"inputs": [' + b"[" * depth + b"]" * depth + b"]}"


CASES: dict[str, tuple[bytes, int, str]] = {
    # name: (raw request, status, fragment of the error message)
    "invalid json": (request(body=b'{"inputs": ["a"'), 400, "not valid JSON"),
    "empty body": (request(body=b""), 400, "empty"),
    "whitespace body": (request(body=b"  \n "), 400, "empty"),
    "array body": (request(body=b'["a"]'), 422, "JSON object"),
    "string body": (request(body=b'"a text"'), 422, "JSON object"),
    "null body": (request(body=b"null"), 422, "JSON object"),
    "inputs not a list": (request(body=b'{"inputs": "a text"}'), 422, "inputs"),
    "inputs an object": (request(body=b'{"inputs": {"text": "a"}}'), 422, "inputs"),
    "input of wrong type": (request(body=b'{"inputs": [5]}'), 422, "inputs[0]"),
    "input null": (request(body=b'{"inputs": ["a", null]}'), 422, "inputs[1]"),
    "text of wrong type": (request(body=b'{"inputs": [{"text": 5}]}'), 422, "inputs[0].text"),
    "text a list": (request(body=b'{"inputs": [{"text": ["a"]}]}'), 422, "inputs[0].text"),
    "missing text": (request(body=b'{"inputs": [{"text_pair": "b"}]}'), 422, "inputs[0].text"),
    "unknown field": (request(body=b'{"inputs": ["a"], "top_k": 3}'), 422, "top_k: unknown field"),
    "unknown input field": (request(body=b'{"inputs": [{"text": "a", "lang": "en"}]}'), 422, "inputs[0].lang"),
    "missing inputs": (request(body=b"{}"), 422, "inputs"),
    "empty inputs": (request(body=b'{"inputs": []}'), 422, "must not be empty"),
    "too many inputs": (request(body=json.dumps({"inputs": ["a"] * 9}).encode()), 422, "--max-inputs"),
    "text too long": (request(body=json.dumps({"inputs": ["a" * 201]}).encode()), 422, "--max-text-chars"),
    "pair too long": (request(body=json.dumps({"inputs": [{"text": "a", "text_pair": "b" * 201}]}).encode()), 422,
                      "inputs[0].text_pair"),
    "lone surrogate": (request(body=b'{"inputs": ["\\ud800"]}'), 422, "inputs[0]: not valid Unicode"),
    "lone surrogate in a pair": (request(body=b'{"inputs": ["ok", {"text": "a", "text_pair": "x\\udfff"}]}'), 422,
                                 "inputs[1].text_pair"),
    "nested 100k deep, over the body limit": (request(body=nested(100_000)), 413, "--max-body-bytes"),
    "nested 1000 deep": (request(body=nested(1000)), 400, "deeper than 16"),
    "nested 17 deep": (request(body=nested(17)), 400, "deeper than 16"),
    "NaN literal": (request(body=b'{"inputs": [NaN]}'), 400, "NaN"),
    "Infinity literal": (request(body=b'{"inputs": ["a"], "x": -Infinity}'), 400, "Infinity"),
    "huge integer": (request(body=b'{"inputs": [' + b"9" * 3900 + b"]}"), 422, "inputs[0]"),
    "huge float": (request(body=b'{"inputs": [1e999]}'), 422, "inputs[0]"),
    "invalid utf-8": (request(body=b'{"inputs": ["\xff\xfe caf\xe9"]}'), 400, "not UTF-8"),
    "utf-8 bom": (request(body=b'\xef\xbb\xbf{"inputs": ["a"]}'), 400, "not valid JSON"),
    "duplicate keys": (request(body=b'{"inputs": ["a"], "inputs": ["b"]}'), 400, "appears twice"),
    "body too large": (request(body=json.dumps({"inputs": ["a" * 150] * 30}).encode()), 413, "4000"),
    "chunked body too large": (request(body=chunked(b'{"inputs": ["', b"a" * 5000, b'"]}'), length=False,
                                       extra=["Transfer-Encoding: chunked"]), 413, "--max-body-bytes"),
    "content-length not a number": (request(body=b"", length=False, extra=["Content-Length: ten"]), 400,
                                    "malformed HTTP request"),
    "garbage request line": (b"HELLO THERE\r\n\r\n", 400, "malformed HTTP request"),
    "bad chunk size": (request(body=b"zz\r\nabc\r\n0\r\n\r\n", length=False, extra=["Transfer-Encoding: chunked"]),
                       400, "malformed"),
    "text/plain content type": (request(body=VALID, content_type="text/plain"), 415, "application/json"),
    "form content type": (request(body=VALID, content_type="application/x-www-form-urlencoded"), 415, "JSON"),
    "no content type": (request(body=VALID, content_type=None), 415, "no Content-Type"),
    "wrong method": (request("GET", content_type=None), 405, "POST"),
    "put": (request("PUT", body=VALID), 405, "POST"),
    "delete": (request("DELETE", content_type=None), 405, "POST"),
    "unknown path": (request(path="/v2/predict", body=VALID), 404, "/v2/predict"),
    "path traversal": (request("GET", "/../../etc/passwd", content_type=None), 404, "no endpoint"),
    "docs off by default": (request("GET", "/docs", content_type=None), 404, "no endpoint"),
    "redoc off by default": (request("GET", "/redoc", content_type=None), 404, "no endpoint"),
    "missing api key": (request(body=VALID, key=None), 401, "API key"),
    "wrong api key": (request(body=VALID, key="nope"), 401, "API key"),
    "api key on model info": (request("GET", "/v1/model", key=None, content_type=None), 401, "API key"),
    "foreign host": (request(body=VALID, host="evil.example"), 421, "--allowed-hosts"),
    "foreign host with our port": (request("GET", "/healthz", host="attacker.test:8000", content_type=None), 421,
                                   "attacker.test"),
    "header over 64 KiB": (request("GET", "/healthz", content_type=None, extra=["X-Big: " + "a" * 200_000]), 431,
                           "headers over"),
    "half a body": (request(body=VALID)[:-20], 408, "--read-timeout"),
    "content-length longer than the body": (request(body=b"", length=False, extra=["Content-Length: 50"])
                                            + b'{"inputs": ["a"]}', 408, "--read-timeout"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_request_is_a_json_error_and_the_server_survives(server: Server, case: str) -> None:
    raw, status, fragment = CASES[case]
    got, headers, body, _ = exchange(port_of(server), raw)
    assert got == status, body
    assert headers.get("content-type", "").startswith("application/json"), headers
    message = json.loads(body)["error"]
    assert isinstance(message, str) and fragment in message, message
    assert "\n" not in message and "Traceback" not in message
    assert_healthy(server)


def test_no_case_was_a_server_error(server: Server) -> None:
    """After the table (and whatever ran before): no 5xx counted, no traceback in the log."""
    metrics = httpx.get(server.url + "/metrics", headers={"X-API-Key": KEY}).text
    assert not [line for line in metrics.splitlines() if line.startswith("etk_requests_total{")
                and 'status="5' in line], metrics
    assert "Traceback" not in server.output()


def test_chunked_json_and_pipelined_keep_alive_requests_work(server: Server) -> None:
    port = port_of(server)
    status, _, body, _ = exchange(port, request(body=chunked(VALID[:10], VALID[10:]), length=False,
                                                extra=["Transfer-Encoding: chunked"]))
    assert status == 200 and len(json.loads(body)["predictions"]) == 2
    first = request(body=VALID).replace(b"Connection: close\r\n", b"")
    status, _, body, _ = exchange(port, first + request(body=b'{"inputs": ["x"]}'))
    assert status == 200 and body.count(b"predictions") == 2  # both answered on one connection


def test_half_a_body_gets_408_after_the_read_timeout_and_the_connection_closes(server: Server) -> None:
    raw = request(body=VALID)[:-30]
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=15) as sock:
        started = time.monotonic()
        sock.sendall(raw)  # and nothing more, the socket kept open
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        waited = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 408") and b"--read-timeout" in data
    assert READ_TIMEOUT - 0.1 <= waited < READ_TIMEOUT + 5  # then closed by the server (recv gave b"")


def test_20_mb_body_gets_its_413_not_a_reset(server: Server) -> None:
    big = b'{"inputs": ["' + b"a" * 20_000_000 + b'"]}'
    started = time.monotonic()
    response = httpx.post(server.url + "/v1/predict", content=big, timeout=30,
                          headers={"content-type": "application/json", "X-API-Key": KEY})
    assert response.status_code == 413 and "limit of 4000" in response.json()["error"]
    assert time.monotonic() - started < 20
    # a raw client that writes everything before reading gets it too
    status, _, body, _ = exchange(port_of(server), request(body=big))
    assert status == 413 and b"--max-body-bytes" in body
    assert_healthy(server)


def test_a_client_that_waits_for_100_continue_gets_413_without_sending(server: Server) -> None:
    raw = request(body=b"", length=False, extra=["Content-Length: 20000000", "Expect: 100-continue"])
    status, _, body, seconds = exchange(port_of(server), raw)
    assert status == 413 and b"20000000" in body and seconds < 5


def test_8_mb_header_gets_431(server: Server) -> None:
    status, _, body, _ = exchange(port_of(server), request("GET", "/healthz", content_type=None,
                                                           extra=["X-Big: " + "a" * 8_000_000]))
    assert status == 431 and b"65536" in body
    assert_healthy(server)


def test_json_values_from_hypothesis_never_give_5xx(server: Server) -> None:
    """Arbitrary JSON values (and bytes) as bodies: each answered 2xx or 4xx with a JSON error."""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                          | st.text(max_size=30), lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.sampled_from(["inputs", "text", "text_pair", "x"]), inner, max_size=3),
                          max_leaves=12)
    bodies = st.one_of(values.map(lambda value: json.dumps({"inputs": value}).encode()),
                       values.map(lambda value: json.dumps(value).encode()), st.binary(max_size=200))
    port = port_of(server)

    @hypothesis.settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @hypothesis.given(bodies)
    def check(body: bytes) -> None:
        status, headers, answer, _ = exchange(port, request(body=body))
        assert status < 500, (body, answer)
        if status >= 400:
            assert isinstance(json.loads(answer)["error"], str)

    check()
    assert_healthy(server)


# --- clients that leave, the soak ----------------------------------------------------------------------------
def metric(url: str, prefix: str, headers: dict[str, str] | None = None) -> float:
    text = httpx.get(url + "/metrics", headers=headers).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


@pytest.fixture(scope="module")
def windowed(run_dir: Path) -> Iterator[Server]:
    """Default limits (1 MB bodies), no API key, a 1 s batching window (requests wait before they run)."""
    with serving(run_dir, "--batch-window-ms", "1000") as running:
        yield running


def test_body_nested_100k_deep_is_400(windowed: Server) -> None:
    status, _, body, _ = exchange(port_of(windowed), request(body=nested(100_000), key=None))
    assert status == 400 and b"deeper than 16 levels" in body
    assert httpx.get(windowed.url + "/healthz").status_code == 200


def test_abandoned_requests_are_not_computed_and_count_as_499(windowed: Server) -> None:
    """Clients that leave while their request waits in the batching window (or while sending it): their work
    is dropped, each is counted under 499 (not as a server error), and nothing is logged as a traceback."""
    server = windowed
    if True:
        port = port_of(server)
        ran_before = metric(server.url, "etk_batch_size_count")
        sockets = []
        for i in range(12):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(request(body=json.dumps({"inputs": [f"text {i}"] * 2}).encode(), key=None))
            sockets.append(sock)
        for _ in range(2):  # and clients that leave half-way through sending their body
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(request(body=VALID, key=None)[:-10])
            sockets.append(sock)
        time.sleep(0.3)  # all queued, the batcher waits in its window
        for sock in sockets:
            sock.close()
        deadline = time.monotonic() + 20
        while metric(server.url, 'etk_requests_total{method="POST",path="/v1/predict",status="499"}') < 14:
            assert time.monotonic() < deadline, httpx.get(server.url + "/metrics").text
            time.sleep(0.2)
        time.sleep(2)  # past the window: had the batch run, it would be counted now
        assert metric(server.url, "etk_batch_size_count") == ran_before
        assert metric(server.url, 'etk_errors_total{kind="client_gone"}') == 14
        assert metric(server.url, 'etk_errors_total{kind="server"}') == 0
        response = httpx.post(server.url + "/v1/predict", json={"inputs": ["still works"]})
        assert response.status_code == 200
        assert "Traceback" not in server.output() and "Exception" not in server.output()


def test_healthz_answers_while_requests_are_tokenised_and_run(server: Server) -> None:
    async def main() -> tuple[list[int], float]:
        limits = httpx.Limits(max_connections=80)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits,
                                     headers={"X-API-Key": KEY}) as client:
            body = {"inputs": ["a long and winding review of a book " * 5] * 8}
            load = [asyncio.create_task(client.post("/v1/predict", json=body)) for _ in range(64)]
            await asyncio.sleep(0.05)
            started = time.monotonic()
            health = await client.get("/healthz")
            waited = time.monotonic() - started
            assert health.status_code == 200
            return [r.status_code for r in await asyncio.gather(*load)], waited

    statuses, waited = asyncio.run(main())
    assert set(statuses) <= {200, 503}, statuses
    assert waited < 3.0, waited


def test_small_soak_has_no_5xx_and_no_lost_request(server: Server) -> None:
    """1,000 requests at concurrency 64, 5% malformed (the 20k soak is benchmarks/serve_qps.py)."""
    malformed = [b'{"inputs": ["unterminated', b'{"inputs": []}', b'{"inputs": [5]}', b"", b"[]",
                 b'{"inputs": ["\\ud800"]}', b"[" * 50 + b"]" * 50, b'{"inputs": [NaN]}']
    rng = random.Random(0)
    plan = [(malformed[i % len(malformed)], False) if rng.random() < 0.05 else
            (json.dumps({"inputs": [f"review number {i} was great"] * (1 + i % 3)}).encode(), True)
            for i in range(1000)]

    async def main() -> dict[str, int]:
        outcome = {"5xx": 0, "lost": 0, "4xx_for_valid": 0, "2xx_for_malformed": 0, "ok": 0}
        queue = iter(plan)
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits,
                                     headers={"X-API-Key": KEY, "content-type": "application/json"}) as client:
            async def worker() -> None:
                for body, valid in queue:
                    try:
                        response = await client.post("/v1/predict", content=body)
                    except httpx.TransportError:
                        outcome["lost"] += 1
                        continue
                    status = response.status_code
                    if status >= 500:
                        outcome["5xx"] += 1
                    elif valid and status == 200:
                        outcome["ok"] += 1
                    elif valid:
                        outcome["4xx_for_valid"] += status < 500
                    else:
                        outcome["2xx_for_malformed"] += status < 300

            await asyncio.gather(*(worker() for _ in range(64)))
        return outcome

    outcome = asyncio.run(main())
    assert outcome["5xx"] == 0 and outcome["lost"] == 0, outcome
    assert outcome["4xx_for_valid"] == 0 and outcome["2xx_for_malformed"] == 0, outcome
    assert outcome["ok"] == sum(valid for _, valid in plan)


# --- shutdown and supervisor faults --------------------------------------------------------------------------
def test_sigterm_with_a_short_graceful_timeout_answers_json_503(run_dir: Path) -> None:
    """Requests still waiting when the graceful timeout runs out get a JSON 503 with Retry-After, not
    uvicorn's plain-text 500; so does one whose body is still arriving."""
    import signal

    async def main(server: Server) -> list[httpx.Response]:
        slow.sendall(request(body=VALID, key=None)[:-10])  # and the rest never
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            tasks = [asyncio.create_task(client.post("/v1/predict", json={"inputs": [f"text {i}"]}))
                     for i in range(6)]
            deadline = time.monotonic() + 10
            while metric(server.url, "etk_requests_in_flight") < 8:  # 6 in the batching window, 1 slow, this GET
                assert time.monotonic() < deadline, server.output()
                await asyncio.sleep(0.02)
            server.process.send_signal(signal.SIGTERM)
            return list(await asyncio.gather(*tasks))

    with serving(run_dir, "--batch-window-ms", "1000", "--graceful-timeout", "0.1") as server:
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=15) as slow:
            responses = asyncio.run(main(server))
            answer = b""
            while chunk := slow.recv(65536):
                answer += chunk
        assert server.process.wait(30) == 0, server.output()
    assert answer.startswith(b"HTTP/1.1 503") and b"shutting down" in answer and b"retry-after: 5" in answer
    assert all(r.status_code in (200, 503) for r in responses), [(r.status_code, r.text) for r in responses]
    refused = [r for r in responses if r.status_code == 503]
    assert refused, "every request finished: the graceful timeout did not cut any"
    for response in refused:
        assert response.headers["retry-after"] and "shutting down" in response.json()["error"]
    assert "Internal Server Error" not in server.output()


def test_workers_exit_when_the_supervisor_is_killed(run_dir: Path) -> None:
    """SIGKILL of the `--workers 2` supervisor: its workers notice and exit, and the port is free again."""
    psutil = pytest.importorskip("psutil")
    import signal

    with serving(run_dir, "--workers", "2") as server:
        workers = [child for child in psutil.Process(server.process.pid).children()
                   if "spawn" in " ".join(child.cmdline())]
        assert len(workers) == 2, [child.cmdline() for child in psutil.Process(server.process.pid).children()]
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        try:
            _, alive = psutil.wait_procs(workers, timeout=20)
            assert not alive, f"workers still running 20 s after the supervisor died: {alive}"
        finally:
            for worker in workers:
                with contextlib.suppress(psutil.NoSuchProcess):
                    worker.kill()
        with socket.socket() as sock:  # the port is free
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port_of(server)))
        assert "supervisor" in server.output() and "is gone" in server.output()
