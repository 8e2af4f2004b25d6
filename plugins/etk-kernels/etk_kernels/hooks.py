"""etk hook implementations of etk-kernels.

Nothing is registered yet: the components of this plugin arrive with issue #6. The module is still an
`etk` entry point, so the plugin installs, loads and shows in `etk plugins`.
"""
