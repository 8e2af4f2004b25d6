"""The docs cite only what a clone holds: every relative link (or relative path quoted as code) in a Markdown
file resolves to a file or folder inside the repository, and no page names a path of the machine it was written on."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_PATH = re.compile(r"`(\.\.?/[^`\s]+)`")  # a relative path quoted as code: `../x/y.md`
MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:work|root|home|tmp/pytest-of|check)/[\w./-]+")


def _markdown_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "*.md"], cwd=ROOT, text=True,
                            capture_output=True, check=True).stdout.split()
    return sorted(ROOT / name for name in listed if (ROOT / name).is_file())


FILES = _markdown_files()


def test_there_are_docs_to_check():
    assert {"README.md", "docs/reliability.md"} <= {str(file.relative_to(ROOT)) for file in FILES}


@pytest.mark.parametrize("page", FILES, ids=[str(file.relative_to(ROOT)) for file in FILES])
def test_relative_links_resolve_inside_the_repository(page: Path):
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(text) + CODE_PATH.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor on the same page
        resolved = (page.parent / target.split("#")[0]).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to what a clone does not hold: {broken}"


@pytest.mark.parametrize("page", FILES, ids=[str(file.relative_to(ROOT)) for file in FILES])
def test_no_machine_paths(page: Path):
    found = MACHINE_PATH.findall(page.read_text(encoding="utf-8"))
    assert not found, f"{page.relative_to(ROOT)} names paths of one machine: {found}"


def test_reliability_promises_name_tests_that_exist():
    """docs/reliability.md names the test behind each promise; every one named must exist."""
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    named = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", text)
    assert len(named) >= 20
    missing = []
    current = None
    for path, test in named:
        file = ROOT / path
        if not file.is_file():
            missing.append(path)
            continue
        current = file
        if test and not re.search(rf"def {test}\(", file.read_text(encoding="utf-8")):
            missing.append(f"{path}::{test}")
    # bare `test_...` names after a `tests/x.py::...` belong to that file
    for line in text.splitlines():
        for path, _ in re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", line):
            current = ROOT / path
        for test in re.findall(r"`(test_\w+)`", line):
            if current is not None and not re.search(rf"def {test}\(", current.read_text(encoding="utf-8")):
                missing.append(f"{current.relative_to(ROOT)}::{test}")
    assert not missing, missing
