"""
``tlsfast bench``: side-by-side benchmarks of tlsfast, stock Twisted TLS,
asyncio/uvloop with stdlib ssl, plain TCP and the engine's C reference loop.

Loopback scenarios run a server process per stack and a load-generating
client process, pinned to different cores, interleaved across stacks.  The
figure of merit is the server process's CPU time per operation, which stays
steady on noisy machines where rates swing 2-3x; rates are reported too.
The ``engine`` scenario moves data in memory, with no sockets.

Modules: ``server`` (the servers), ``client`` (load generators, latency
percentiles), ``engine`` (the in-memory harness: engine loops, the Twisted
glue in memory, the C loop, interleaved rounds), ``engine_report`` (its
statistics and tables: ``make bench-report``), ``peers`` (in-memory TLS
peers and the handshake pump), ``tlsconfig`` (TLS
parameters: names, pinning, the negotiated check), ``certs`` (throwaway
PKI), ``runner`` (orchestration, sweeps, --target, medians, ratios),
``noise`` (noisy and implausible rows), ``report`` (tables, JSON, CSV,
plots), ``compare`` (``tlsfast bench compare``: ratios and a t-test),
``proxy`` and ``proxy_loadgen`` (``tlsfast bench proxy``).  The command line
is in ``cli`` (``tlsfast.cli`` only registers it and delegates; ``python -m
tlsfast.bench`` runs it); no other module of ``tlsfast.bench`` imports it.
"""
