"""Serving throughput: `etk serve` (ONNX fp32 and int8) vs a plain PyTorch-eager FastAPI server, plus a soak.

All in one run, on 127.0.0.1, with an aiohttp load generator at concurrency 1, 8 and 32; one short text per
request (the first sentence of each review of a real dev set: `amazon_books:dev` when the shared datasets
folder is there, else `vader_amazon:dev`):

(a) `etk serve` on the fp32 ONNX graph, (b) `etk serve --backend onnx-int8`, (c) an eager server written
below with the same framework (FastAPI on uvicorn) and the same model (the artifact's PyTorch weights): one
request = one forward, no batching, (d) the ceiling: the same ONNX Runtime session in a tight in-process loop
over the same texts, batch 1, tokenised beforehand. Then a soak against (a): 20,000 requests at concurrency
64, 5% malformed, counting 5xx, lost, duplicated and mismatched responses (labels checked against the
in-process predictions, and the server's own request count) and the server's RSS at start and end.

The model is `minilm-l6` trained for a few steps on the dev data (or `--artifact PATH`), exported with
`export_onnx(..., quantize="int8")`. The load generator shares the machine's cores with the server, so QPS
are lower than an external generator (`wrk`) would measure; ratios are what matter. The last line of output
is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from etk_core.testing import free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CONCURRENCY = (1, 8, 32)
SCRIPT = Path(__file__).resolve()


# --- data and model ----------------------------------------------------------------------------------------
def dataset_spec() -> str:
    from etk_core.data.datasets.shared import shared_datasets_dir

    return "amazon_books:dev" if shared_datasets_dir() else "vader_amazon:dev"


def first_sentence(text: str, limit: int = 200) -> str:
    """The first sentence of a review, at most `limit` characters: a short single text."""
    sentence = next((part for part in re.split(r"(?<=[.!?])\s+", text.strip()) if part.strip()), text)
    return sentence[:limit].strip() or text[:limit]


def dev_records(spec: str) -> list[dict[str, Any]]:
    from etk_core.config import resolve
    from etk_core.data.load import load_records

    return load_records(spec, resolve()["data"], required=("text",))


def train_model(spec: str, steps: int, workdir: Path) -> Path:
    """minilm-l6 fine-tuned for `steps` steps on the dev data, exported to ONNX fp32 and int8."""
    from etk_core.export.onnx_export import export_onnx
    from etk_core.testing import run_cli

    out = workdir / "run"
    result = run_cli(["train", "--model", "minilm-l6", "--data", f"train={spec}", "--data", f"dev={spec}",
                      "--set", f"train.max_steps={steps}", "--set", "train.batch_size=16",
                      "--set", "train.max_length=128", "--no-export", "--output", str(out)])
    if result.exit_code != 0:
        raise SystemExit(f"training failed: {result.output}")
    export_onnx(out / "model", quantize="int8")
    return out


# --- servers -----------------------------------------------------------------------------------------------
def rss_mib(pid: int) -> float:
    """Resident memory of a process (MiB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def server(command: list[str], port: int, timeout: float = 120.0) -> Iterator[subprocess.Popen]:
    """Start a server subprocess, wait (bounded) for it to answer, stop it with SIGTERM (kill if it hangs)."""
    import urllib.request

    log = tempfile.TemporaryFile()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise SystemExit(f"server exited with {process.returncode}: {log.read().decode()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"server not ready in {timeout} s: {' '.join(command)}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        log.close()


def etk_command(artifact: Path, port: int, backend: str, threads: int) -> list[str]:
    return [sys.executable, "-m", "etk_core", "serve", str(artifact), "--port", str(port), "--backend", backend,
            "--threads", str(threads)]


def eager_server(artifact: str, port: int, threads: int) -> None:
    """(c) the baseline: a plain FastAPI app on uvicorn, one PyTorch forward per request, no batching."""
    import torch
    import uvicorn
    from fastapi import FastAPI
    from pydantic import BaseModel

    from etk_core.artifact import load_artifact

    torch.set_num_threads(threads)
    loaded = load_artifact(artifact)
    model, tokenizer, labels = loaded.model.eval(), loaded.tokenizer, loaded.app.labels
    max_length = loaded.meta["max_length"]

    class Body(BaseModel):
        inputs: list[str]

    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    async def predict(body: Body) -> dict[str, Any]:
        batch = tokenizer(body.inputs, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.inference_mode():
            probabilities = torch.softmax(model(**batch)["logits"], dim=-1).tolist()
        return {"predictions": [{"label": labels[max(range(len(row)), key=row.__getitem__)],
                                 "probabilities": dict(zip(labels, row))} for row in probabilities]}

    predict.__annotations__ = {"body": Body, "return": dict}  # a local class: give FastAPI the real type
    app.add_api_route("/v1/predict", predict, methods=["POST"])

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- load generation ---------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


async def load(url: str, bodies: list[bytes], concurrency: int, count: int,
               max_seconds: float = 60.0) -> dict[str, Any]:
    """Up to `count` POSTs (bodies cycled; no new ones after `max_seconds`) from `concurrency` keep-alive
    clients: QPS, p50/p99 ms, statuses."""
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(count))
    headers = {"content-type": "application/json"}
    deadline = time.perf_counter() + max_seconds

    async def client(session: aiohttp.ClientSession) -> None:
        for i in counter:
            if time.perf_counter() > deadline:
                break
            started = time.perf_counter()
            async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        for i in range(min(20, count)):  # warm-up: connections, caches
            async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as response:
                await response.read()
        started = time.perf_counter()
        deadline = started + max_seconds
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"qps": round(len(latencies) / elapsed, 1), "p50_ms": round(1000 * percentile(latencies, 0.5), 2),
            "p99_ms": round(1000 * percentile(latencies, 0.99), 2), "requests": len(latencies),
            "statuses": statuses}


def sweep(name: str, command: list[str], port: int, bodies: list[bytes], counts: dict[int, int],
          max_seconds: float) -> dict[str, Any]:
    results = {}
    with server(command, port):
        for concurrency in CONCURRENCY:
            result = asyncio.run(load(f"http://127.0.0.1:{port}/v1/predict", bodies, concurrency,
                                      counts[concurrency], max_seconds))
            results[f"c{concurrency}"] = result
            if set(result["statuses"]) != {200}:
                raise SystemExit(f"{name}: not every request succeeded: {result['statuses']}")
            print(f"{name:<10} c{concurrency:<3} {result['qps']:>8.1f} QPS  p50 {result['p50_ms']:>7.2f} ms  "
                  f"p99 {result['p99_ms']:>7.2f} ms  {result['statuses']}", file=sys.stderr, flush=True)
    return results


# --- soak --------------------------------------------------------------------------------------------------
MALFORMED = [b'{"inputs": ["unterminated', b'{"inputs": []}', b'{"inputs": [5]}', b'{"text": "no inputs"}',
             b'{"inputs": [{"text": "a", "extra": 1}]}', b"", b"[]", b'{"inputs": "not a list"}',
             b'{"inputs": ["\\ud800"]}', b"[" * 5000 + b"]" * 5000, b'{"inputs": [NaN]}', b'{"inputs": ["\xff"]}']


def same(got: list[dict[str, Any]], want: list[dict[str, Any]], tolerance: float = 1e-3) -> bool:
    """The predictions match (labels equal, probabilities within `tolerance`)."""
    return len(got) == len(want) and all(
        one["label"] == other["label"] and all(abs(one["probabilities"][key] - value) <= tolerance
                                               for key, value in other["probabilities"].items())
        for one, other in zip(got, want))


async def soak(url: str, texts: list[str], want: dict[str, dict[str, Any]], total: int, concurrency: int,
               bad_share: float = 0.05) -> dict[str, Any]:
    """`total` requests, `bad_share` malformed; a valid one has 1 text (2-3 for every fourth) whose
    prediction is known: an answer that is not the request's own counts as mismatched."""
    import aiohttp

    rng = random.Random(0)
    plan = []
    for i in range(total):
        if rng.random() < bad_share:
            plan.append((i, MALFORMED[i % len(MALFORMED)], None))
        else:
            chosen = [texts[rng.randrange(len(texts))] for _ in range(2 + i % 2 if i % 4 == 0 else 1)]
            plan.append((i, json.dumps({"inputs": chosen}).encode(), chosen))
    answered: dict[int, int] = {}
    latencies: list[float] = []
    outcome = {"5xx": 0, "4xx_for_valid": 0, "2xx_for_malformed": 0, "lost": 0, "mismatched": 0}
    queue = iter(plan)

    async def client(session: aiohttp.ClientSession) -> None:
        for i, body, chosen in queue:
            sent = time.perf_counter()
            try:
                async with session.post(url, data=body, headers={"content-type": "application/json"}) as response:
                    payload = await response.read()
                    status = response.status
            except (TimeoutError, aiohttp.ClientError):
                outcome["lost"] += 1
                continue
            latencies.append(time.perf_counter() - sent)
            answered[i] = answered.get(i, 0) + 1
            if status >= 500:
                outcome["5xx"] += 1
            elif chosen is None:
                outcome["2xx_for_malformed"] += status < 300
            elif status >= 400:
                outcome["4xx_for_valid"] += 1
            else:
                got = json.loads(payload)["predictions"]
                outcome["mismatched"] += not same(got, [want[text] for text in chosen])

    connector = aiohttp.TCPConnector(limit=concurrency)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    outcome["lost"] += total - len(answered)
    outcome["duplicated"] = sum(count - 1 for count in answered.values())
    outcome["requests"] = total
    outcome["malformed_sent"] = sum(chosen is None for _, _, chosen in plan)
    outcome["qps"] = round(total / (time.perf_counter() - started), 1)
    latencies.sort()
    if latencies:
        outcome["p50_ms"] = round(1000 * latencies[len(latencies) // 2], 1)
        outcome["p99_ms"] = round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1)
    return outcome


def server_count(port: int) -> float:
    """Requests to /v1/predict the server counted (all statuses), from /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("etk_requests_total{") and 'path="/v1/predict"' in line)


# --- in-process figures (own process: one ONNX Runtime session, nothing else spinning) ----------------------
def offline(artifact: str, texts_file: str, dev_file: str, repeats: int, threads: int) -> None:
    """(d) ceilings for fp32 and int8, the labels etk gives for the texts, and int8/fp32 agreement on dev."""
    from etk_core.artifact import find_artifact
    from etk_core.export.runtime import OnnxRunner
    from etk_core.predict import Predictor

    texts = json.loads(Path(texts_file).read_text())
    dev = json.loads(Path(dev_file).read_text())
    result: dict[str, Any] = {}
    for backend in ("onnx", "onnx-int8"):
        predictor = Predictor(artifact, backend=backend, threads=threads)
        batches = [predictor.app.collate([predictor.app.encode({"text": text}, with_label=False)]) for text in texts]
        runner = OnnxRunner(find_artifact(artifact), "int8" if backend == "onnx-int8" else "fp32",
                            threads=threads)  # the session the server runs, alone in this loop
        for batch in batches[:20]:
            runner.run(batch)
        latencies = []
        started = time.perf_counter()
        for _ in range(repeats):
            for batch in batches:
                one = time.perf_counter()
                runner.run(batch)
                latencies.append(time.perf_counter() - one)
        elapsed = time.perf_counter() - started
        del runner
        result[backend] = {"qps": round(len(latencies) / elapsed, 1),
                           "p50_ms": round(1000 * percentile(latencies, 0.5), 2),
                           "p99_ms": round(1000 * percentile(latencies, 0.99), 2)}
        result[f"{backend}_dev_labels"] = [p["label"] for p in predictor.predict(dev)]
        if backend == "onnx":  # what the soak's (fp32) server must answer for each text
            result["expected"] = dict(zip(texts, predictor.predict(texts)))
        del predictor
    fp32, int8 = result.pop("onnx_dev_labels"), result.pop("onnx-int8_dev_labels")
    result["int8_agreement"] = round(sum(a == b for a, b in zip(fp32, int8)) / len(fp32), 4)
    result["dev_examples"] = len(fp32)
    print(json.dumps(result))


def run_offline(artifact: Path, texts: list[str], dev: list[str], repeats: int, threads: int,
                workdir: Path) -> dict[str, Any]:
    texts_file, dev_file = workdir / "texts.json", workdir / "dev.json"
    texts_file.write_text(json.dumps(texts))
    dev_file.write_text(json.dumps(dev))
    out = subprocess.run([sys.executable, str(SCRIPT), "--offline", str(artifact), str(texts_file), str(dev_file),
                          str(repeats), str(threads)], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"in-process measurement failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def soak_against(artifact: Path, threads: int, texts: list[str], bodies: list[bytes], offline_figures: dict,
                 total: int) -> dict[str, Any]:
    """The soak against a fresh `etk serve` on the fp32 graph (answers do not depend on what else is in the
    batch; int8's dynamic scales do), with the server's own count and RSS."""
    port = free_port()
    with server(etk_command(artifact, port, "onnx", threads), port) as process:
        asyncio.run(load(f"http://127.0.0.1:{port}/v1/predict", bodies, 8, 200))
        rss_start = rss_mib(process.pid)
        before = server_count(port)
        soaked = asyncio.run(soak(f"http://127.0.0.1:{port}/v1/predict", texts, offline_figures.pop("expected"),
                                  total, 64))
        soaked["server_counted"] = int(server_count(port) - before)
        soaked["rss_start_mib"], soaked["rss_end_mib"] = round(rss_start, 1), round(rss_mib(process.pid), 1)
    print(f"soak       {soaked}", file=sys.stderr, flush=True)
    return soaked


# --- main --------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run of the same comparison")
    parser.add_argument("--artifact", help="an exported artifact (fp32 and int8) instead of training one")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 20, quick 4)")
    parser.add_argument("--soak", type=int, default=None, help="soak requests (default 20000, quick 2000)")
    parser.add_argument("--soak-only", action="store_true", help="only the soak (no throughput sweeps)")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads of every server and the ceiling (default: physical cores, "
                             "etk serve's default with one worker)")
    parser.add_argument("--eager-server", nargs=3, metavar=("ARTIFACT", "PORT", "THREADS"), help=argparse.SUPPRESS)
    parser.add_argument("--offline", nargs=5, metavar=("ARTIFACT", "TEXTS", "DEV", "REPEATS", "THREADS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.eager_server:
        eager_server(args.eager_server[0], int(args.eager_server[1]), int(args.eager_server[2]))
        return 0
    if args.offline:
        offline(*args.offline[:3], int(args.offline[3]), int(args.offline[4]))
        return 0
    from etk_core.serve.settings import physical_cores

    threads = args.threads or physical_cores()

    quick = args.quick
    counts = {1: 60, 8: 160, 32: 320} if quick else {1: 300, 8: 800, 32: 1600}
    max_seconds = 5.0 if quick else 15.0  # per concurrency level: a slow baseline stops early
    load_start = os.getloadavg()[0]
    soak_total = args.soak or (2000 if quick else 20_000)
    spec = dataset_spec()
    records = dev_records(spec)
    texts = list(dict.fromkeys(first_sentence(record["text"]) for record in records))
    bodies = [json.dumps({"inputs": [text]}).encode() for text in texts]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.artifact:
            artifact = Path(args.artifact)
        else:
            steps = args.steps or (4 if quick else 20)
            print(f"training minilm-l6 for {steps} steps on {spec}, exporting fp32 and int8 ...", file=sys.stderr)
            artifact = train_model(spec, steps, workdir)
        print(f"data {spec}: {len(texts)} short texts (median {sorted(map(len, texts))[len(texts) // 2]} chars); "
              f"{os.cpu_count()} cores, {threads} threads per server", file=sys.stderr, flush=True)
        offline_figures = run_offline(artifact, texts, [record["text"] for record in records],
                                      1 if quick else 3, threads, workdir)
        ceiling = {"fp32": offline_figures["onnx"], "int8": offline_figures["onnx-int8"]}
        print(f"ceiling    fp32 {ceiling['fp32']}  int8 {ceiling['int8']}", file=sys.stderr, flush=True)

        results: dict[str, Any] = {}
        port = free_port()
        if args.soak_only:
            soaked = soak_against(artifact, threads, texts, bodies, offline_figures, soak_total)
            print(json.dumps({"data": spec, "cores": os.cpu_count(), "threads": threads, "soak": soaked,
                              "seconds": round(time.perf_counter() - started, 1)}))
            return 0
        results["etk_fp32"] = sweep("etk fp32", etk_command(artifact, port, "onnx", threads), port, bodies, counts,
                                    max_seconds)
        port = free_port()
        results["etk_int8"] = sweep("etk int8", etk_command(artifact, port, "onnx-int8", threads), port, bodies, counts,
                                    max_seconds)
        port = free_port()
        eager = [sys.executable, str(SCRIPT), "--eager-server", str(artifact), str(port), str(threads)]
        results["eager"] = sweep("eager", eager, port, bodies, counts, max_seconds)

        soaked = soak_against(artifact, threads, texts, bodies, offline_figures, soak_total)
    load_end = os.getloadavg()[0]

    c32 = {name: figures["c32"]["qps"] for name, figures in results.items()}
    ratios = {"etk_fp32_vs_eager_c32": round(c32["etk_fp32"] / c32["eager"], 2),
              "etk_int8_vs_eager_c32": round(c32["etk_int8"] / c32["eager"], 2),
              "etk_fp32_vs_ceiling": round(max(r["qps"] for r in results["etk_fp32"].values())
                                           / ceiling["fp32"]["qps"], 2),
              "etk_int8_vs_ceiling": round(max(r["qps"] for r in results["etk_int8"].values())
                                           / ceiling["int8"]["qps"], 2)}
    print("ratios     " + "  ".join(f"{key} {value}" for key, value in ratios.items()), file=sys.stderr)
    print(f"int8 agreement with fp32 on {offline_figures['dev_examples']} dev examples: "
          f"{offline_figures['int8_agreement']:.2%}", file=sys.stderr)
    print(f"load average {load_start:.1f} at start, {load_end:.1f} at end (other work on the machine skews "
          f"figures)", file=sys.stderr)
    print(json.dumps({"data": spec, "texts": len(texts), "quick": quick, "cores": os.cpu_count(), "threads": threads,
                      "load_average": [round(load_start, 2), round(load_end, 2)],
                      "concurrency": list(CONCURRENCY), "requests": counts, **results, "ceiling": ceiling,
                      "ratios": ratios, "int8_agreement": offline_figures["int8_agreement"],
                      "dev_examples": offline_figures["dev_examples"], "soak": soaked,
                      "seconds": round(time.perf_counter() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
