"""etk-instancetl installs as an entry point and loads without registering anything yet."""

from etk_core.plugins import get_plugin_manager, reset_plugin_manager


def test_plugin_is_discovered(monkeypatch):
    monkeypatch.delenv("ETK_LOAD_PLUGINS", raising=False)
    reset_plugin_manager()
    try:
        infos = get_plugin_manager().infos
        assert "instancetl" in infos, sorted(infos)
        assert infos["instancetl"].distribution == "etk-instancetl"
        assert infos["instancetl"].failed is None
    finally:
        reset_plugin_manager()
