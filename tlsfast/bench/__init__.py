"""
``tlsfast bench``: side-by-side benchmarks of tlsfast, stock Twisted TLS,
asyncio/uvloop with stdlib ssl, plain TCP and the engine's C reference loop.

Loopback scenarios run a server process per stack and a load-generating
client process, pinned to different cores, interleaved across stacks.  The
figure of merit is the server process's CPU time per operation, which stays
steady on noisy machines where rates swing 2-3x; rates are reported too.
The ``engine`` scenario moves data in memory, with no sockets.

Modules: ``server`` (the servers), ``client`` (load generators), ``engine``
(in-memory contenders), ``tlsconfig`` (cipher suite and group pinning),
``certs`` (throwaway PKI), ``runner`` (orchestration, medians, ratios),
``report`` (tables, JSON, plot).  The command line is in ``cli`` (``tlsfast.cli`` delegates to it).
"""
