"""``python -m tlsfast``: the command-line entry point."""

from tlsfast.cli import main

raise SystemExit(main())
