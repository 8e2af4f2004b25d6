"""etk hook implementations of etk-featuretl.

Nothing is registered yet: the components of this plugin arrive with a later issue. The module is still an
`etk` entry point, so the plugin installs, loads and shows in `etk plugins`.
"""
