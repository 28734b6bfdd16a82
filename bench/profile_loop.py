"""
Run one contender's transfer loop for a while, for a profiler to look at:

    OPENSSL_CONF=bench/openssl.cnf perf record -e cpu-clock -F 1999 \\
        --call-graph dwarf,32768 -o /tmp/perf.data \\
        .venv/bin/python bench/profile_loop.py tlsfast 1024 5
    perf report -i /tmp/perf.data --children --sort symbol -g none

Arguments: contender (a name from tlsfast.bench.engine.LABELS: tlsfast,
twisted, asyncio, c, tlsfast-glue, twisted-glue), write size, seconds.
Prints how many operations (of total_for(write_size) bytes) it did.
"""

import sys
import time

from tlsfast.bench.engine import make


def main() -> None:
    name, size, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    t = make(name, size)
    t.verify()
    end = time.monotonic() + seconds
    ops = 0
    while time.monotonic() < end:
        t.check(t.run())
        ops += 1
    print(f"{name} {size}: {ops} ops of {t.total} bytes ({t.writes} writes each)")


if __name__ == "__main__":
    main()
