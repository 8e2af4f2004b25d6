"""The `etk` command line."""
