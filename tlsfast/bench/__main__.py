"""``python -m tlsfast.bench ARGS``: the same command as ``tlsfast bench ARGS``."""

from tlsfast.bench.cli import main

raise SystemExit(main())
