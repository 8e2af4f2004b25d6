"""nox sessions: tests of the core, of each plugin, of everything together; lint; benchmarks.

Sessions run in the current environment (`venv_backend="none"`): building a fresh virtualenv with torch
for each of nine sessions would take longer than the tests. Set up once with `bash scripts/setup.sh`.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "tests"]

PLUGINS = sorted(path.name for path in Path("plugins").iterdir() if (path / "pyproject.toml").is_file())


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole repository."""
    session.run("ruff", "check", ".")


@nox.session
def core(session: nox.Session) -> None:
    """The core's own tests."""
    session.run("python", "-m", "pytest", "tests", *session.posargs)


@nox.session
@nox.parametrize("plugin", PLUGINS)
def plugin(session: nox.Session, plugin: str) -> None:
    """One plugin's tests."""
    session.run("python", "-m", "pytest", f"plugins/{plugin}/tests", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Everything installed together: core, plugins and cross-plugin tests."""
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Benchmarks (etk vs the baseline in the same run); pass --quick for a short run."""
    args = session.posargs or []
    session.run("python", "benchmarks/train_throughput.py", *args)
    session.run("python", "benchmarks/serve_qps.py", *args)


@nox.session
def instance_tl(session: nox.Session) -> None:
    """Instance-based TL on Quora -> CIKM (6 algorithms x 3 seeds; long: pass --quick for a check)."""
    session.run("python", "benchmarks/instance_tl.py", *(session.posargs or []))


@nox.session
def rsa(session: nox.Session) -> None:
    """Random Sparse Attention vs dense SDPA (time, memory, GFLOP/s); then RSA-BERT quality (long)."""
    session.run("python", "benchmarks/rsa.py", *(session.posargs or []))
    session.run("python", "benchmarks/rsa_bert_quality.py", *(session.posargs or []))


@nox.session
def strategies(session: nox.Session) -> None:
    """single vs ddp throughput and memory; gradient bytes per communication hook."""
    session.run("python", "benchmarks/strategies.py", *(session.posargs or []))


@nox.session
def distill(session: nox.Session) -> None:
    """Distillation on the Amazon 4 domains: teacher, students, kd/pkd/distilbert/tinybert/metakd/adabert."""
    session.run("python", "benchmarks/distill.py", *(session.posargs or []))


@nox.session
def feature_tl(session: nox.Session) -> None:
    """Feature-based TL (Table 8): Quora -> CIKM and two Amazon pairs, 9 rows x 3 seeds (long: --quick checks)."""
    session.run("python", "benchmarks/feature_tl.py", *(session.posargs or []))
