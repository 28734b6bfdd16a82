"""
Connection churn (tlsfast.bench.churn): the drop-in server's and the
proxy's RSS stay flat over thousands of short TLS connections with real
sockets and full handshakes.  ``make bench-churn`` runs the 100,000 of
issue #13; this is the same measurement, shorter.
"""

from __future__ import annotations

import os

import pytest

from tlsfast.bench import churn
from tlsfast.bench.breakdown import workDirectory
from tlsfast.bench.runner import stop_children
from tlsfast.bench.tlsconfig import resolve


def test_flatIsGrowthAfterTheFirstBatch():
    result = churn.ChurnResult("proxy", connections=[1000, 2000, 3000], rss=[50 << 20, 60 << 20, 51 << 20])
    assert (result.growth, result.flat) == (1 << 20, True)
    result.rss[-1] = (50 << 20) + churn.FLAT_BYTES
    assert not result.flat


@pytest.mark.slow
@pytest.mark.parametrize("subject", churn.SUBJECTS)
def test_rssIsFlatOverShortConnections(subject):
    params = resolve()
    cores = os.sched_getaffinity(0)
    pinned = (0 if 0 in cores else None, 1 if 1 in cores else None)
    with workDirectory("tlsfast-churn-test-", params) as (directory, env):
        try:
            result = churn.churn(subject, 10_000, 5, directory, env, params, pinned)
        finally:
            stop_children()
    assert result.connections[-1] == 10_000
    assert result.flat, churn.markdown([result])
