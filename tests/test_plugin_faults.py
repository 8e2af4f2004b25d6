"""A plugin that fails at any point of loading is one warning naming it and its version; the rest still works."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
import pytest

from etk_core import builtin_hooks, registry
from etk_core.errors import UnknownComponentError
from etk_core.hookspecs import hookimpl
from etk_core.interfaces import Algorithm
from etk_core.plugins import get_plugin_manager, reset_plugin_manager
from etk_core.registry import get_component, get_registry
from etk_core.testing import run_cli


class EchoAlgorithm(Algorithm):
    """Test algorithm."""

    name = "echo"
    description = "an in-process test algorithm"

    def run(self, run):  # pragma: no cover - never trained
        return {}


@dataclass
class FakeDist:
    """Just what the plugin host reads of a distribution."""

    name: str
    version: str

    @property
    def metadata(self) -> dict[str, str]:
        return {"Name": self.name}


@dataclass
class FakeEntryPoint:
    """An `etk` entry point whose `load()` returns `plugin` (or calls it, when it is a loader that raises)."""

    name: str
    plugin: Any
    version: str = "9.9"
    raises: Exception | None = None

    @property
    def dist(self) -> FakeDist:
        return FakeDist(f"etk-{self.name}", self.version)

    def load(self) -> Any:
        if self.raises is not None:
            raise self.raises
        return self.plugin


def with_entry_points(monkeypatch: pytest.MonkeyPatch, *fakes: FakeEntryPoint,
                      keep: Callable[[str], bool] = lambda name: True) -> None:
    """Serve the real `etk` entry points the `keep` test accepts, plus `fakes` (which replace same-named ones)."""
    real = importlib.metadata.entry_points
    fake_names = {fake.name for fake in fakes}

    def entry_points(**kwargs: Any) -> list[Any]:
        found = [ep for ep in real(**kwargs) if ep.name not in fake_names and keep(ep.name)]
        return [*found, *fakes]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    reset_plugin_manager()


def warnings_naming(caplog: pytest.LogCaptureFixture, *parts: str) -> list[str]:
    """The captured warnings that contain every one of `parts`."""
    return [record.getMessage() for record in caplog.records
            if record.levelno == logging.WARNING and all(part in record.getMessage() for part in parts)]


def assert_other_commands_work(broken: str) -> None:
    """`etk list algos` still lists the core algorithm and `etk plugins` shows `broken` as failed."""
    result = run_cli(["list", "algos", "--json"])
    assert result.exit_code == 0, result.output
    assert "finetune" in {row["name"] for row in json.loads(result.stdout)}
    result = run_cli(["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows[broken]["status"].startswith("failed: "), rows[broken]
    assert rows["etk-core"]["status"] == "loaded"


class UnknownArgument:
    @hookimpl
    def etk_register_algorithms(self, widget):  # no such argument in the spec
        return [EchoAlgorithm]


class UnknownHook:
    @hookimpl
    def etk_register_algorithms(self):
        return [EchoAlgorithm]

    @hookimpl
    def etk_register_widgets(self):  # no such hook in this etk-core
        return []


class RaisingAlgorithms:
    @hookimpl
    def etk_register_algorithms(self):
        raise RuntimeError("boom in algorithms")


class NotAList:
    @hookimpl
    def etk_register_algorithms(self):
        return EchoAlgorithm


class GoodCommand:
    @hookimpl
    def etk_register_commands(self, cli):
        @cli.command("greet")
        def greet() -> None:
            click.echo("greetings")


class RaisingCommand:
    @hookimpl
    def etk_register_commands(self, cli):
        @cli.command("half")
        def half() -> None:  # pragma: no cover - rolled back
            click.echo("half")

        raise RuntimeError("boom in commands")


class ClashingCommand:
    @hookimpl
    def etk_register_commands(self, cli):
        @cli.command("train")
        def train() -> None:  # pragma: no cover - never replaces the core command
            click.echo("hijacked")


@pytest.mark.parametrize("fake", [
    FakeEntryPoint("badargs", UnknownArgument()),
    FakeEntryPoint("twin", builtin_hooks),  # pluggy already holds it under another name: ValueError
    FakeEntryPoint("unimportable", None, raises=ImportError("No module named 'etk_unimportable'")),
], ids=["unknown-argument", "registered-twice", "import-error"])
def test_plugin_that_fails_to_register_is_a_warning(monkeypatch, caplog, fake):
    with_entry_points(monkeypatch, fake)
    with caplog.at_level(logging.WARNING, logger="etk.plugins"):
        manager = get_plugin_manager()
    assert warnings_naming(caplog, f"plugin {fake.name!r} (etk-{fake.name} 9.9) failed to load and is skipped")
    assert not manager.has_plugin(fake.name) and manager.infos[fake.name].failed
    assert manager.has_plugin("etk-core")
    manager.check_pending()
    assert_other_commands_work(fake.name)


def test_unknown_hook_unregisters_that_plugin_only(monkeypatch, caplog):
    with_entry_points(monkeypatch, FakeEntryPoint("future", UnknownHook(), version="2.0"))
    with caplog.at_level(logging.WARNING, logger="etk.plugins"):
        manager = get_plugin_manager()
    assert warnings_naming(caplog, "plugin 'future' (etk-future 2.0)", "'etk_register_widgets'", "is skipped")
    assert not manager.has_plugin("future")
    assert "etk_register_widgets" in manager.infos["future"].failed
    manager.check_pending()  # nothing unknown is left
    assert "echo" not in get_registry("algorithms").names()
    assert_other_commands_work("future")


@pytest.mark.parametrize("plugin", [RaisingAlgorithms(), NotAList()], ids=["raises", "not-a-list"])
def test_registration_hook_failure_names_plugin_and_version(monkeypatch, caplog, plugin):
    with_entry_points(monkeypatch, FakeEntryPoint("flaky", plugin, version="4.0"))
    with caplog.at_level(logging.WARNING, logger="etk.plugins"):
        assert get_component("algorithms", "finetune")
    assert warnings_naming(caplog, "plugin 'flaky' (etk-flaky 4.0)", "etk_register_algorithms")
    assert get_plugin_manager().infos["flaky"].failed.startswith("etk_register_algorithms: ")
    assert_other_commands_work("flaky")


def test_command_hooks_run_one_by_one_and_never_replace_core(monkeypatch, caplog):
    from etk_core.cli.main import add_plugin_commands, cli

    with_entry_points(monkeypatch, FakeEntryPoint("boom", RaisingCommand(), version="2.0"),
                      FakeEntryPoint("clash", ClashingCommand(), version="3.0"),
                      FakeEntryPoint("good", GoodCommand()))
    monkeypatch.setattr(cli, "commands", dict(cli.commands))  # undone after the test
    core_train = cli.commands["train"]
    with caplog.at_level(logging.WARNING, logger="etk.plugins"):
        add_plugin_commands(cli, get_plugin_manager())
    assert warnings_naming(caplog, "plugin 'boom' (etk-boom 2.0)", "etk_register_commands", "boom in commands")
    assert warnings_naming(caplog, "plugin 'clash' (etk-clash 3.0)", "'train'", "'etk-core'")
    assert cli.commands["train"] is core_train and "half" not in cli.commands
    assert "'train' is taken by 'etk-core'" in get_plugin_manager().infos["clash"].failed
    result = run_cli(["greet"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "greetings"
    assert_other_commands_work("boom")


def test_installed_faulty_plugins_leave_the_cli_importable(tmp_path):
    """A real (on-disk) distribution whose entry points fail: `etk` still imports, runs and names them."""
    info = tmp_path / "etk_faulty-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: etk-faulty\nVersion: 1.2.3\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[etk]\nfaultycmd = etk_faulty_cmds\nfaultyimport = etk_faulty_gone\n",
                                           encoding="utf-8")
    (tmp_path / "etk_faulty_cmds.py").write_text(
        "from etk_core.hookspecs import hookimpl\n\n\n@hookimpl\ndef etk_register_commands(cli):\n"
        "    raise RuntimeError('no commands today')\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "etk_core", "plugins", "--json"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "plugin 'faultycmd' (etk-faulty 1.2.3) failed in etk_register_commands" in done.stderr
    assert "plugin 'faultyimport' (etk-faulty 1.2.3) failed to load" in done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["faultyimport"]["status"].startswith("failed: ModuleNotFoundError")
    assert rows["faultycmd"]["status"].startswith("failed: etk_register_commands: RuntimeError")
    assert rows["etk-core"]["status"] == "loaded"


def test_not_installed_says_pip_install(monkeypatch):
    with_entry_points(monkeypatch, keep=lambda name: name != "instancetl")
    with pytest.raises(UnknownComponentError) as info:
        get_component("algorithms", "rtl")
    assert "pip install" not in str(info.value)  # etk-instancetl is installed: the check is real
    monkeypatch.setattr(registry, "is_installed", lambda dist: dist != "etk-instancetl")
    reset_plugin_manager()
    with pytest.raises(UnknownComponentError) as info:
        get_component("algorithms", "rtl")
    assert str(info.value) == ("algorithm 'rtl' is provided by etk-instancetl, which is not installed; "
                               "run: pip install etk-instancetl")


def test_disabled_by_env_says_so(monkeypatch):
    monkeypatch.setenv("ETK_DISABLE_PLUGINS", "instancetl")
    reset_plugin_manager()
    assert get_plugin_manager().skipped["instancetl"].skipped == "ETK_DISABLE_PLUGINS"
    with pytest.raises(UnknownComponentError) as info:
        get_component("algorithms", "rtl")
    assert str(info.value) == ("algorithm 'rtl' is provided by plugin 'instancetl' (etk-instancetl), which is "
                               "disabled by ETK_DISABLE_PLUGINS; remove 'instancetl' from ETK_DISABLE_PLUGINS "
                               "to use it")


def test_not_in_load_list_says_so(monkeypatch):
    monkeypatch.setenv("ETK_LOAD_PLUGINS", "apps")
    reset_plugin_manager()
    with pytest.raises(UnknownComponentError) as info:
        get_component("algorithms", "rtl")
    assert "(etk-instancetl), which is not in ETK_LOAD_PLUGINS; add 'instancetl' to" in str(info.value)


def test_failed_to_load_says_so_with_the_reason(monkeypatch):
    with_entry_points(monkeypatch, FakeEntryPoint("instancetl", None, raises=ImportError("no scipy")))
    with pytest.raises(UnknownComponentError) as info:
        get_component("algorithms", "rtl")
    message = str(info.value)
    assert "provided by plugin 'instancetl' (etk-instancetl), which failed to load (ImportError: no scipy)" in message
    assert "pip install" not in message and "\n" not in message


def test_failed_registration_hook_says_so(monkeypatch):
    with_entry_points(monkeypatch, FakeEntryPoint("instancetl", RaisingAlgorithms()))
    with pytest.raises(UnknownComponentError) as info:
        get_component("algorithms", "rtl")
    assert "which failed in etk_register_algorithms (RuntimeError: boom in algorithms)" in str(info.value)


def test_loaded_plugin_without_the_name_gives_the_ordinary_message():
    infos = get_plugin_manager().infos
    if "meta" not in infos or infos["meta"].failed:
        pytest.skip("etk-meta is not installed (run scripts/setup.sh)")
    with pytest.raises(UnknownComponentError) as info:
        get_component("algorithms", "metaft")  # first-party etk-meta, which registers nothing yet
    message = str(info.value)
    assert message.startswith("unknown algorithm 'metaft'") and "installed: " in message
    assert "pip install" not in message and "etk-meta" not in message
