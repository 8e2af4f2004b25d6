"""Plugin discovery: built-ins through the same hooks, entry points one by one, errors that name names."""

from __future__ import annotations

import importlib.metadata
import json
import logging

import pytest

from etk_core.errors import DuplicateComponentError, UnknownComponentError
from etk_core.hookspecs import hookimpl
from etk_core.interfaces import Algorithm
from etk_core.plugins import get_plugin_manager, reset_plugin_manager
from etk_core.registry import get_component, get_registry
from etk_core.testing import run_cli

FIRST_PARTY = ["zoo", "apps", "featuretl", "instancetl", "distill", "meta", "kernels"]


class EchoAlgorithm(Algorithm):
    """Test algorithm."""

    name = "echo"
    description = "an in-process test algorithm"

    def run(self, run):  # pragma: no cover - never trained
        return {}


class EchoPlugin:
    @hookimpl
    def etk_register_algorithms(self):
        return [EchoAlgorithm]


def test_plugins_json_lists_core_and_all_first_party_plugins_with_versions():
    result = run_cli(["plugins", "--json"])
    assert result.exit_code == 0, result.output
    report = {row["name"]: row for row in json.loads(result.stdout)}
    assert report["etk-core"]["version"] == "0.1.0"
    for name in FIRST_PARTY:
        assert report[name]["distribution"] == f"etk-{name}"
        assert report[name]["version"] == "0.1.0"
        assert report[name]["status"] == "loaded"
    assert "finetune" in report["etk-core"]["registers"]["algorithms"]


def test_builtins_register_through_hooks():
    manager = get_plugin_manager()
    assert "etk_register_algorithms" in manager.infos["etk-core"].hooks
    assert get_registry("algorithms").components["finetune"].plugin == "etk-core"


def test_in_process_plugin_registers_an_algorithm():
    manager = get_plugin_manager()
    manager.register(EchoPlugin(), name="echo-plugin")
    try:
        assert get_component("algorithms", "echo") is EchoAlgorithm
        result = run_cli(["list", "algos", "--json"])
        assert result.exit_code == 0, result.output
        rows = {row["name"]: row for row in json.loads(result.stdout)}
        assert rows["echo"]["plugin"] == "echo-plugin"
        assert rows["echo"]["description"] == "an in-process test algorithm"
    finally:
        manager.unregister(name="echo-plugin")


def test_duplicate_name_names_both_plugins():
    class Clash:
        @hookimpl
        def etk_register_algorithms(self):
            class Finetune2(EchoAlgorithm):
                name = "finetune"

            return [Finetune2]

    get_plugin_manager().register(Clash(), name="clash-plugin")
    with pytest.raises(DuplicateComponentError) as info:
        get_registry("algorithms")
    message = str(info.value)
    assert "'etk-core'" in message and "'clash-plugin'" in message and "\n" not in message


def test_unknown_name_lists_installed_and_suggests():
    with pytest.raises(UnknownComponentError) as info:
        get_component("algorithms", "finetun")
    assert "did you mean 'finetune'" in str(info.value)
    assert "installed: " in str(info.value)


def test_unknown_first_party_name_says_which_package(monkeypatch):
    """Installed but disabled: the package is named and so is the switch (not-installed: test_plugin_faults)."""
    monkeypatch.setenv("ETK_DISABLE_PLUGINS", "apps,instancetl")
    reset_plugin_manager()
    with pytest.raises(UnknownComponentError) as info:
        get_component("apps", "text_classify")
    assert "(etk-apps), which is disabled by ETK_DISABLE_PLUGINS" in str(info.value)
    with pytest.raises(UnknownComponentError) as info:
        get_component("algorithms", "mgtl")
    assert "(etk-instancetl), which is disabled by ETK_DISABLE_PLUGINS" in str(info.value)


def test_cli_unknown_name_is_one_line_exit_2():
    result = run_cli(["list", "widgets"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "unknown component kind" in result.stderr


def test_load_plugins_empty_means_builtins_only(monkeypatch):
    monkeypatch.setenv("ETK_LOAD_PLUGINS", "")
    reset_plugin_manager()
    assert list(get_plugin_manager().infos) == ["etk-core"]
    assert get_registry("apps").names() == []


def test_disable_plugins_blocks_named(monkeypatch):
    monkeypatch.setenv("ETK_DISABLE_PLUGINS", "zoo, kernels")
    reset_plugin_manager()
    infos = get_plugin_manager().infos
    assert "zoo" not in infos and "kernels" not in infos and "apps" in infos


def test_broken_entry_point_is_a_warning_and_the_rest_works(monkeypatch, caplog):
    real = importlib.metadata.entry_points

    def with_broken(**kwargs):
        found = list(real(**kwargs))
        broken = importlib.metadata.EntryPoint("broken", "etk_no_such_module_xyz.hooks", "etk")
        return [broken, *found]

    monkeypatch.setattr(importlib.metadata, "entry_points", with_broken)
    reset_plugin_manager()
    with caplog.at_level(logging.WARNING, logger="etk.plugins"):
        manager = get_plugin_manager()
    assert manager.infos["broken"].failed
    assert any("'broken'" in record.message and "failed to load" in record.message for record in caplog.records)
    assert get_component("algorithms", "finetune")
    result = run_cli(["plugins", "--json"])
    assert result.exit_code == 0, result.output
    assert any(row["name"] == "broken" and row["status"].startswith("failed") for row in json.loads(result.stdout))


def test_installed_example_plugin_is_discovered():
    """examples/etk-hello is installed by the set-up command like any third-party plugin."""
    infos = get_plugin_manager().infos
    if "hello" not in infos:
        pytest.skip("examples/etk-hello is not installed (run scripts/setup.sh)")
    assert infos["hello"].distribution == "etk-hello"
    assert get_component("readers", "lines").suffixes == (".lines",)
    result = run_cli(["hello", "etk"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "hello, etk"


def test_hookspecs_are_prefixed_typed_and_documented():
    import inspect

    from etk_core import hookspecs

    specs = [obj for name, obj in vars(hookspecs).items() if name.startswith("etk_") and callable(obj)]
    assert len(specs) == 9
    for spec in specs:
        assert spec.__doc__ and "\n" not in spec.__doc__.strip()
        assert inspect.signature(spec).return_annotation is not inspect.Signature.empty


def test_every_hookimpl_matches_a_spec():
    get_plugin_manager().check_pending()


def test_every_hook_is_documented_with_its_signature():
    import inspect
    from pathlib import Path

    from etk_core import hookspecs

    doc = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")
    for name, spec in vars(hookspecs).items():
        if name.startswith("etk_") and callable(spec):
            signature = str(inspect.signature(spec)).replace("'", "")
            assert f"`{name}{signature}`" in doc, f"{name}{signature} is not documented in docs/plugins.md"
