"""etk-distill installs as an entry point and loads (it registers nothing yet)."""

from etk_core.testing import assert_plugin_loads


def test_plugin_is_discovered():
    assert_plugin_loads("distill", "etk-distill")
