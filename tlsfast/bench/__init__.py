"""
Loopback benchmarks: a server process per stack (stock Twisted TLS, tlsfast,
plain TCP, ...) and a load-generating client process, pinned to different
cores, interleaved across stacks.  The figure of merit is the server
process's CPU time per operation (read from /proc), which stays steady on
noisy machines where rates swing 2-3x; rates are reported too.

Modules: ``server`` (the servers), ``client`` (load generators), ``runner``
(orchestration, medians, ratios).
"""
