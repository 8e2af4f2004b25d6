"""Server settings: one dataclass, with a round trip through an environment variable for worker processes."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

#: Environment variable that carries the settings to `--workers N` processes (the app factory reads it).
SETTINGS_ENV = "ETK_SERVE_SETTINGS"
#: Environment variable with the supervisor's pid, so that `--workers N` processes exit when it dies.
PARENT_ENV = "ETK_SERVE_PARENT"
#: Environment variable with the API key when `--api-key` is not given.
API_KEY_ENV = "ETK_API_KEY"


@dataclass
class ServeSettings:
    """Everything `etk serve` is configured with (the CLI options, defaults included)."""

    artifact: str
    host: str = "127.0.0.1"
    port: int = 8000
    backend: str = "auto"
    workers: int = 1
    threads: int | None = None
    max_batch: int = 32
    queue_size: int = 256
    batch_window_ms: float = 0.0
    max_body_bytes: int = 1_000_000
    max_text_chars: int = 10_000
    max_inputs: int = 64
    api_key: str | None = None
    graceful_timeout: float = 30.0
    access_log: bool = False
    read_timeout: float = 10.0
    allowed_hosts: list[str] | None = None
    docs: bool = False

    def to_env(self) -> str:
        """The settings as one JSON string (for `SETTINGS_ENV`)."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        """The settings a parent process put into `SETTINGS_ENV`."""
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            raise RuntimeError(f"{SETTINGS_ENV} is not set; start workers through `etk serve --workers N`")
        return cls(**json.loads(raw))


#: Bind addresses that only the local machine can reach.
LOOPBACK_BINDS = ("127.0.0.1", "localhost", "::1")
#: Host names a client on the local machine sends for a loopback-bound server.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def host_allow_list(settings: ServeSettings) -> frozenset[str] | None:
    """The Host names the server answers (None: any): `--allowed-hosts`, else the loopback names when bound
    to loopback (so a web page cannot reach a local server through DNS rebinding), else any."""
    if settings.allowed_hosts:
        names = {name.strip().lower() for name in settings.allowed_hosts if name.strip()}
        return None if "*" in names else frozenset(names)
    if settings.host in LOOPBACK_BINDS or settings.host.startswith("127."):
        return frozenset({*LOOPBACK_NAMES, settings.host})
    return None


def physical_cores() -> int:
    """Physical CPU cores (logical cores when psutil is not installed)."""
    try:
        import psutil

        count = psutil.cpu_count(logical=False)
    except ImportError:
        count = None
    return max(1, count or os.cpu_count() or 1)


def resolve_threads(threads: int | None, workers: int) -> int:
    """Intra-op threads per worker: `threads`, else `$ETK_ORT_THREADS`, else physical cores with one worker
    and 1 with several (N workers × 1 thread each fill N cores without oversubscribing them)."""
    if threads:
        return threads
    configured = os.environ.get("ETK_ORT_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return physical_cores() if workers == 1 else 1
