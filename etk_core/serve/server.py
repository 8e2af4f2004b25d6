"""Running the app on uvicorn: one process, or N worker processes; graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from etk_core.errors import EtkError
from etk_core.serve.settings import PARENT_ENV, SETTINGS_ENV, ServeSettings, resolve_threads

APP_FACTORY = "etk_core.serve.app:app_from_env"


def check_port(host: str, port: int) -> None:
    """Fail with one line when `host:port` cannot be bound (in use, or not a local address)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            message = f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host"
            raise EtkError(message) from None


def check_artifact(settings: ServeSettings) -> str:
    """Fail fast (before starting workers) on a missing artifact or a backend it was not exported for;
    return the backend `auto` resolves to."""
    from etk_core.artifact import find_artifact, verify
    from etk_core.errors import ArtifactError
    from etk_core.export.runtime import ONNX_FILES, has_export

    folder = find_artifact(settings.artifact)
    if settings.backend in ("onnx", "onnx-int8"):
        variant = "int8" if settings.backend == "onnx-int8" else "fp32"
        if not has_export(folder, variant):
            hint = " --quantize int8" if variant == "int8" else ""
            raise ArtifactError(f"{folder} has no {ONNX_FILES[variant]} for --backend {settings.backend}; "
                                f"run `etk export {settings.artifact}{hint}` first, or use --backend torch")
    backend = settings.backend
    if backend == "auto":
        backend = "onnx" if has_export(folder, "fp32") else "torch"
    verify(folder, backend)
    return backend


@contextlib.contextmanager
def exit_cleanly_on_signals() -> Iterator[None]:
    """uvicorn re-raises the signal that stopped it once it has shut down gracefully; make that a no-op,
    so a SIGTERM/SIGINT shutdown exits 0."""
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def http_protocol() -> dict[str, Any]:
    """uvicorn's `http` option with a header size limit: our httptools protocol, else h11 with its own limit."""
    try:
        from etk_core.serve.protocol import MAX_HEADER_BYTES, LimitedHttpToolsProtocol
    except ImportError:  # no httptools
        return {"http": "h11", "h11_max_incomplete_event_size": 64 * 1024}
    return {"http": LimitedHttpToolsProtocol, "h11_max_incomplete_event_size": MAX_HEADER_BYTES}


def uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    """Options shared by the one-process and the worker set-ups."""
    return {"host": settings.host, "port": settings.port, "lifespan": "on", "access_log": settings.access_log,
            "timeout_graceful_shutdown": settings.graceful_timeout, "server_header": False,
            "log_level": "info", "timeout_keep_alive": 5, **http_protocol()}


def exit_with_parent(parent: int, grace: float, poll_s: float = 0.5) -> None:
    """In a worker process: shut down (SIGTERM to itself, then a hard exit after `grace` + 5 s) once the
    supervisor `parent` is gone, even when it was SIGKILLed and could not stop its workers; otherwise the
    workers would keep serving and holding the port."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        print(f"etk serve: supervisor {parent} is gone; worker {os.getpid()} stops", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace + 5)
        os._exit(1)

    threading.Thread(target=watch, name="etk-parent-watch", daemon=True).start()


def describe(settings: ServeSettings, backend: str) -> str:
    """The start-up line."""
    threads = resolve_threads(settings.threads, settings.workers)
    workers = f"{settings.workers} worker{'s' if settings.workers > 1 else ''} × {threads} thread"
    docs = ", GET /docs" if settings.docs else ""
    return (f"etk serve: {settings.artifact} ({backend}, {workers}{'s' if threads > 1 else ''}, max batch "
            f"{settings.max_batch}) on http://{settings.host}:{settings.port}  POST /v1/predict{docs}")


def serve(settings: ServeSettings) -> None:
    """Serve until SIGTERM/SIGINT, then finish in-flight requests and return."""
    import uvicorn

    check_port(settings.host, settings.port)
    if settings.workers <= 1:
        from etk_core.serve.app import create_app, load_predictor

        predictor = load_predictor(settings)
        print(describe(settings, predictor.backend), file=sys.stderr, flush=True)
        server = uvicorn.Server(uvicorn.Config(create_app(settings, predictor), **uvicorn_options(settings)))
        with exit_cleanly_on_signals():
            server.run()
        if not server.started:
            raise EtkError(f"the server on {settings.host}:{settings.port} did not start; see the log above")
        return
    serve_workers(settings)


def serve_workers(settings: ServeSettings) -> None:
    """N uvicorn worker processes sharing one socket; each loads the model and batches on its own.
    Settings reach them through $ETK_SERVE_SETTINGS; metrics are aggregated through a shared folder."""
    from uvicorn import Config
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    backend = check_artifact(settings)
    print(describe(settings, backend), file=sys.stderr, flush=True)
    os.environ[SETTINGS_ENV] = settings.to_env()
    os.environ[PARENT_ENV] = str(os.getpid())
    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="etk-serve-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    try:
        config = Config(APP_FACTORY, factory=True, workers=settings.workers, **uvicorn_options(settings))
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        supervisor.run()
        if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
            raise EtkError("a worker failed to start (see the log above); check the artifact and --backend")
    finally:
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
