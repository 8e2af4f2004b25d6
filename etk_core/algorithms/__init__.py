"""The core's built-in algorithms."""
