"""Launching a multi-process run: `etk train --strategy ddp --nproc N` starts N workers on this machine;
with `--nnodes M --node-rank R --master-addr HOST --master-port PORT`, the same command on each of M
machines starts their N workers each, ranked R x N + local rank, meeting at HOST:PORT (node 0).

The resolved config goes to a file the workers read (`etk train --config FILE`), so every worker trains
exactly the run the user asked for; the rendezvous is the usual torch.distributed environment (RANK,
WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT; one node: a free loopback port). The
launcher waits for its workers; when one fails it stops the others and exits with that worker's code (its
one-line error is what the user sees, as for a single-process run). Global rank 0 writes the run folder:
with several nodes, give them a shared --output folder if every node should see it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Seconds the other workers get to end by themselves after one failed, before they are stopped.
GRACE_S = 3.0

#: Set in workers, so that their `etk train` runs instead of launching again.
WORKER_ENV = "ETK_WORKER"


def is_worker() -> bool:
    """Whether this process is a launched worker."""
    return os.environ.get(WORKER_ENV) == "1"


@dataclass(frozen=True)
class Nodes:
    """Where this machine stands in a (possibly multi-node) run."""

    count: int = 1
    rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int | None = None

    def check(self) -> None:
        """One-line errors for a rendezvous that cannot work."""
        from etk_core.errors import ConfigError

        if self.rank >= self.count:
            raise ConfigError(f"--node-rank {self.rank} must be below --nnodes {self.count}")
        if self.count > 1 and self.master_port is None:
            raise ConfigError("--nnodes > 1 needs --master-port (a port on node 0 every node can reach), and "
                              "--master-addr (node 0's address)")


def launch_workers(config: dict[str, Any], processes: int, extra_args: list[str], verbose: bool = False,
                   nodes: Nodes | None = None) -> int:
    """Run this node's `processes` workers of the run described by `config`; return the exit code
    (`verbose`: workers show tracebacks)."""
    from etk_core import config as config_mod
    from etk_core.net import free_port

    nodes = nodes or Nodes()
    nodes.check()
    with tempfile.TemporaryDirectory(prefix="etk-launch-") as folder:
        path = Path(folder) / "config.yaml"
        config_mod.save(config, path)
        port = nodes.master_port or free_port()
        workers, logs = [], []
        for local in range(processes):
            rank = nodes.rank * processes + local
            env = {**os.environ, WORKER_ENV: "1", "RANK": str(rank), "LOCAL_RANK": str(local),
                   "WORLD_SIZE": str(processes * nodes.count), "LOCAL_WORLD_SIZE": str(processes),
                   "MASTER_ADDR": nodes.master_addr, "MASTER_PORT": str(port),
                   # one core group per worker: intra-op threads split between the workers
                   "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS",
                                                     str(max(1, (os.cpu_count() or 1) // processes)))}
            command = [sys.executable, "-m", "etk_core", *(["--verbose"] if verbose else []), "train", "--config",
                       str(path), *extra_args]
            # the first worker of each machine speaks; the others' stderr is kept for when one of them fails
            # alone (a bad input usually fails every worker with the same line: it is shown once)
            logs.append(None if local == 0 else open(Path(folder) / f"worker-{local}.err", "w+b"))  # noqa: SIM115
            workers.append(subprocess.Popen(command, env=env, stderr=logs[-1],
                                            stdout=None if rank == 0 else subprocess.DEVNULL))
        code, first = _wait(workers)
        if first > 0 and workers[0].returncode in (0, -signal.SIGTERM):
            logs[first].seek(0)
            sys.stderr.write(logs[first].read().decode(errors="replace")[-4000:])
        for log in logs[1:]:
            log.close()
        return code


def _wait(workers: list[subprocess.Popen]) -> tuple[int, int]:
    """Wait for every worker; when one fails, stop the others. (exit code, index of the first failure)."""
    while True:
        codes = [worker.poll() for worker in workers]
        failed = [index for index, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            # a moment for the others to end on their own (bad input fails them all alike), then stop them
            deadline = time.monotonic() + GRACE_S
            while time.monotonic() < deadline and any(worker.poll() is None for worker in workers):
                time.sleep(0.05)
            for worker in workers:
                if worker.poll() is None:
                    worker.terminate()
            for worker in workers:
                worker.wait()
            return codes[failed[0]], failed[0]
        if all(code == 0 for code in codes):
            return 0, -1
        time.sleep(0.2)
