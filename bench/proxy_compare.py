"""
The proxy comparison now lives in the package: ``tlsfast bench proxy``
(tlsfast/bench/proxy.py).  This script, kept for existing command lines, runs
the same thing: ``python bench/proxy_compare.py ARGS`` = ``tlsfast bench proxy ARGS``.
"""

import sys

from tlsfast.bench.proxy import main

if __name__ == "__main__":
    sys.exit(main())
