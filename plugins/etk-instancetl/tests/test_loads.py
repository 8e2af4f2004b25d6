"""etk-instancetl installs as an entry point, loads, and registers its algorithms with typed options."""

from etk_core.testing import ComponentContract, assert_plugin_loads


def test_plugin_is_discovered():
    assert_plugin_loads("instancetl", "etk-instancetl")


class TestRuderPlank(ComponentContract):
    kind, component_name = "algorithms", "ruder_plank"


class TestRtl(ComponentContract):
    kind, component_name = "algorithms", "rtl"


class TestMgtl(ComponentContract):
    kind, component_name = "algorithms", "mgtl"


class TestBaselines(ComponentContract):
    kind, component_name = "algorithms", "tl_base"
