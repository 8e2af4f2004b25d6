"""Small file helpers: atomic writes so a crash never leaves a half-written file, file digests, and linking
identical files so a run folder holds the same bytes once."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path


def temp_path(path: Path) -> Path:
    """A fresh hidden name beside `path` for a temporary file or folder (unique per call)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    # created by os.open with 0666 so the umask applies (mkstemp's files are always 0600)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def umask() -> int:
    """This process's umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_tensors(tensors: dict, path: Path) -> None:
    """safetensors' save_file with the permissions of any other file (it creates files 0600). A tensor whose
    storage an earlier one holds (a module shared by two parts of a model, e.g. the embeddings of a shared and
    a private encoder) is stored as a copy, which loading puts back into the one parameter."""
    from safetensors.torch import save_file

    seen: set[int] = set()
    unique = {}
    for key, value in tensors.items():
        storage = value.untyped_storage().data_ptr()
        unique[key] = value.clone() if storage in seen and value.numel() else value
        seen.add(storage)
    save_file(unique, str(path))
    os.chmod(path, 0o666 & ~umask())


def atomic_write_text(path: Path, text: str) -> None:
    """Write text atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def fsync(path: Path) -> None:
    """Flush a written file to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def sha256(path: Path) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(folder: Path, skip: Iterable[str] = ()) -> dict[str, str]:
    """sha256 of every file under `folder` by relative POSIX path, except the names in `skip`."""
    skipped = set(skip)
    return {path.relative_to(folder).as_posix(): sha256(path) for path in sorted(Path(folder).rglob("*"))
            if path.is_file() and path.relative_to(folder).as_posix() not in skipped}


def damaged_files(folder: Path, digests: dict[str, str]) -> tuple[str, str] | None:
    """The first file of `digests` that is missing or differs under `folder`: (relative path, what is wrong)."""
    for name, expected in digests.items():
        path = Path(folder) / name
        if not path.is_file():
            return name, "is missing"
        if sha256(path) != expected:
            return name, "does not match its recorded sha256 (truncated or changed)"
    return None


def link_if_identical(path: Path, digest: str, candidates: Iterable[tuple[Path, str]]) -> bool:
    """Replace the file `path` (sha256 `digest`) by a hard link to the first candidate (path, its sha256) with
    the same bytes, so they are stored once. Safe because etk replaces files by rename, never rewrites them in
    place. Returns whether it linked (False where the file system has no hard links)."""
    size = Path(path).stat().st_size
    for candidate, candidate_digest in candidates:
        try:
            if candidate_digest != digest or candidate.stat().st_size != size:
                continue
            link = temp_path(Path(path))
            os.link(candidate, link)
        except OSError:
            continue
        os.replace(link, path)
        return True
    return False
