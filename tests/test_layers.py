"""Layers without cycles: which etk modules may import which, read from the source tree with `ast`."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "etk_core"

#: (file, module or package) imports that break a rule, tolerated until fixed; each must still be there (a
#: ratchet: once fixed, delete the entry so that it cannot come back).
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {
    ("etk_core/interfaces.py", "etk_core.training"):
        "Strategy.engine's default builds the accelerate TrainEngine (a lazy import inside that method)",
}


def _known(name: str, module: str) -> bool:
    return any(file == name and _within(module, known) for file, known in KNOWN_VIOLATIONS)


@dataclass(frozen=True)
class Import:
    """One imported module: where, and whether only under `if TYPE_CHECKING:`."""

    module: str
    line: int
    type_checking: bool


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _is_module(dotted: str) -> bool:
    """Whether `dotted` names a module of this repository's etk_core (for `from etk_core import errors`)."""
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(source: str, package: tuple[str, ...] = ()) -> list[Import]:
    """Every module `source` imports, at module level or inside functions: for `from m import x`, `m.x` when
    that is a module, else `m`; relative imports are resolved against `package` (the importer's package)."""
    found: list[Import] = []

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, guarded)
            return
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno, guarded) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                child = f"{module}.{alias.name}"
                found.append(Import(child if _is_module(child) else module, node.lineno, guarded))
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(ast.parse(source), False)
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def plugin_runtime_modules() -> list[Path]:
    """Each plugin package's modules, without tests."""
    paths = []
    for init in sorted(ROOT.glob("plugins/*/*/__init__.py")):
        for path in sorted(init.parent.rglob("*.py")):
            if "tests" not in path.relative_to(init.parent).parts and not path.name.startswith("test_"):
                paths.append(path)
    return paths


def _package_of(path: Path) -> tuple[str, ...]:
    """The dotted package a module file is in: etk_core/data/load.py -> (etk_core, data)."""
    relative = path.relative_to(ROOT).parts
    top = 0 if relative[0] == "etk_core" else 2  # plugins/etk-x/etk_x/...
    return tuple(relative[top:-1])


def violations(paths: list[Path], forbidden: tuple[str, ...], allowed: tuple[str, ...] = (),
               type_checking_ok: bool = False) -> list[str]:
    """`file:line imports module` for each import of a module within one of `forbidden` (and none of
    `allowed`), leaving out KNOWN_VIOLATIONS."""
    out = []
    for path in paths:
        name = path.relative_to(ROOT).as_posix()
        for found in imports_of(path.read_text(encoding="utf-8"), _package_of(path)):
            if (type_checking_ok and found.type_checking) or _known(name, found.module):
                continue
            if any(_within(found.module, prefix) for prefix in allowed):
                continue
            if any(_within(found.module, prefix) for prefix in forbidden):
                out.append(f"{name}:{found.line} imports {found.module}")
    return out


def _core(*patterns: str) -> list[Path]:
    return sorted({path for pattern in patterns for path in CORE.glob(pattern)})


def test_checker_sees_lazy_relative_and_type_checking_imports():
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from etk_core.run import Run\n"
              "def f():\n    import etk_core.testing\n    from . import plugins\n")
    found = {(item.module, item.type_checking) for item in imports_of(source, ("etk_core", "data"))}
    assert ("etk_core.run", True) in found
    assert ("etk_core.testing", False) in found
    assert ("etk_core.data", False) in found  # etk_core/data/plugins.py is no module: an attribute


def test_runtime_modules_never_import_the_test_helpers():
    paths = [path for path in core_modules() if path != CORE / "testing.py"] + plugin_runtime_modules()
    assert len(paths) > 50
    assert violations(paths, ("etk_core.testing",)) == []


def test_leaf_modules_import_nothing_from_etk():
    assert violations([CORE / "options.py", CORE / "errors.py"], ("etk_core",)) == []
    assert violations([CORE / "interfaces.py"], ("etk_core",), allowed=("etk_core.options", "etk_core.errors"),
                      type_checking_ok=True) == []


def test_registry_does_not_import_the_plugin_host():
    assert violations([CORE / "registry.py"], ("etk_core.plugins",)) == []


def test_layer_order():
    """cli may import anything; run and api not cli; training, data, export and serve not cli, run or api."""
    assert violations(_core("run.py", "api*.py", "api/**/*.py"), ("etk_core.cli",)) == []
    lower = _core("training/**/*.py", "data/**/*.py", "export/**/*.py", "serve/**/*.py")
    assert len(lower) > 20
    forbidden = ("etk_core.cli", "etk_core.run", "etk_core.api")
    api_modules = tuple(f"etk_core.{path.stem}" for path in _core("api_*.py"))
    assert violations(lower, forbidden + api_modules) == []


def test_known_violations_are_still_there():
    """When one is fixed, delete it from KNOWN_VIOLATIONS so that it cannot come back."""
    for (file, module), why in KNOWN_VIOLATIONS.items():
        found = imports_of((ROOT / file).read_text(encoding="utf-8"))
        assert any(_within(item.module, module) and not item.type_checking for item in found), (
            f"{file} no longer imports {module}: remove it from KNOWN_VIOLATIONS ({why})")
