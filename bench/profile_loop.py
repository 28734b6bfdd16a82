"""
Run one contender's transfer loop for a while, for a profiler to look at:

    OPENSSL_CONF=bench/openssl.cnf perf record -e cpu-clock -F 1999 \\
        --call-graph dwarf,32768 -o /tmp/perf.data \\
        .venv/bin/python bench/profile_loop.py engine 1024 5
    perf report -i /tmp/perf.data --children --sort symbol -g none

Arguments: contender (engine, pyopenssl, stdlib, reference), write size,
seconds.  Prints how many operations (of TOTALS[write_size] bytes) it did.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import transfer as T


def main() -> None:
    name, size, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    t = T.make(name, size)
    t.verify()
    end = time.monotonic() + seconds
    ops = 0
    while time.monotonic() < end:
        t.check(t.run())
        ops += 1
    print(f"{name} {size}: {ops} ops of {t.total} bytes ({t.writes} writes each)")


if __name__ == "__main__":
    main()
