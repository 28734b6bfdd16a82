"""
Interleaved side-by-side in-memory transfer benchmark -> markdown tables
(``make bench-report``): the engine loops, the Twisted glue loops and the C
reference loop.  A thin wrapper: the harness is
:mod:`tlsfast.bench.engine_report` (see its docstring and --help).

    .venv/bin/python bench/report.py --overhead --cpu 1
"""

import sys

from tlsfast.bench.engine_report import main

if __name__ == "__main__":
    sys.exit(main())
