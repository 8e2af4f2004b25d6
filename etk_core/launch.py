"""Launching a multi-process run: `etk train --strategy ddp --nproc N` starts N workers on this machine.

The resolved config goes to a file the workers read (`etk train --config FILE`), so every worker trains
exactly the run the user asked for; the rendezvous is the usual torch.distributed environment (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT on a free loopback port). The launcher waits for all
workers; when one fails it stops the others and exits with that worker's code (its one-line error is what
the user sees, as for a single-process run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Set in workers, so that their `etk train` runs instead of launching again.
WORKER_ENV = "ETK_WORKER"


def is_worker() -> bool:
    """Whether this process is a launched worker."""
    return os.environ.get(WORKER_ENV) == "1"


def launch_workers(config: dict[str, Any], processes: int, extra_args: list[str], verbose: bool = False) -> int:
    """Run `processes` workers of the run described by `config`; return the exit code (`verbose`: workers
    show tracebacks)."""
    from etk_core import config as config_mod
    from etk_core.testing import free_port

    with tempfile.TemporaryDirectory(prefix="etk-launch-") as folder:
        path = Path(folder) / "config.yaml"
        config_mod.save(config, path)
        port = free_port()
        workers = []
        for rank in range(processes):
            env = {**os.environ, WORKER_ENV: "1", "RANK": str(rank), "LOCAL_RANK": str(rank),
                   "WORLD_SIZE": str(processes), "LOCAL_WORLD_SIZE": str(processes),
                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                   # one core group per worker: intra-op threads split between the workers
                   "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS",
                                                     str(max(1, (os.cpu_count() or 1) // processes)))}
            command = [sys.executable, "-m", "etk_core", *(["--verbose"] if verbose else []), "train", "--config",
                       str(path), *extra_args]
            workers.append(subprocess.Popen(command, env=env, stdout=None if rank == 0 else subprocess.DEVNULL))
        return _wait(workers)


def _wait(workers: list[subprocess.Popen]) -> int:
    while True:
        codes = [worker.poll() for worker in workers]
        failed = [code for code in codes if code not in (None, 0)]
        if failed:
            for worker in workers:
                if worker.poll() is None:
                    worker.terminate()
            for worker in workers:
                worker.wait()
            return failed[0]
        if all(code == 0 for code in codes):
            return 0
        time.sleep(0.2)
