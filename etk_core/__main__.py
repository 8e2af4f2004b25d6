"""`python -m etk_core` is `etk`."""

from etk_core.cli.main import main

main()
