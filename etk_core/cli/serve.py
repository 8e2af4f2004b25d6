"""`etk serve`: an HTTP prediction server (FastAPI on uvicorn) for a model artifact."""

from __future__ import annotations

import click

from etk_core.predict import BACKENDS


@click.command("serve")
@click.argument("artifact", type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (loopback by default; 0.0.0.0 exposes the server to the network).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="auto: ONNX Runtime when the artifact is exported, else PyTorch.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (each loads the model and batches on its own).")
@click.option("--threads", default=None, type=click.IntRange(1, 256),
              help="Intra-op threads per worker [default: $ETK_ORT_THREADS, else physical cores with 1 worker, "
                   "1 with several].")
@click.option("--max-batch", default=32, show_default=True, type=click.IntRange(1),
              help="Most inputs run together in one inference.")
@click.option("--queue-size", default=256, show_default=True, type=click.IntRange(1),
              help="Requests that may wait for inference; beyond it requests get 503 with Retry-After.")
@click.option("--batch-window-ms", default=0.0, show_default=True, type=click.FloatRange(0, 1000),
              help="Wait this long for more requests before each inference (for GPUs; 0: greedy, no timer).")
@click.option("--max-body-bytes", default=1_000_000, show_default=True, type=click.IntRange(1),
              help="Largest request body (413 beyond).")
@click.option("--max-text-chars", default=10_000, show_default=True, type=click.IntRange(1),
              help="Longest text of one input (422 beyond).")
@click.option("--max-inputs", default=64, show_default=True, type=click.IntRange(1),
              help="Most inputs in one request (422 beyond).")
@click.option("--api-key", envvar="ETK_API_KEY", default=None, show_envvar=True,
              help="Require `Authorization: Bearer KEY` or `X-API-Key: KEY` (not on /healthz, /readyz).")
@click.option("--graceful-timeout", default=30.0, show_default=True, type=click.FloatRange(0),
              help="Seconds to let in-flight requests finish after SIGTERM/SIGINT.")
@click.option("--read-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds a client has to send a request body after its headers (408 beyond).")
@click.option("--allowed-hosts", default=None, metavar="NAMES",
              help="Comma-separated Host names to answer (421 otherwise; `*`: any) [default: the loopback names "
                   "when bound to loopback, else any].")
@click.option("--docs/--no-docs", default=False, show_default=True,
              help="Serve /docs and /redoc (Swagger UI and ReDoc, pinned versions, loaded by the browser from a "
                   "CDN).")
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="Log every request.")
def serve(artifact: str, host: str, port: int, backend: str, workers: int, threads: int | None, max_batch: int,
          queue_size: int, batch_window_ms: float, max_body_bytes: int, max_text_chars: int, max_inputs: int,
          api_key: str | None, graceful_timeout: float, read_timeout: float, allowed_hosts: str | None,
          docs: bool, access_log: bool) -> None:
    """Serve RUN_OR_ARTIFACT over HTTP: POST /v1/predict {"inputs": [...]} (Content-Type: application/json);
    GET /healthz, /readyz, /v1/model, /metrics (/docs with --docs). Stops gracefully on SIGTERM or Ctrl-C."""
    from etk_core.serve.server import serve as run_server
    from etk_core.serve.settings import ServeSettings

    hosts = [name.strip() for name in allowed_hosts.split(",") if name.strip()] if allowed_hosts is not None else None
    if hosts == []:
        from etk_core.errors import ConfigError

        raise ConfigError("--allowed-hosts is empty; give host names (e.g. api.example.com,localhost) or `*` "
                          "for any")
    settings = ServeSettings(artifact=artifact, host=host, port=port, backend=backend, workers=workers,
                             threads=threads, max_batch=max_batch, queue_size=queue_size,
                             batch_window_ms=batch_window_ms, max_body_bytes=max_body_bytes,
                             max_text_chars=max_text_chars, max_inputs=max_inputs, api_key=checked_key(api_key),
                             graceful_timeout=graceful_timeout, access_log=access_log, read_timeout=read_timeout,
                             allowed_hosts=hosts, docs=docs)
    run_server(settings)


def checked_key(api_key: str | None) -> str | None:
    """The API key, refusing an empty or blank one (it would silently turn authentication off)."""
    import os

    from etk_core.errors import ConfigError
    from etk_core.serve.settings import API_KEY_ENV

    if api_key is None and API_KEY_ENV in os.environ:  # click skips an empty environment variable
        api_key = os.environ[API_KEY_ENV]
    if api_key is not None and not api_key.strip():
        raise ConfigError(f"the API key is empty (--api-key or ${API_KEY_ENV}), which would turn authentication "
                          f"off; give a key, or leave both unset to serve without one")
    return api_key


COMMANDS = [serve]
