"""
The proxy comparison's load generator now lives in the package
(tlsfast/bench/proxy_loadgen.py); this script runs it for existing command lines.
"""

import sys

from tlsfast.bench.proxy_loadgen import main

if __name__ == "__main__":
    sys.exit(main())
